//! A session may act only on the accounts it is configured for, on every path: new order,
//! cancel, replace, status and mass cancel, by ClOrdID or by OrderID. Session 1 (account 1)
//! tries each against an order of session 2 (account 2): naming account 2 is refused as not
//! authorised; naming its own account finds nothing, and the reply says nothing of the other
//! order. The other order is untouched (its owner cancels it at the end).

#[path = "support/sbe_flow.rs"]
mod sbe_flow;
#[path = "support/small_appliance.rs"]
mod small_appliance;

use gateway::client::Client;
use gateway::pipeline;
use gateway::sbe::codec::Outbound;
use gateway::sbe::messages::{
    BusinessRejectReason, ExecType, MassCancelScope, OrdStatus, OrderCancelReplaceRequest, OrderCancelRequest,
    OrderMassCancelRequest, OrderStatusRequest, PRICE9_NULL, Side, char_field,
};
use sbe_flow::{er, order, px, wait_for};
use zerocopy::little_endian::{I64, U32, U64};

/// The next reply that is a BusinessMessageReject (its reason) or an answer about an order
/// (its kind, status and the order id it names).
#[derive(Debug, PartialEq, Eq)]
enum Reply {
    NotAuthorized,
    OtherReject(u8),
    CancelReject { ord_status: u8, order_id: u64, reject_code: u16 },
    Report { exec_type: u8, ord_status: u8, order_id: u64, leaves_qty: u64, reject_code: u16 },
    MassCancel { affected: u32 },
}

fn reply(c: &mut Client) -> Reply {
    wait_for(c, "a reply", |m| match m {
        Outbound::BusinessMessageReject(r) if r.reason == BusinessRejectReason::NotAuthorized.to_u8() => {
            Some(Reply::NotAuthorized)
        }
        Outbound::BusinessMessageReject(r) => Some(Reply::OtherReject(r.reason)),
        Outbound::OrderCancelReject(r) => Some(Reply::CancelReject {
            ord_status: r.ord_status,
            order_id: r.order_id.get(),
            reject_code: r.reject_code.get(),
        }),
        Outbound::ExecutionReport(r) => Some(Reply::Report {
            exec_type: r.exec_type,
            ord_status: r.ord_status,
            order_id: r.order_id.get(),
            leaves_qty: r.leaves_qty.get(),
            reject_code: r.reject_code.get(),
        }),
        Outbound::OrderMassCancelReport(r) => Some(Reply::MassCancel { affected: r.total_affected_orders.get() }),
        _ => None,
    })
}

fn cancel(cl: &str, orig: &str, order_id: u64, account: u32) -> OrderCancelRequest {
    OrderCancelRequest {
        cl_ord_id: char_field(cl.as_bytes()).unwrap(),
        orig_cl_ord_id: char_field(orig.as_bytes()).unwrap(),
        order_id: U64::new(order_id),
        account: U32::new(account),
        security_id: U32::new(1),
    }
}

fn replace(cl: &str, orig: &str, order_id: u64, account: u32) -> OrderCancelReplaceRequest {
    OrderCancelReplaceRequest {
        cl_ord_id: char_field(cl.as_bytes()).unwrap(),
        orig_cl_ord_id: char_field(orig.as_bytes()).unwrap(),
        order_id: U64::new(order_id),
        account: U32::new(account),
        security_id: U32::new(1),
        price: px(11.0),
        stop_px: I64::new(PRICE9_NULL),
        order_qty: U64::new(20_000),
    }
}

fn status(orig: &str, order_id: u64, account: u32) -> OrderStatusRequest {
    OrderStatusRequest {
        orig_cl_ord_id: char_field(orig.as_bytes()).unwrap(),
        order_id: U64::new(order_id),
        account: U32::new(account),
        security_id: U32::new(1),
    }
}

fn mass_cancel(cl: &str, account: u32) -> OrderMassCancelRequest {
    OrderMassCancelRequest {
        cl_ord_id: char_field(cl.as_bytes()).unwrap(),
        account: U32::new(account),
        security_id: U32::new(1),
        scope: MassCancelScope::Account.to_u8(),
    }
}

