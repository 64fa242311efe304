//! A session may act only on the accounts it is configured for, on every path: new order,
//! cancel, replace, status and mass cancel, by ClOrdID or by OrderID. Session 1 (account 1)
//! tries each against an order of session 2 (account 2): naming account 2 is refused as not
//! authorised; naming its own account finds nothing, and the reply says nothing of the other
//! order. The other order is untouched (its owner cancels it at the end).

#[path = "support/raw_fix.rs"]
mod raw_fix;
#[path = "support/sbe_flow.rs"]
mod sbe_flow;

use gateway::client::Client;
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
    let app = raw_fix::start(dir.path(), |_| {});
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

/// FIX: what a refusal says, without the fields that echo the request or stamp the message.
fn gist(m: &raw_fix::Msg) -> Vec<(u32, String)> {
    let echoed = [9, 10, 11, 17, 34, 37, 41, 52, 60];
    m.0.iter().filter(|(t, _)| !echoed.contains(t)).map(|(t, v)| (*t, v.clone())).collect()
}

/// FIX: the next answer to a request (BusinessMessageReject, OrderCancelReject, ExecutionReport).
fn answer(c: &mut raw_fix::Raw) -> raw_fix::Msg {
    loop {
        let m = c.recv(raw_fix::WAIT).expect("an answer");
        if ["j", "9", "8", "3", "r"].contains(&m.ty()) {
            return m;
        }
    }
}

/// FIX: a cancel (F), replace (G) or status request (H) of account 1 for `orig` / `order_id`.
fn fix_request(ty: &str, orig: &str, order_id: Option<&str>) -> Vec<(u32, String)> {
    let t = "20261122-10:00:00";
    let base: &[(u32, &str)] = match ty {
        "F" => &[(11, "c2"), (1, "1"), (55, "DEMO"), (54, "1"), (60, t)],
        "G" => &[(11, "r2"), (1, "1"), (55, "DEMO"), (54, "1"), (60, t), (38, "2"), (40, "2"), (44, "11")],
        _ => &[(1, "1"), (55, "DEMO"), (54, "1")],
    };
    let mut f: Vec<(u32, String)> = base.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    f.push(if ty == "H" { (11, orig.to_owned()) } else { (41, orig.to_owned()) });
    if let Some(id) = order_id {
        f.push((37, id.to_owned()));
    }
    f
}

fn ask(c: &mut raw_fix::Raw, ty: &str, fields: &[(u32, String)]) -> raw_fix::Msg {
    let refs: Vec<(u32, &str)> = fields.iter().map(|(t, v)| (*t, v.as_str())).collect();
    c.send(ty, &refs);
    answer(c)
}

#[test]
fn another_accounts_order_is_untouchable_and_unrevealed_over_fix() {
    let t = "20261122-10:00:00";
    let dir = tempfile::tempdir().unwrap();
    let app = raw_fix::start(dir.path(), |_| {});
    let addr = app.fix_addr().unwrap();
    let mut owner = raw_fix::Raw::connect(addr, "CLIENT2");
    owner.logon(&[]);
    let mut other = raw_fix::Raw::connect(addr, "CLIENT1");
    other.logon(&[(553, "demo"), (554, "demo")]);
    let new = [(11, "victim"), (1, "2"), (55, "DEMO"), (54, "1"), (60, t), (38, "3"), (40, "2"), (44, "10"), (59, "1")];
    owner.send("D", &new);
    let victim = owner.expect("8").get(37).expect("an order id").to_owned();

    // Naming account 2: BusinessMessageReject, not authorised (380=6), on every path.
    let as_account_2: [(&str, &[(u32, &str)]); 5] = [
        ("D", &[(11, "n1"), (1, "2"), (55, "DEMO"), (54, "2"), (60, t), (38, "1"), (40, "2"), (44, "10"), (59, "1")]),
        ("F", &[(11, "c1"), (41, "victim"), (1, "2"), (55, "DEMO"), (54, "1"), (60, t)]),
        (
            "G",
            &[(11, "r1"), (41, "victim"), (1, "2"), (55, "DEMO"), (54, "1"), (60, t), (38, "2"), (40, "2"), (44, "11")],
        ),
        ("H", &[(11, "victim"), (1, "2"), (55, "DEMO"), (54, "1")]),
        ("q", &[(11, "m1"), (1, "2"), (530, "1"), (55, "DEMO"), (60, t)]),
    ];
    for (ty, fields) in as_account_2 {
        other.send(ty, fields);
        let r = answer(&mut other);
        assert_eq!((r.ty(), r.get(380)), ("j", Some("6")), "{ty} naming account 2: {r:?}");
    }

    // Naming account 1 with the other order's ClOrdID or OrderID: the same answer as for an
    // order that does not exist.
    for ty in ["F", "G", "H"] {
        for (about, missing) in [
            (fix_request(ty, "victim", None), fix_request(ty, "nobody", None)),
            (fix_request(ty, "zz", Some(&victim)), fix_request(ty, "zz", Some("999999"))),
        ] {
            let about_victim = ask(&mut other, ty, &about);
            let about_nothing = ask(&mut other, ty, &missing);
            let refused = about_victim.ty() == "9" || about_victim.get(39) == Some("8");
            assert!(refused, "{ty}: {about_victim:?}");
            assert_eq!(gist(&about_victim), gist(&about_nothing), "{ty}: the answer tells the orders apart");
        }
    }

    // Dropping CLIENT1 leaves the order whole; its owner cancels it.
    drop(other);
    owner.send("F", &[(11, "own"), (41, "victim"), (1, "2"), (55, "DEMO"), (54, "1"), (60, t)]);
    let done = owner.expect("8");
    assert_eq!((done.get(150), done.get(37), done.get(14)), (Some("4"), Some(victim.as_str()), Some("0")), "{done:?}");
    app.shutdown().unwrap();
}
