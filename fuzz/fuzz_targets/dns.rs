//! DNS over UDP (each input record one datagram) and over TCP (a stream of length-prefixed
//! messages), and the wire parser on its own.
//!
//! Invariants: outstanding queries stay under `MAX_OUTSTANDING_QUERIES`; every EVE body
//! serialises; a message the wire parser accepts keeps its question names within the message's
//! compression-expanded bound (255 bytes per name).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_core::{Direction, Timestamp};
use weir_extract::dns::{self, DnsState, MAX_OUTSTANDING_QUERIES};
use weir_extract::Emit;
use weir_fuzz::{check_emit, stream_steps, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    let mut state = DnsState::new();
    if mode & 1 == 0 {
        let mut ns = 0u64;
        while !input.is_empty() {
            let head = input.u8();
            let len = usize::from(input.u16() % 1500);
            let datagram = input.take(len);
            let dir = if head & 1 == 0 { Direction::ToServer } else { Direction::ToClient };
            ns += 1_000_000;
            let mut out = Emit::default();
            state.on_datagram(dir, datagram, Timestamp::from_nanos(ns), &mut out);
            check_emit(&out);
            if let Ok(msg) = dns::wire::parse_message(datagram) {
                let _ = format!("{msg:?}");
            }
            assert!(state.outstanding_queries() <= MAX_OUTSTANDING_QUERIES);
        }
    } else {
        stream_steps(&mut input, |dir, ev, ts| {
            let mut out = Emit::default();
            state.on_stream(dir, ev, ts, &mut out);
            check_emit(&out);
            assert!(state.outstanding_queries() <= MAX_OUTSTANDING_QUERIES);
        });
    }
    for tx in state.transactions() {
        let _ = (tx.query_names().count(), tx.answer_names().count());
        for name in tx.query_names().chain(tx.answer_names()) {
            assert!(name.len() <= 1024, "a DNS name of {} bytes", name.len());
        }
    }
});
