//! Operator commands: halt and resume, mass cancel, kill switches; their outcome events (the
//! audit record's before and after) and their survival through save/load.

use engine::*;
use rust_decimal_macros::dec;

const INST: InstrumentId = InstrumentId(1);
const OTHER: InstrumentId = InstrumentId(2);
const A: AccountId = AccountId(1);
const B: AccountId = AccountId(2);

fn spec(id: InstrumentId) -> InstrumentSpec {
    InstrumentSpec {
        id,
        symbol: Symbol::new(if id == INST { "TEST" } else { "OTHR" }).unwrap(),
        tick_size: dec!(0.01),
        lot_size: dec!(1),
        min_qty_lots: 1,
        max_qty_lots: 1_000_000,
        max_notional_nanos: u128::MAX,
        band_bps: 0,
        reference_ticks: None,
        status: TradingStatus::Open,
    }
}

struct T {
    e: Engine,
}

impl T {
    fn new() -> T {
        let mut t = T { e: Engine::new(EngineLimits::SMALL) };
        t.run(CommandBody::AddInstrument(spec(INST)));
        t.run(CommandBody::AddInstrument(spec(OTHER)));
        t.run(CommandBody::UpsertAccount(AccountSpec::unlimited(A)));
        t.run(CommandBody::UpsertAccount(AccountSpec::unlimited(B)));
        t
    }

    fn run(&mut self, body: CommandBody) -> Vec<Event> {
        let mut out = Vec::new();
        let seq = self.e.seq() + 1;
        self.e.apply(&Command { seq, ts_ns: 1_000 + seq, body }, &mut out).unwrap();
        self.e.check_invariants().unwrap();
        out
    }

    fn order(&mut self, account: AccountId, inst: InstrumentId, id: &str, side: Side, price: i64) -> Vec<Event> {
        let cl = ClOrdId::new(id.as_bytes()).unwrap();
        self.run(CommandBody::NewOrder(NewOrder::limit(account, cl, inst, side, price, 10)))
    }

    fn op(&mut self, action: OperatorAction) -> (Vec<Event>, OperatorOutcome) {
        let ev = self.run(CommandBody::Operator(OperatorCommand { by: OperatorName::new("alice"), action }));
        match ev.last() {
            Some(Event::Operator(o)) => (ev.clone(), *o),
            other => panic!("an operator command ends with its outcome, got {other:?}"),
        }
    }
}

fn reject(ev: &[Event]) -> Option<RejectReason> {
    ev.iter().find_map(|e| if let Event::Rejected(r) = e { Some(r.reason) } else { None })
}

