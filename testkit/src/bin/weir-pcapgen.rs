//! Writes stress captures for memory and throughput checks (not for unit tests):
//!
//!   weir-pcapgen syn-flood N OUT.pcap     N TCP SYNs, each from a distinct source address and port
//!   weir-pcapgen udp-flows N OUT.pcap     N one-packet UDP flows
//!
//! Addresses are from 10.0.0.0/8 towards 192.0.2.1 (TEST-NET-1); the capture is only ever read by
//! `weir replay`, never sent anywhere.

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use etherparse::PacketBuilder;
use weir_core::{LinkType, Timestamp};
use weir_testkit::pcap::{PcapOptions, PcapWriter};

fn frame(i: u64, tcp: bool) -> Vec<u8> {
    let src = [10, (i >> 16) as u8, (i >> 8) as u8, i as u8];
    let sport = 1024 + (i >> 24) as u16;
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(src, [192, 0, 2, 1], 64);
    let mut out = Vec::with_capacity(64);
    let result = if tcp {
        builder.tcp(sport, 80, i as u32, 64240).syn().write(&mut out, &[])
    } else {
        builder.udp(sport, 53).write(&mut out, b"flood")
    };
    // Writing into a Vec cannot fail and the sizes are far below every limit.
    result.expect("packet fits");
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: weir-pcapgen (syn-flood|udp-flows) N OUT.pcap";
    let (kind, count, out) = match args.as_slice() {
        [_, kind, n, out] => match n.parse::<u64>() {
            Ok(n) => (kind.as_str(), n, out),
            Err(_) => {
                eprintln!("{usage}");
                return ExitCode::FAILURE;
            }
        },
        _ => {
            eprintln!("{usage}");
            return ExitCode::FAILURE;
        }
    };
    let tcp = match kind {
        "syn-flood" => true,
        "udp-flows" => false,
        _ => {
            eprintln!("{usage}");
            return ExitCode::FAILURE;
        }
    };
    let file = match File::create(out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = PcapOptions { link: LinkType::ETHERNET, ..PcapOptions::default() };
    let mut writer = match PcapWriter::new(BufWriter::new(file), options) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let start = 1_700_000_000u64;
    for i in 0..count {
        // 100k packets per second of capture time.
        let ts = Timestamp::from_secs_nanos(start + i / 100_000, (i % 100_000) * 10_000);
        if let Err(e) = writer.write_packet(ts, &frame(i, tcp)) {
            eprintln!("{out}: {e}");
            return ExitCode::FAILURE;
        }
    }
    match writer.finish() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{out}: {e}");
            ExitCode::FAILURE
        }
    }
}
