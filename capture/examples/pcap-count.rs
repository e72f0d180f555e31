//! Counts the packets of capture files or directories and reports read throughput:
//! `cargo run -p weir-capture --example pcap-count -- FILE...`.

use std::time::Instant;

use weir_capture::{FileSource, PacketSource};

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let mut source = match FileSource::open(&paths) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pcap-count: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let (mut packets, mut bytes, mut checksum) = (0u64, 0u64, 0u64);
    loop {
        match source.next_packet() {
            Ok(Some(p)) => {
                packets += 1;
                bytes += p.data.len() as u64;
                // Touch the data so the read is not optimised away.
                checksum = checksum.wrapping_add(u64::from(p.data.first().copied().unwrap_or(0)));
            }
            Ok(None) => break,
            Err(e) => eprintln!("pcap-count: {e}"),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    for w in source.warnings() {
        eprintln!("pcap-count: warning: {w}");
    }
    println!(
        "{packets} packets, {bytes} captured bytes, {} file bytes in {secs:.2} s ({:.0} MB/s, {:.2} Mpps) [{checksum}]",
        source.bytes_read(),
        source.bytes_read() as f64 / secs / 1e6,
        packets as f64 / secs / 1e6
    );
}