fn cancels(ev: &[Event]) -> Vec<(AccountId, CancelReason)> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Cancelled { order, reason, .. } => Some((order.account, *reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn halt_refuses_new_orders_and_resume_takes_them_again() {
    let mut t = T::new();
    t.order(A, INST, "a1", Side::Buy, 100);
    let (_, o) = t.op(OperatorAction::SetTradingStatus { instrument: INST, status: TradingStatus::Halted });
    assert_eq!(o.before.status, Some(TradingStatus::Open));
    assert_eq!(o.after.status, Some(TradingStatus::Halted));
    assert_eq!((o.before.live_orders, o.after.live_orders, o.refused), (Some(1), Some(1), None));
    assert_eq!(reject(&t.order(B, INST, "b1", Side::Sell, 100)), Some(RejectReason::InstrumentNotOpen));
    assert_eq!(reject(&t.order(B, OTHER, "b2", Side::Sell, 100)), None, "other instruments trade on");
    t.op(OperatorAction::SetTradingStatus { instrument: INST, status: TradingStatus::Open });
    let ev = t.order(B, INST, "b3", Side::Sell, 100);
    assert!(ev.iter().any(|e| matches!(e, Event::Trade(_))), "the resting order trades after the resume: {ev:?}");
}

#[test]
fn mass_cancel_by_instrument_and_by_account_cancels_only_its_scope() {
    let mut t = T::new();
    t.order(A, INST, "a1", Side::Buy, 100);
    t.order(B, INST, "b1", Side::Buy, 99);
    t.order(A, OTHER, "a2", Side::Buy, 100);
    t.order(B, OTHER, "b2", Side::Buy, 99);
    let (ev, o) = t.op(OperatorAction::MassCancel(MassCancelTarget::Instrument(INST)));
    assert_eq!(cancels(&ev), vec![(A, CancelReason::Operator), (B, CancelReason::Operator)]);
    assert_eq!((o.before.live_orders, o.after.live_orders, o.cancelled), (Some(2), Some(0), 2));
    let (ev, o) = t.op(OperatorAction::MassCancel(MassCancelTarget::Account(B, None)));
    assert_eq!(cancels(&ev), vec![(B, CancelReason::Operator)]);
    assert_eq!((o.before.live_orders, o.after.live_orders), (Some(1), Some(0)));
    assert_eq!(t.e.live_orders(), 1, "A's order in the other instrument stays");
    assert!(!ev.iter().any(|e| matches!(e, Event::MassCancelled { .. })), "no client asked: no mass cancel report");
}

#[test]
fn an_account_kill_switch_cancels_everything_and_refuses_until_released() {
    let mut t = T::new();
    t.order(A, INST, "a1", Side::Buy, 100);
    t.order(A, OTHER, "a2", Side::Sell, 200);
    t.order(B, INST, "b1", Side::Buy, 99);
    let (ev, o) = t.op(OperatorAction::KillAccount { account: A, engaged: true });
    assert_eq!(cancels(&ev).len(), 2);
    assert_eq!(o.before, ScopeState { live_orders: Some(2), status: None, kill_switch: Some(false) });
    assert_eq!(o.after, ScopeState { live_orders: Some(0), status: None, kill_switch: Some(true) });
    assert!(t.e.account_killed(A));
    assert_eq!(reject(&t.order(A, INST, "a3", Side::Buy, 100)), Some(RejectReason::KillSwitch));
    assert_eq!(reject(&t.order(B, INST, "b2", Side::Buy, 100)), None, "other accounts trade on");
    let (_, o) = t.op(OperatorAction::KillAccount { account: A, engaged: false });
    assert_eq!((o.before.kill_switch, o.after.kill_switch), (Some(true), Some(false)));
    assert_eq!(reject(&t.order(A, INST, "a4", Side::Buy, 100)), None);
}

#[test]
fn unknown_targets_are_refused_with_the_reason_and_change_only_the_count() {
    let mut t = T::new();
    let hash = t.e.state_hash();
    let (_, o) = t.op(OperatorAction::KillAccount { account: AccountId(9), engaged: true });
    assert_eq!(o.refused, Some(RejectReason::UnknownAccount));
    let (_, o) = t.op(OperatorAction::SetTradingStatus { instrument: InstrumentId(7), status: TradingStatus::Halted });
    assert_eq!(o.refused, Some(RejectReason::UnknownInstrument));
    let (_, o) = t.op(OperatorAction::MassCancel(MassCancelTarget::Account(A, Some(InstrumentId(7)))));
    assert_eq!(o.refused, Some(RejectReason::UnknownInstrument));
    assert_eq!(t.e.operator_commands(), 3, "refused commands are counted: each has its audit record");
    assert_ne!(t.e.state_hash(), hash, "the count is state");
    assert_eq!(t.e.instrument(INST).map(|s| s.status), Some(TradingStatus::Open));
    assert!(!t.e.account_killed(A) && t.e.killed_sessions().is_empty() && t.e.live_orders() == 0);
}

#[test]
fn session_kill_switches_are_kept_bounded_and_survive_save_and_load() {
    let mut t = T::new();
    let (_, o) = t.op(OperatorAction::KillSession { session: 42, engaged: true });
    assert_eq!((o.before.kill_switch, o.after.kill_switch), (Some(false), Some(true)));
    t.op(OperatorAction::KillSession { session: 7, engaged: true });
    t.op(OperatorAction::KillAccount { account: B, engaged: true });
    assert_eq!(t.e.killed_sessions(), &[7, 42]);
    let loaded = Engine::load(&t.e.save()).unwrap();
    assert_eq!(loaded.killed_sessions(), &[7, 42]);
    assert!(loaded.account_killed(B) && !loaded.account_killed(A));
    assert_eq!(loaded.state_hash(), t.e.state_hash());
    t.op(OperatorAction::KillSession { session: 42, engaged: false });
    assert_eq!(t.e.killed_sessions(), &[7]);
    for s in 100..(100 + MAX_KILLED_SESSIONS as u64 - 1) {
        assert_eq!(t.op(OperatorAction::KillSession { session: s, engaged: true }).1.refused, None);
    }
    let (_, o) = t.op(OperatorAction::KillSession { session: 1, engaged: true });
    assert_eq!(o.refused, Some(RejectReason::TooManyKillSwitches));
}

#[test]
fn operator_names_are_cut_at_sixteen_bytes_on_a_character_boundary() {
    assert_eq!(OperatorName::new("alice").as_str(), "alice");
    assert_eq!(OperatorName::new("a-very-long-operator-name").as_str(), "a-very-long-oper");
    assert_eq!(OperatorName::new("ééééééééé").as_str(), "éééééééé");
}

#[test]
fn operator_commands_fit_the_encoding_bound_and_round_trip() {
    let c = Command {
        seq: u64::MAX,
        ts_ns: u64::MAX,
        body: CommandBody::Operator(OperatorCommand {
            by: OperatorName::new("a-very-long-operator-name"),
            action: OperatorAction::MassCancel(MassCancelTarget::Account(AccountId(u32::MAX), Some(InstrumentId(9)))),
        }),
    };
    let mut buf = [0u8; Command::MAX_ENCODED_LEN];
    let bytes = c.encode(&mut buf).unwrap().to_vec();
    assert_eq!(Command::decode(&bytes).unwrap(), c);
}

#[test]
fn configure_instrument_adds_or_updates_terms_but_keeps_the_trading_status() {
    let mut t = T::new();
    t.op(OperatorAction::SetTradingStatus { instrument: INST, status: TradingStatus::Halted });
    let narrower = InstrumentSpec { max_qty_lots: 50, status: TradingStatus::Open, ..spec(INST) };
    t.run(CommandBody::ConfigureInstrument(narrower));
    let now = t.e.instrument(INST).copied().unwrap();
    assert_eq!((now.max_qty_lots, now.status), (50, TradingStatus::Halted), "terms change, the halt stays");
    let third = InstrumentSpec { symbol: Symbol::new("THRD").unwrap(), ..spec(InstrumentId(3)) };
    t.run(CommandBody::ConfigureInstrument(third));
    assert_eq!(t.e.instrument(InstrumentId(3)), Some(&third), "a missing instrument is added as configured");
    t.op(OperatorAction::SetTradingStatus { instrument: INST, status: TradingStatus::Open });
    assert_eq!(reject(&t.order(A, INST, "a1", Side::Buy, 100)), None);
    let regrid = InstrumentSpec { tick_size: dec!(0.05), ..spec(INST) };
    assert_eq!(reject(&t.run(CommandBody::ConfigureInstrument(regrid))), Some(RejectReason::InstrumentHasOrders));
}
