//! The packet-parse floor for benchmarks: read capture files as `weir replay` does (streamed,
//! not loaded whole) and decode every packet, with no flow table, reassembly, parsing or
//! detection. `cargo run --release --example read_decode -- FILE...`

use std::time::Instant;

use weir_capture::{FileSource, PacketSource};
use weir_decode::{DecodeConfig, Decoder};

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let mut source = match FileSource::open(&paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("read_decode: {e}");
            std::process::exit(1);
        }
    };
    let mut decoder = Decoder::new(DecodeConfig::default());
    let (mut packets, mut bytes, mut decoded) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    loop {
        match source.next_packet() {
            Ok(Some(p)) => {
                packets += 1;
                bytes += p.data.len() as u64;
                decoder.decode(p.ts, p.link, p.data, &mut |_| decoded += 1);
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("read_decode: {e}");
                std::process::exit(1);
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "read_decode: {packets} packets, {bytes} bytes, {decoded} decoded in {secs:.2} s: {:.2} Gbit/s, {:.2} Mpackets/s",
        bytes as f64 * 8.0 / secs / 1e9,
        packets as f64 / secs / 1e6
    );
}