/// The reply with the order id it echoes set to 0, so that replies about two different ids
/// compare.
fn unnamed(r: Reply) -> Reply {
    match r {
        Reply::CancelReject { ord_status, reject_code, .. } => {
            Reply::CancelReject { ord_status, order_id: 0, reject_code }
        }
        Reply::Report { exec_type, ord_status, leaves_qty, reject_code, .. } => {
            Reply::Report { exec_type, ord_status, order_id: 0, leaves_qty, reject_code }
        }
        other => other,
    }
}

/// What `send` answers about the other account's order, and about an order that does not
/// exist: a refusal either way, and the same one, so nothing is revealed.
fn assert_same_as_for_nothing(other: &mut Client, what: &str, send: impl Fn(&mut Client, &str, u64), victim: u64) {
    for (orig, id) in [("victim", 0), ("zz", victim)] {
        send(other, orig, id);
        let about_victim = reply(other);
        send(other, if id == 0 { "nobody" } else { "zz" }, if id == 0 { 0 } else { 999_999 });
        let about_nothing = reply(other);
        let refused = match about_victim {
            Reply::CancelReject { ord_status, .. } => ord_status == OrdStatus::Rejected.to_u8(),
            Reply::Report { exec_type, leaves_qty, .. } => exec_type == ExecType::Rejected.to_u8() && leaves_qty == 0,
            Reply::NotAuthorized | Reply::OtherReject(_) => true,
            Reply::MassCancel { .. } => false,
        };
        assert!(refused, "{what} (ClOrdID {orig}, OrderID {id}): {about_victim:?}");
        assert_eq!(unnamed(about_victim), unnamed(about_nothing), "{what}: the answer tells the orders apart");
    }
}

#[test]
fn another_accounts_order_is_untouchable_and_unrevealed_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    let app = pipeline::start(small_appliance::config(dir.path()).validate().unwrap()).unwrap();
    let addr = app.local_addr();
    let mut owner = Client::login(addr, 2, "demo2", "demo2").unwrap();
    let mut other = Client::login(addr, 1, "demo", "demo").unwrap();
    owner.send(&order("victim", 2, Side::Buy, 10.0, 3)).unwrap();
    let victim = er(&mut owner, "victim", ExecType::New).order_id.get();

    // Naming the other account: not authorised, on every path.
    other.send(&order("n1", 2, Side::Sell, 10.0, 1)).unwrap();
    assert_eq!(reply(&mut other), Reply::NotAuthorized, "new order");
    other.send(&cancel("c1", "victim", 0, 2)).unwrap();
    assert_eq!(reply(&mut other), Reply::NotAuthorized, "cancel");
    other.send(&replace("r1", "victim", 0, 2)).unwrap();
    assert_eq!(reply(&mut other), Reply::NotAuthorized, "replace");
    other.send(&status("victim", 0, 2)).unwrap();
    assert_eq!(reply(&mut other), Reply::NotAuthorized, "status");
    other.send(&mass_cancel("m1", 2)).unwrap();
    assert_eq!(reply(&mut other), Reply::NotAuthorized, "mass cancel");

    // Naming its own account, with the other order's ClOrdID or OrderID: refused exactly as for
    // an order that does not exist.
    let send_cancel = |c: &mut Client, orig: &str, id: u64| c.send(&cancel("c2", orig, id, 1)).unwrap();
    assert_same_as_for_nothing(&mut other, "cancel", send_cancel, victim);
    let send_replace = |c: &mut Client, orig: &str, id: u64| c.send(&replace("r2", orig, id, 1)).unwrap();
    assert_same_as_for_nothing(&mut other, "replace", send_replace, victim);
    let send_status = |c: &mut Client, orig: &str, id: u64| c.send(&status(orig, id, 1)).unwrap();
    assert_same_as_for_nothing(&mut other, "status", send_status, victim);
    other.send(&mass_cancel("m2", 1)).unwrap();
    assert_eq!(reply(&mut other), Reply::MassCancel { affected: 0 }, "its own mass cancel touches only its own");

    // Cancel-on-disconnect cancels only the session's own accounts: dropping `other` leaves
    // the order alone, and its owner still finds it whole.
    drop(other);
    owner.send(&cancel("own", "victim", 0, 2)).unwrap();
    let done = er(&mut owner, "own", ExecType::Canceled);
    assert_eq!((done.order_id.get(), done.leaves_qty.get()), (victim, 0), "the order was whole until its owner");
    assert_eq!(done.cum_qty.get(), 0, "nothing of it traded or changed");
    drop(owner);
    app.shutdown().unwrap();
}
