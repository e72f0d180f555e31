//! TLS records and handshakes on both directions of a stream from the input, and the handshake
//! and certificate parsers on their own.
//!
//! Invariants: every EVE body serialises; a parsed certificate list's certificates lie inside
//! the message they came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_extract::tls::{self, TlsState};
use weir_extract::Emit;
use weir_fuzz::{check_emit, stream_steps, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    match input.u8() % 4 {
        0 => {
            let body = input.rest();
            let _ = tls::handshake::parse_client_hello(body);
            let _ = tls::handshake::parse_server_hello(body);
        }
        1 => {
            let body = input.rest();
            if let Some(certs) = tls::handshake::parse_certificate_list(body) {
                let whole = body.as_ptr_range();
                for cert in certs {
                    let c = cert.as_ptr_range();
                    assert!(cert.is_empty() || (whole.start <= c.start && c.end <= whole.end));
                    let _ = tls::x509::parse(cert);
                }
            }
            let _ = tls::x509::parse(body);
        }
        _ => {
            let mut state = TlsState::new();
            stream_steps(&mut input, |dir, ev, ts| {
                let mut out = Emit::default();
                state.on_stream(dir, ev, ts, &mut out);
                check_emit(&out);
            });
        }
    }
});
