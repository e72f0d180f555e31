//! The MIME Content-Transfer-Encoding decoders (base64, quoted-printable) on arbitrary input, and
//! on the input encoded by a reference encoder.
//!
//! Invariants: base64 output is at most 3/4 of the input (plus a partial quantum), quoted-
//! printable output at most the input; what a conforming encoder wrote (line-wrapped, padded)
//! decodes back to exactly the original bytes and is not flagged damaged.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use weir_extract::mime::decode::{base64 as decode_base64, quoted_printable};

/// Quoted-printable as RFC 2045 writes it: printable ASCII but `=` kept, everything else `=XX`,
/// soft line breaks keeping lines under 76 characters.
fn encode_qp(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut line = 0;
    for &b in bytes {
        let piece = if (33..=126).contains(&b) && b != b'=' { vec![b] } else { format!("={b:02X}").into_bytes() };
        if line + piece.len() > 75 {
            out.extend_from_slice(b"=\r\n");
            line = 0;
        }
        line += piece.len();
        out.extend_from_slice(&piece);
    }
    out
}

fn wrap(encoded: &[u8], width: usize) -> Vec<u8> {
    encoded.chunks(width).flat_map(|c| c.iter().copied().chain(*b"\r\n")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let b = decode_base64(input);
    assert!(b.bytes.len() <= input.len() * 3 / 4 + 3, "base64 made {} bytes of {}", b.bytes.len(), input.len());
    let q = quoted_printable(input);
    assert!(q.bytes.len() <= input.len(), "quoted-printable made {} bytes of {}", q.bytes.len(), input.len());

    let width = 4 * (1 + usize::from(mode & 0x1f));
    let encoded = wrap(base64::engine::general_purpose::STANDARD.encode(input).as_bytes(), width);
    let back = decode_base64(&encoded);
    assert_eq!(back.bytes, input, "base64 round trip");
    assert!(!back.damaged, "clean base64 flagged damaged");

    let back = quoted_printable(&encode_qp(input));
    assert_eq!(back.bytes, input, "quoted-printable round trip");
    assert!(!back.damaged, "clean quoted-printable flagged damaged");
});
