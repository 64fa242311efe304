//! The SBE hot path allocates nothing: splitting frames, decoding, converting to engine
//! commands, building reports from engine events and encoding them, counted by a global
//! allocator that records allocations made on this test's thread while measuring.

mod sbe_support;

use std::collections::HashMap;

use engine::sim::FlowGen;
use engine::{Command, CommandBody, Engine, EngineLimits, Event, InstrumentId, InstrumentSpec, OrderId};
use gateway::sbe::convert::{self, OrderTerms, ReportContext, ReportLookup};
use gateway::sbe::{MAX_FRAME_LEN_BYTES, decode_inbound_frame, decode_outbound_frame};

#[path = "support/alloc_counter.rs"]
mod alloc_counter;
use alloc_counter::measure;

struct Lookup {
    spec: InstrumentSpec,
    terms: HashMap<u64, OrderTerms>,
}

impl ReportLookup for Lookup {
    fn instrument(&self, id: InstrumentId) -> Option<&InstrumentSpec> {
        (id == self.spec.id).then_some(&self.spec)
    }
    fn order_terms(&self, id: OrderId) -> Option<OrderTerms> {
        self.terms.get(&id.0).copied()
    }
}

#[test]
fn decode_convert_report_encode_allocate_nothing() {
    // The counter works.
    assert_eq!(measure(|| drop(std::hint::black_box(vec![1u8; 10]))), 1);
    // Set-up (allocates freely): a byte stream of every message type, and the events of a
    // synthetic flow with the order terms they need.
    let stream: Vec<u8> = sbe_support::valid_frames(8).concat();
    let flow = FlowGen::new(7, InstrumentId(0), 4);
    let mut engine = Engine::new(EngineLimits::SMALL);
    let mut spec = None;
    let mut commands = Vec::new();
    let mut gen_flow = flow.clone();
    for (i, body) in
        flow.setup().into_iter().chain((0..3_000).map(|i| gen_flow.next_body((i + 10) * 1_000))).enumerate()
    {
        if let CommandBody::AddInstrument(s) = &body {
            spec = Some(*s);
        }
        let seq = i as u64 + 1;
        let cmd = Command { seq, ts_ns: seq * 1_000, body };
        let mut events = Vec::new();
        engine.apply(&cmd, &mut events).unwrap();
        commands.push((cmd, events));
    }
    let mut lookup = Lookup { spec: spec.unwrap(), terms: HashMap::new() };
    for (_, events) in &commands {
        for e in events {
            if let Event::Accepted(v) | Event::Triggered(v) | Event::Replaced { order: v, .. } = e {
                lookup.terms.insert(v.id.0, OrderTerms::from(v));
            }
        }
    }

    let mut frames = 0u64;
    let mut reports = 0u64;
    let allocations = measure(|| {
        let mut out = [0u8; MAX_FRAME_LEN_BYTES];
        let mut buf = &stream[..];
        while let Ok(Some((len, inbound))) = decode_inbound_frame(buf) {
            if let Ok(m) = inbound {
                let _ = convert::command_body(&m, |id| (id == lookup.spec.id).then_some(&lookup.spec));
                m.encode(&mut out).unwrap();
            }
            if let Ok(Some((_, Ok(m)))) = decode_outbound_frame(buf) {
                m.encode(&mut out).unwrap();
            }
            buf = &buf[len..];
            frames += 1;
        }
        for (cmd, events) in &commands {
            let mut ctx = ReportContext { transact_time_ns: cmd.ts_ns, next_exec_id: cmd.seq << 16 };
            for e in events {
                convert::event_reports(e, &cmd.body, &lookup, &mut ctx, |_, r| {
                    r.encode(&mut out).unwrap();
                    reports += 1;
                })
                .unwrap();
            }
        }
    });
    assert!(frames >= 160 && reports > 3_000, "frames {frames}, reports {reports}");
    assert_eq!(allocations, 0, "the SBE path allocated {allocations} times");
}
