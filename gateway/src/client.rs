//! A small blocking SBE client: connect, Negotiate, Establish, send requests, read frames.
//! `sable client` and the integration tests use it. Not for production order flow (it does
//! blocking reads and allocates per frame).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use zerocopy::little_endian::{U32, U64};

use crate::sbe::SbeMessage;
use crate::sbe::codec::{DecodeError, EncodeError, Outbound, decode_outbound, encode};
use crate::sbe::frame::{FrameError, SOFH_LEN_BYTES, next_frame};
use crate::sbe::messages::{
    Establish, EstablishmentAck, ExecType, Negotiate, OrdStatus, Sequence, Side, Terminate, TerminationCode,
    char_field, char_field_str,
};

/// Keepalive interval the client asks for, in milliseconds.
pub const KEEPALIVE_MS: u32 = 10_000;

/// Template ids from here on are application messages (counted in the sequence).
const FIRST_APPLICATION_TEMPLATE_ID: u16 = 100;

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket error.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The server sent bytes that do not frame.
    #[error("framing: {0}")]
    Frame(#[from] FrameError),
    /// The server sent a message that does not decode.
    #[error("decoding: {0}")]
    Decode(#[from] DecodeError),
    /// Encoding failed.
    #[error("encoding: {0}")]
    Encode(#[from] EncodeError),
    /// A credential does not fit the SBE field.
    #[error("credential: {0}")]
    Credential(String),
    /// The server answered the handshake with something else.
    #[error("handshake refused: {0}")]
    Refused(String),
    /// No answer in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
}

/// A connected client.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    session_id: u64,
    /// Application messages sent (the next one is `app_sent + 1`).
    app_sent: u64,
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

impl Client {
    /// Connects (TCP only).
    pub fn connect(addr: SocketAddr) -> Result<Client, ClientError> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        Ok(Client { stream, buf: Vec::with_capacity(4096), session_id: 0, app_sent: 0 })
    }

    /// Connects, negotiates and establishes.
    pub fn login(addr: SocketAddr, session_id: u64, user: &str, password: &str) -> Result<Client, ClientError> {
        let mut c = Client::connect(addr)?;
        c.negotiate(session_id, user, password)?;
        c.establish(KEEPALIVE_MS)?;
        Ok(c)
    }

    /// Sends any message.
    pub fn send<M: SbeMessage>(&mut self, msg: &M) -> Result<(), ClientError> {
        let mut buf = [0u8; 512];
        let n = encode(msg, &mut buf)?;
        self.stream.write_all(&buf[..n])?;
        if M::TEMPLATE_ID >= FIRST_APPLICATION_TEMPLATE_ID {
            self.app_sent += 1;
        }
        Ok(())
    }

    /// Sends raw bytes (tests send garbage with this).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Negotiate; returns when NegotiationResponse arrives.
    pub fn negotiate(&mut self, session_id: u64, user: &str, password: &str) -> Result<(), ClientError> {
        let cred = |s: &str| char_field::<20>(s.as_bytes()).map_err(|e| ClientError::Credential(e.to_string()));
        self.session_id = session_id;
        let m = Negotiate {
            session_id: U64::new(session_id),
            timestamp: U64::new(now_ns()),
            username: cred(user)?,
            password: cred(password)?,
        };
        self.send(&m)?;
        let frame = self.recv(Duration::from_secs(5))?.ok_or(ClientError::Timeout)?;
        match decode_outbound(&frame[6..])? {
            Outbound::NegotiationResponse(_) => Ok(()),
            other => Err(ClientError::Refused(describe(&other))),
        }
    }

    /// Establish; returns the EstablishmentAck (its NextSeqNo is the server's next
    /// application message: a client that saw fewer asks for the rest with RetransmitRequest).
    pub fn establish(&mut self, keepalive_ms: u32) -> Result<EstablishmentAck, ClientError> {
        let m = Establish {
            session_id: U64::new(self.session_id),
            timestamp: U64::new(now_ns()),
            keepalive_interval: U32::new(keepalive_ms),
            next_seq_no: U64::new(1),
        };
        self.send(&m)?;
        let frame = self.recv(Duration::from_secs(5))?.ok_or(ClientError::Timeout)?;
        match decode_outbound(&frame[6..])? {
            Outbound::EstablishmentAck(a) => Ok(*a),
            other => Err(ClientError::Refused(describe(&other))),
        }
    }

    /// Sends Terminate(Finished).
    pub fn terminate(&mut self) -> Result<(), ClientError> {
        let m = Terminate {
            session_id: U64::new(self.session_id),
            code: TerminationCode::Finished.to_u8(),
            reason: [0; 48],
        };
        self.send(&m)
    }

    /// The next complete frame (SOFH included), or `None` if none arrived within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((len, _)) = next_frame(&self.buf)? {
                let frame: Vec<u8> = self.buf.drain(..len).collect();
                if let Ok(Outbound::Sequence(_)) = decode_outbound(&frame[SOFH_LEN_BYTES..]) {
                    // The server's heartbeat: answer with ours so the session stays alive.
                    self.send(&Sequence { next_seq_no: U64::new(self.app_sent + 1) })?;
                }
                return Ok(Some(frame));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(left))?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn px(v: i64) -> String {
    if v == crate::sbe::messages::PRICE9_NULL {
        "-".into()
    } else {
        rust_decimal::Decimal::new(v, 9).normalize().to_string()
    }
}

fn qty(v: u64) -> String {
    if v == crate::sbe::messages::QTY4_NULL {
        "-".into()
    } else {
        rust_decimal::Decimal::from_i128_with_scale(i128::from(v), 4).normalize().to_string()
    }
}

/// One line describing a server message, for humans.
pub fn describe(m: &Outbound<'_>) -> String {
    let text = |f: &[u8]| char_field_str(f).unwrap_or("?").to_string();
    match m {
        Outbound::ExecutionReport(r) => format!(
            "ExecutionReport exec_type={} ord_status={} order_id={} cl_ord_id={} account={} side={} price={} qty={} \
             last_px={} last_qty={} leaves={} cum={} avg_px={} trade_id={} reject_code={}",
            ExecType::from_u8(r.exec_type).map_or("?", |e| e.name()),
            OrdStatus::from_u8(r.ord_status).map_or("?", |e| e.name()),
            r.order_id.get(),
            text(&r.cl_ord_id),
            r.account.get(),
            Side::from_u8(r.side).map_or("?", |e| e.name()),
            px(r.price.get()),
            qty(r.order_qty.get()),
            px(r.last_px.get()),
            qty(r.last_qty.get()),
            qty(r.leaves_qty.get()),
            qty(r.cum_qty.get()),
            px(r.avg_px.get()),
            r.trade_id.get(),
            r.reject_code.get(),
        ),
        Outbound::OrderCancelReject(r) => format!(
            "OrderCancelReject order_id={} cl_ord_id={} orig_cl_ord_id={} reject_code={}",
            r.order_id.get(),
            text(&r.cl_ord_id),
            text(&r.orig_cl_ord_id),
            r.reject_code.get()
        ),
        Outbound::BusinessMessageReject(r) => format!(
            "BusinessMessageReject ref_seq={} ref_template={} reason={} text={}",
            r.ref_seq_num.get(),
            r.ref_template_id.get(),
            r.reason,
            text(&r.text)
        ),
        Outbound::Terminate(t) => format!("Terminate code={} reason={}", t.code, text(&t.reason)),
        other => format!("{other:?}"),
    }
}
