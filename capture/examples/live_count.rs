//! Captures from an interface and prints what it saw as JSON lines, for scripts and tests:
//!
//! ```text
//! live_count --interface IF [--filter EXPR] [--count N] [--count-port PORT]
//!            [--max-seconds S] [--idle-exit-ms MS] [--privileges retain|drop-all|keep]
//!            [--snaplen BYTES] [--buffer-bytes BYTES]
//! ```
//!
//! Prints `{"event":"ready",...}` once the interface is open (send traffic after that line),
//! `{"event":"warning",...}` as warnings come, and a final `{"event":"done",...}` with the
//! counts, once `--count` packets were seen (all packets, or only IPv4 UDP ones to
//! `--count-port`), the capture was idle for `--idle-exit-ms` after its first packet, or
//! `--max-seconds` passed (a safety net; the default is 30).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use weir_capture::live::{LiveOptions, LivePoll, LiveSource, LiveStats, Privileges};

struct Args {
    options: LiveOptions,
    count: Option<u64>,
    count_port: Option<u16>,
    max_time: Duration,
    idle_exit: Option<Duration>,
}

fn parse_args() -> Result<Args, String> {
    let mut interface = None;
    let mut filter = None;
    let mut count = None;
    let mut count_port = None;
    let mut max_time = Duration::from_secs(30);
    let mut idle_exit = None;
    let mut privileges = Privileges::RetainNetRaw;
    let mut snaplen = None;
    let mut buffer_bytes = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--interface" => interface = Some(value()?),
            "--filter" => filter = Some(value()?),
            "--count" => count = Some(number(value()?)?),
            "--count-port" => count_port = Some(value()?.parse::<u16>().map_err(|e| format!("--count-port: {e}"))?),
            "--max-seconds" => max_time = Duration::from_secs(number(value()?)?),
            "--snaplen" => snaplen = Some(number(value()?)?),
            "--buffer-bytes" => buffer_bytes = Some(number(value()?)?),
            "--idle-exit-ms" => idle_exit = Some(Duration::from_millis(number(value()?)?)),
            "--privileges" => {
                privileges = match value()?.as_str() {
                    "retain" => Privileges::RetainNetRaw,
                    "drop-all" => Privileges::DropAll,
                    "keep" => Privileges::Keep,
                    other => return Err(format!("--privileges {other}: expected retain, drop-all or keep")),
                }
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let mut options = LiveOptions::new(interface.ok_or("--interface is required")?);
    options.filter = filter;
    options.privileges = privileges;
    let to_u32 = |what: &str, v: u64| u32::try_from(v).map_err(|_| format!("{what} {v} is too large"));
    if let Some(v) = snaplen {
        options.snaplen = to_u32("--snaplen", v)?;
    }
    if let Some(v) = buffer_bytes {
        options.buffer_bytes = to_u32("--buffer-bytes", v)?;
    }
    Ok(Args { options, count, count_port, max_time, idle_exit })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("live_count: {e}");
            return ExitCode::from(2);
        }
    };
    let mut source = match LiveSource::open(args.options.clone()) {
        Ok(s) => s,
        Err(e) => {
            let kind = match &e {
                weir_capture::live::LiveError::NoSuchInterface { .. } => "no-such-interface",
                weir_capture::live::LiveError::PermissionDenied { .. } => "permission-denied",
                weir_capture::live::LiveError::BadFilter { .. } => "bad-filter",
                _ => "other",
            };
            emit(&format!(r#"{{"event":"error","kind":"{kind}","message":{}}}"#, json_string(&e.to_string())));
            return ExitCode::from(1);
        }
    };
    emit(&format!(
        r#"{{"event":"ready","interface":{},"link_type":{},"effective_caps":{},"permitted_caps":{}}}"#,
        json_string(&args.options.interface),
        source.link_type().0,
        json_string(&proc_status_field("CapEff")),
        json_string(&proc_status_field("CapPrm")),
    ));

    let started = Instant::now();
    let mut last_packet: Option<Instant> = None;
    let mut packets = 0u64;
    let mut counted = 0u64;
    let mut bytes = 0u64;
    let mut other = 0u64;
    let mut by_port: BTreeMap<u16, u64> = BTreeMap::new();
    let (mut first_ts, mut last_ts, mut ts_ordered) = (0u64, 0u64, true);
    let mut warnings = 0u64;
    let outcome = loop {
        if args.count.is_some_and(|n| counted >= n) {
            break "count";
        }
        if started.elapsed() >= args.max_time {
            break "max-seconds";
        }
        match source.poll() {
            Ok(LivePoll::Packet(p)) => {
                last_packet = Some(Instant::now());
                packets += 1;
                bytes += p.data.len() as u64;
                let ts = p.ts.as_nanos();
                if first_ts == 0 {
                    first_ts = ts;
                }
                ts_ordered &= ts >= last_ts;
                last_ts = ts;
                match udp_dst_port(p.link.0, p.data) {
                    Some(port) => {
                        *by_port.entry(port).or_default() += 1;
                        counted += u64::from(args.count_port.is_none_or(|p| p == port));
                    }
                    None => {
                        other += 1;
                        counted += u64::from(args.count_port.is_none());
                    }
                }
            }
            Ok(LivePoll::Idle) => {
                for w in source.take_warnings() {
                    warnings += 1;
                    emit(&format!(r#"{{"event":"warning","message":{}}}"#, json_string(&w.to_string())));
                }
                if let (Some(idle), Some(last)) = (args.idle_exit, last_packet)
                    && last.elapsed() >= idle
                {
                    break "idle";
                }
            }
            Ok(LivePoll::Stopped) => break "stopped",
            Err(e) => {
                emit(&format!(r#"{{"event":"error","kind":"read","message":{}}}"#, json_string(&e.to_string())));
                break "error";
            }
        }
    };
    let stats = source.kernel_stats().unwrap_or_else(|e| {
        eprintln!("live_count: {e}");
        LiveStats::default()
    });
    let ports: Vec<String> = by_port.iter().map(|(port, n)| format!(r#""{port}":{n}"#)).collect();
    emit(&format!(
        concat!(
            r#"{{"event":"done","outcome":"{}","packets":{},"bytes":{},"udp_dst_ports":{{{}}},"other":{},"#,
            r#""kernel_received":{},"kernel_dropped":{},"interface_dropped":{},"failures":{},"reopens":{},"#,
            r#""warnings":{},"first_ts_ns":{},"last_ts_ns":{},"ts_nondecreasing":{},"seconds":{:.3}}}"#
        ),
        outcome,
        packets,
        bytes,
        ports.join(","),
        other,
        stats.kernel_received,
        stats.kernel_dropped,
        stats.interface_dropped,
        stats.failures,
        stats.reopens,
        warnings,
        first_ts,
        last_ts,
        ts_ordered,
        started.elapsed().as_secs_f64(),
    ));
    if outcome == "error" { ExitCode::from(1) } else { ExitCode::SUCCESS }
}

/// Destination port of an IPv4 UDP packet in an Ethernet frame (one VLAN tag allowed).
fn udp_dst_port(link: u32, frame: &[u8]) -> Option<u16> {
    if link != 1 {
        return None;
    }
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    if ethertype == 0x8100 {
        at += 4;
        ethertype = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    }
    let ip = frame.get(at + 2..)?;
    if ethertype != 0x0800 || ip.first()? >> 4 != 4 || *ip.get(9)? != 17 {
        return None;
    }
    // Only first fragments carry the UDP header.
    if u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1FFF != 0 {
        return None;
    }
    let udp = ip.get(usize::from(ip[0] & 0x0F) * 4..)?;
    Some(u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]))
}

fn proc_status_field(name: &str) -> String {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(&format!("{name}:")).map(|v| v.trim().to_string())))
        .unwrap_or_default()
}

fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    // A reader that went away (a test that gave up) is no reason to panic.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
