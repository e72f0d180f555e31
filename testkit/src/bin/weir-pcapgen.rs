//! Writes stress and hostile captures for memory and throughput checks (not for unit tests):
//!
//!   weir-pcapgen KIND N OUT.pcap
//!
//! `weir-pcapgen --list` names every KIND with what N counts (see `weir_testkit::adversarial`).
//! Addresses are from 10.0.0.0/8 towards 192.0.2.0/24 (TEST-NET-1); the capture is only ever
//! read by `weir replay`, never sent anywhere.

use std::fs::File;
use std::io::BufWriter;
use std::process::ExitCode;

use weir_core::LinkType;
use weir_testkit::adversarial::{KINDS, Sink, generate};
use weir_testkit::pcap::{PcapOptions, PcapWriter};

fn usage() -> ExitCode {
    eprintln!("usage: weir-pcapgen KIND N OUT.pcap   (weir-pcapgen --list for the kinds)");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--list") {
        for (kind, count) in KINDS {
            println!("{kind:<18} N = {count}");
        }
        return ExitCode::SUCCESS;
    }
    let [_, kind, n, out] = args.as_slice() else {
        return usage();
    };
    let Ok(count) = n.parse::<u64>() else {
        return usage();
    };
    if !KINDS.iter().any(|(k, _)| k == kind) {
        eprintln!("weir-pcapgen: unknown kind {kind}");
        return usage();
    }
    let file = match File::create(out) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{out}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = PcapOptions { link: LinkType::ETHERNET, ..PcapOptions::default() };
    let result = PcapWriter::new(BufWriter::new(file), options).and_then(|writer| {
        let mut sink = Sink::new(writer);
        generate(kind, count, &mut sink)?;
        let packets = sink.packets();
        sink.finish()?;
        Ok(packets)
    });
    match result {
        Ok(packets) => {
            println!("{out}: {packets} packets");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{out}: {e}");
            ExitCode::FAILURE
        }
    }
}
