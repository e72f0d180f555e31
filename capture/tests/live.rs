//! LiveSource on real interfaces: a veth pair between two network namespaces made for each test,
//! with addresses only inside them, so nothing leaves the machine and no other test's traffic is
//! seen. Needs root (for `ip netns`); without it, or where namespaces cannot be made, each test
//! prints why and passes without checking anything.
//!
//! The capturing side runs inside namespace B as a child process: this test binary itself, run
//! as `ip netns exec B <this binary> helper_capture --ignored ...` with its settings in the
//! environment. It prints JSON lines (`ready`, `progress`, `warning`, `error`, `done`) that the
//! test reads to know when to send and what was seen. The sending side is `helper_send` run the
//! same way in namespace A. Namespaces are deleted when a test ends, passed or failed.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use weir_capture::PacketSource;
use weir_capture::live::{LiveError, LiveOptions, LivePoll, LiveSource, Privileges};

/// CAP_NET_RAW alone, as /proc/self/status prints a capability set.
const NET_RAW_ONLY: &str = "0000000000002000";
const NO_CAPS: &str = "0000000000000000";

// ---------------------------------------------------------------------------------------------
// The tests

#[test]
fn filtered_capture_sees_every_matching_datagram_and_nothing_else() {
    let Some(pair) = Pair::create(1) else { return };
    let mut capture = pair.capture(&[("WEIR_LIVE_FILTER", "udp dst port 5555"), ("WEIR_LIVE_COUNT", "50")]);
    let ready = capture.wait_for("ready", |_| true);
    assert_eq!(ready["link_type"], 1, "a veth is Ethernet");
    // Everything but CAP_NET_RAW (kept, not effective, for reopening) is gone once open.
    assert_eq!(ready["effective_caps"], NO_CAPS);
    assert_eq!(ready["permitted_caps"], NET_RAW_ONLY);
    // The excluded datagrams go first: once the 50 matching ones are seen, the kernel has
    // already judged (and refused) the others.
    pair.send(6666, 30);
    pair.send(5555, 50);
    let done = capture.wait_for("done", |_| true);
    assert_eq!(done["outcome"], "count");
    assert_eq!(done["udp_dst_ports"], json!({"5555": 50}));
    assert_eq!(done["other"], 0);
    // The kernel counts what passed the filter, so refused packets are not "received".
    assert_eq!(done["kernel_received"], 50);
    assert_eq!(done["kernel_dropped"], 0);
    assert_eq!(done["failures"], 0);
}

#[test]
fn unfiltered_capture_sees_all_traffic_with_nanosecond_wall_clock_times() {
    let Some(pair) = Pair::create(2) else { return };
    // Through PacketSource::next_packet this time (the copying path).
    let mut capture = pair.capture(&[("WEIR_LIVE_COUNT", "60"), ("WEIR_LIVE_API", "trait")]);
    capture.wait_for("ready", |_| true);
    let before = now_nanos();
    pair.send(6666, 20);
    pair.send(5555, 40);
    let done = capture.wait_for("done", |_| true);
    let after = now_nanos();
    assert_eq!(done["udp_dst_ports"], json!({"5555": 40, "6666": 20}));
    // IPv6 is off and the neighbour entry is static, so there is no ND or ARP chatter.
    assert_eq!(done["other"], 0);
    assert_eq!(done["kernel_received"], 60);
    let first = done["first_ts_ns"].as_u64().unwrap_or(0);
    let last = done["last_ts_ns"].as_u64().unwrap_or(0);
    assert!(before <= first && first <= last && last <= after, "{before} <= {first} <= {last} <= {after}");
    // Microseconds read as nanoseconds would fall before `before`; microseconds scaled up would
    // end in 000 every time.
    assert!(first % 1000 != 0 || last % 1000 != 0, "timestamps look like microseconds: {first} {last}");
}

#[test]
fn a_filter_that_does_not_compile_is_one_error_naming_it() {
    let Some(pair) = Pair::create(3) else { return };
    let mut capture = pair.capture(&[("WEIR_LIVE_FILTER", "udp port nope")]);
    let error = capture.wait_for("error", |_| true);
    assert_eq!(error["kind"], "bad-filter");
    assert_eq!(
        error["message"],
        format!("{}: BPF filter \"udp port nope\" does not compile: unknown port 'nope'", pair.if_b)
    );
}

#[test]
fn missing_interface_and_missing_privilege_are_one_clear_error_each() {
    let Some(pair) = Pair::create(4) else { return };
    let mut capture = pair.capture(&[("WEIR_LIVE_IF", "weir-absent0")]);
    let error = capture.wait_for("error", |_| true);
    assert_eq!(error["kind"], "no-such-interface");
    let message = error["message"].as_str().unwrap_or("");
    assert!(message.starts_with("weir-absent0: no such network interface (present: "), "{message}");
    assert!(message.contains(&pair.if_b), "the interfaces present are listed: {message}");

    // An unprivileged user (uid 65534, no capabilities) on an interface that exists.
    let Some(setpriv) = which("setpriv") else {
        eprintln!("skipped the permission half: setpriv is not installed");
        return;
    };
    let Some(exe) = world_executable_copy_of_self() else {
        eprintln!("skipped the permission half: cannot copy the test binary for an unprivileged user");
        return;
    };
    let mut capture = pair.capture_with(
        &[setpriv.to_str().unwrap_or("setpriv"), "--reuid=65534", "--regid=65534", "--clear-groups"],
        &exe.path,
        &[],
    );
    let error = capture.wait_for("error", |_| true);
    assert_eq!(error["kind"], "permission-denied", "{error}");
    let message = error["message"].as_str().unwrap_or("");
    assert!(message.starts_with(&format!("{}: permission denied opening it for capture", pair.if_b)), "{message}");
    assert!(message.contains("CAP_NET_RAW"), "{message}");
}

#[test]
fn link_down_and_interface_removal_are_survived() {
    let Some(pair) = Pair::create(5) else { return };
    let mut capture = pair.capture(&[
        ("WEIR_LIVE_FILTER", "udp dst port 5555"),
        ("WEIR_LIVE_COUNT", "15"),
        ("WEIR_LIVE_PROGRESS", "1"),
    ]);
    capture.wait_for("ready", |_| true);
    pair.send(5555, 5);
    capture.wait_for("progress", |e| e["packets"] == 5);

    // Down and up: the same handle resumes; the source notices through operstate.
    pair.ip_b(&["link", "set", &pair.if_b, "down"]);
    capture.wait_for("warning", |e| text(e).contains("link is down"));
    pair.ip_b(&["link", "set", &pair.if_b, "up"]);
    capture.wait_for("warning", |e| text(e).contains("link is up again"));
    pair.send(5555, 5);
    capture.wait_for("progress", |e| e["packets"] == 10);

    // Removed and made again under the same name: the handle is dead and must be reopened.
    pair.ip_b(&["link", "del", &pair.if_b]);
    capture.wait_for("warning", |e| text(e).contains("capture failed: The interface disappeared"));
    pair.make_veth();
    capture.wait_for("warning", |e| text(e).contains("capture resumed after"));
    pair.send(5555, 5);
    let done = capture.wait_for("done", |_| true);
    assert_eq!(done["udp_dst_ports"], json!({"5555": 15}));
    assert_eq!(done["failures"], 1);
    assert_eq!(done["reopens"], 1);
    // Counted across both handles, each of which started from zero.
    assert_eq!(done["kernel_received"], 15);
}

#[test]
fn with_every_capability_dropped_a_lost_interface_ends_the_run() {
    let Some(pair) = Pair::create(6) else { return };
    let mut capture = pair.capture(&[("WEIR_LIVE_PRIVILEGES", "drop-all")]);
    let ready = capture.wait_for("ready", |_| true);
    assert_eq!(ready["effective_caps"], NO_CAPS);
    assert_eq!(ready["permitted_caps"], NO_CAPS);
    pair.ip_b(&["link", "del", &pair.if_b]);
    let error = capture.wait_for("error", |_| true);
    assert_eq!(error["kind"], "interface-lost");
    assert_eq!(
        error["message"],
        format!(
            "{}: interface lost (The interface disappeared) and it cannot be reopened because capabilities were dropped; restart, or keep CAP_NET_RAW for reopening",
            pair.if_b
        )
    );
}

#[test]
fn a_reader_that_falls_behind_has_every_kernel_drop_counted() {
    let Some(pair) = Pair::create(7) else { return };
    // A kernel buffer of a few hundred small frames, and a reader that reads nothing until all
    // traffic has arrived.
    let mut capture = pair.capture(&[
        ("WEIR_LIVE_FILTER", "udp dst port 5555"),
        ("WEIR_LIVE_SNAPLEN", "2048"),
        ("WEIR_LIVE_BUFFER", "65536"),
        ("WEIR_LIVE_WAIT_GO", "1"),
        ("WEIR_LIVE_IDLE_EXIT_MS", "1000"),
    ]);
    capture.wait_for("ready", |_| true);
    pair.send(5555, 3000);
    capture.go();
    let done = capture.wait_for("done", |_| true);
    let seen = done["udp_dst_ports"]["5555"].as_u64().unwrap_or(0);
    let dropped = done["kernel_dropped"].as_u64().unwrap_or(0);
    // Linux counts dropped packets as received too: every packet is either read or dropped.
    assert_eq!(done["kernel_received"], 3000, "{done}");
    assert_eq!(seen + dropped, 3000, "{done}");
    assert!(dropped > 0 && seen > 0, "{done}");
    assert_eq!(done["interface_dropped"], 0);
}

/// In this process, on the host's loopback (nothing is sent): stopping ends next_packet with
/// `Ok(None)` and poll with `Stopped`, also while a read is waiting on another thread.
#[test]
fn stop_handle_finishes_the_source() {
    if !is_root() {
        eprintln!("skipped: opening an interface needs root");
        return;
    }
    let mut options = LiveOptions::new("lo");
    // Keep: dropping capabilities here would take them from the whole test process.
    options.privileges = Privileges::Keep;
    // Matches nothing, so every read waits.
    options.filter = Some("udp port 1 and udp port 2".into());
    let mut source = match LiveSource::open(options) {
        Ok(s) => s,
        Err(e) => panic!("opening lo: {e}"),
    };
    let stop = source.stop_handle();
    let stopper = std::thread::spawn(move || stop.stop());
    assert!(matches!(source.next_packet(), Ok(None)));
    assert!(matches!(source.poll(), Ok(LivePoll::Stopped)));
    let _ = stopper.join();
    let stats = source.kernel_stats().unwrap_or_else(|e| panic!("{e}"));
    // Not kernel_received: other processes' loopback traffic that arrived between the
    // socket's creation and the filter's attachment is counted there.
    assert_eq!(stats.packets, 0);
    assert_eq!(source.stats_handle().snapshot(), stats, "kernel_stats publishes");
}

#[test]
fn a_filter_that_does_not_compile_fails_in_process_too() {
    if !is_root() {
        eprintln!("skipped: opening an interface needs root");
        return;
    }
    let mut options = LiveOptions::new("lo");
    options.privileges = Privileges::Keep;
    options.filter = Some("tcp port".into());
    match LiveSource::open(options) {
        Err(LiveError::BadFilter { interface, filter, reason }) => {
            assert_eq!((interface.as_str(), filter.as_str()), ("lo", "tcp port"));
            assert!(!reason.is_empty());
        }
        Err(other) => panic!("expected BadFilter, got {other}"),
        Ok(_) => panic!("a filter missing its port number compiled"),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers run as child processes inside a namespace

/// The capturing side. Settings: WEIR_LIVE_IF, WEIR_LIVE_FILTER, WEIR_LIVE_COUNT (stop after
/// that many packets), WEIR_LIVE_PRIVILEGES (retain | drop-all), WEIR_LIVE_API (poll | trait),
/// WEIR_LIVE_PROGRESS (print each packet count), WEIR_LIVE_SINK_PORTS (UDP ports to bind, so
/// datagrams to them are not answered with ICMP errors that would show up in the capture).
#[test]
#[ignore = "helper: run by the other tests inside a network namespace"]
fn helper_capture() {
    let Ok(interface) = std::env::var("WEIR_LIVE_IF") else { return };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let _sinks: Vec<UdpSocket> = env("WEIR_LIVE_SINK_PORTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|p| UdpSocket::bind(("0.0.0.0", p.parse::<u16>().ok()?)).ok())
        .collect();
    let mut options = LiveOptions::new(interface);
    options.filter = env("WEIR_LIVE_FILTER");
    options.privileges = match env("WEIR_LIVE_PRIVILEGES").as_deref() {
        Some("drop-all") => Privileges::DropAll,
        _ => Privileges::RetainNetRaw,
    };
    if let Some(bytes) = env("WEIR_LIVE_BUFFER").and_then(|b| b.parse().ok()) {
        options.buffer_bytes = bytes;
    }
    if let Some(bytes) = env("WEIR_LIVE_SNAPLEN").and_then(|b| b.parse().ok()) {
        options.snaplen = bytes;
    }
    let count: u64 = env("WEIR_LIVE_COUNT").and_then(|c| c.parse().ok()).unwrap_or(u64::MAX);
    let idle_exit = env("WEIR_LIVE_IDLE_EXIT_MS").and_then(|c| c.parse().ok()).map(Duration::from_millis);
    let mut last_packet: Option<Instant> = None;
    let progress = env("WEIR_LIVE_PROGRESS").is_some();
    let use_trait = env("WEIR_LIVE_API").as_deref() == Some("trait");
    // A safety net so a test whose traffic never comes does not hang.
    let deadline = Instant::now() + Duration::from_secs(40);

    let mut source = match LiveSource::open(options) {
        Ok(s) => s,
        Err(e) => return emit(json!({"event": "error", "kind": error_kind(&e), "message": e.to_string()})),
    };
    emit(json!({
        "event": "ready",
        "link_type": source.link_type().0,
        "effective_caps": proc_status("CapEff"),
        "permitted_caps": proc_status("CapPrm"),
    }));
    if env("WEIR_LIVE_WAIT_GO").is_some() {
        // Read nothing until the test says so: whatever arrives meanwhile fills the buffer.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }
    if use_trait {
        // next_packet returns when a packet comes; the deadline stops it through the handle.
        let stop = source.stop_handle();
        std::thread::spawn(move || {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            stop.stop();
        });
    }
    let mut seen = Seen::default();
    let outcome = loop {
        if seen.packets >= count {
            break "count";
        }
        if Instant::now() >= deadline {
            break "deadline";
        }
        if use_trait {
            match source.next_packet() {
                Ok(Some(p)) => seen.add(p.ts.as_nanos(), p.data),
                Ok(None) => break "stopped",
                Err(e) => {
                    emit(json!({"event": "error", "kind": "read", "message": e.to_string()}));
                    break "error";
                }
            }
        } else {
            match source.poll() {
                Ok(LivePoll::Packet(p)) => {
                    seen.add(p.ts.as_nanos(), p.data);
                    last_packet = Some(Instant::now());
                }
                Ok(LivePoll::Idle) => {
                    if let (Some(idle), Some(last)) = (idle_exit, last_packet)
                        && last.elapsed() >= idle
                    {
                        break "idle";
                    }
                }
                Ok(LivePoll::Stopped) => break "stopped",
                Err(e) => {
                    emit(json!({"event": "error", "kind": error_kind(&e), "message": e.to_string()}));
                    break "error";
                }
            }
        }
        for w in source.take_warnings() {
            emit(json!({"event": "warning", "message": w.to_string()}));
        }
        if progress && seen.packets > seen.reported {
            seen.reported = seen.packets;
            emit(json!({"event": "progress", "packets": seen.packets}));
        }
    };
    let stats = source.kernel_stats().unwrap_or_default();
    emit(json!({
        "event": "done",
        "outcome": outcome,
        "udp_dst_ports": seen.ports.iter().map(|(p, n)| (p.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "other": seen.other,
        "first_ts_ns": seen.first_ts,
        "last_ts_ns": seen.last_ts,
        "kernel_received": stats.kernel_received,
        "kernel_dropped": stats.kernel_dropped,
        "interface_dropped": stats.interface_dropped,
        "failures": stats.failures,
        "reopens": stats.reopens,
    }));
}

/// The sending side: WEIR_LIVE_SEND = "ADDR PORT COUNT", datagrams of 16 bytes.
#[test]
#[ignore = "helper: run by the other tests inside a network namespace"]
fn helper_send() {
    let Ok(spec) = std::env::var("WEIR_LIVE_SEND") else { return };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [addr, port, count] = parts[..] else { panic!("WEIR_LIVE_SEND={spec}") };
    let port: u16 = port.parse().unwrap_or_else(|e| panic!("{port}: {e}"));
    let count: u32 = count.parse().unwrap_or_else(|e| panic!("{count}: {e}"));
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("bind: {e}"));
    for i in 0..count {
        let payload = format!("weir-live {i:06}");
        socket.send_to(payload.as_bytes(), (addr, port)).unwrap_or_else(|e| panic!("send to {addr}:{port}: {e}"));
    }
}

#[derive(Default)]
struct Seen {
    packets: u64,
    reported: u64,
    ports: BTreeMap<u16, u64>,
    other: u64,
    first_ts: u64,
    last_ts: u64,
}

impl Seen {
    fn add(&mut self, ts: u64, frame: &[u8]) {
        self.packets += 1;
        if self.first_ts == 0 {
            self.first_ts = ts;
        }
        self.last_ts = ts;
        match udp_dst_port(frame) {
            Some(port) => *self.ports.entry(port).or_default() += 1,
            None => self.other += 1,
        }
    }
}

/// Destination port of an unfragmented IPv4 UDP datagram in an Ethernet frame.
fn udp_dst_port(frame: &[u8]) -> Option<u16> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    if ethertype != 0x0800 || *ip.get(9)? != 17 {
        return None;
    }
    let udp = ip.get(usize::from(ip.first()? & 0x0F) * 4..)?;
    Some(u16::from_be_bytes([*udp.get(2)?, *udp.get(3)?]))
}

fn error_kind(e: &LiveError) -> &'static str {
    match e {
        LiveError::NoSuchInterface { .. } => "no-such-interface",
        LiveError::PermissionDenied { .. } => "permission-denied",
        LiveError::BadFilter { .. } => "bad-filter",
        LiveError::InterfaceLost { .. } => "interface-lost",
        _ => "other",
    }
}

fn emit(event: Value) {
    println!("{event}");
}

/// A field of this thread's status: capabilities are per thread, and the harness runs each
/// test on a thread of its own.
fn proc_status(field: &str) -> String {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string())))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Namespaces

/// Two namespaces joined by a veth pair, `if_a` (10.250.N.1) in `ns_a` and `if_b` (10.250.N.2)
/// in `ns_b`; deleted (with the veths in them) on drop.
struct Pair {
    ns_a: String,
    ns_b: String,
    if_a: String,
    if_b: String,
    addr_a: String,
    addr_b: String,
    mac_b: String,
}

impl Pair {
    /// `None` (with the reason printed) when this machine cannot run live tests.
    fn create(n: u8) -> Option<Pair> {
        if !is_root() {
            eprintln!("skipped: live capture tests need root (ip netns, CAP_NET_RAW)");
            return None;
        }
        let pid = std::process::id();
        let pair = Pair {
            // The whole process id: delete_orphaned_namespaces checks it.
            ns_a: format!("weir-live-a{n}-{pid}"),
            ns_b: format!("weir-live-b{n}-{pid}"),
            // Interface names are at most 15 bytes; they only need to differ within a namespace.
            if_a: format!("wla{n}x{}", pid % 100_000),
            if_b: format!("wlb{n}x{}", pid % 100_000),
            addr_a: format!("10.250.{n}.1"),
            addr_b: format!("10.250.{n}.2"),
            mac_b: format!("02:77:65:69:72:{n:02x}"),
        };
        delete_orphaned_namespaces();
        // Left over from a killed run that had this process id: start clean.
        for ns in [&pair.ns_a, &pair.ns_b] {
            let _ = run("ip", &["netns", "del", ns]);
        }
        for ns in [&pair.ns_a, &pair.ns_b] {
            if let Err(e) = run("ip", &["netns", "add", ns]) {
                eprintln!("skipped: `ip netns add` failed: {e}");
                return None;
            }
            // No IPv6 means no router solicitations or MLD reports mixed into the capture.
            let _ = run("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            let _ = run("ip", &["netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        }
        pair.make_veth();
        Some(pair)
    }

    /// Creates (or recreates) the veth pair and configures both ends. The sender gets a static
    /// neighbour entry, so no ARP exchange precedes (or mixes into) the test traffic.
    fn make_veth(&self) {
        let steps: [&[&str]; 8] = [
            &["link", "add", &self.if_a, "type", "veth", "peer", "name", &self.if_b],
            &["link", "set", &self.if_b, "address", &self.mac_b],
            &["link", "set", &self.if_a, "netns", &self.ns_a],
            &["link", "set", &self.if_b, "netns", &self.ns_b],
            &["-n", &self.ns_a, "addr", "add", &format!("{}/24", self.addr_a), "dev", &self.if_a],
            &["-n", &self.ns_b, "addr", "add", &format!("{}/24", self.addr_b), "dev", &self.if_b],
            &["-n", &self.ns_a, "link", "set", &self.if_a, "up"],
            &["-n", &self.ns_b, "link", "set", &self.if_b, "up"],
        ];
        for step in steps {
            run("ip", step).unwrap_or_else(|e| panic!("setting up the veth pair: {e}"));
        }
        run(
            "ip",
            &[
                "-n",
                &self.ns_a,
                "neigh",
                "replace",
                &self.addr_b,
                "lladdr",
                &self.mac_b,
                "dev",
                &self.if_a,
                "nud",
                "permanent",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    fn ip_b(&self, args: &[&str]) {
        let mut full = vec!["-n", self.ns_b.as_str()];
        full.extend_from_slice(args);
        run("ip", &full).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sends `count` UDP datagrams from namespace A to B's address and `port`.
    fn send(&self, port: u16, count: u32) {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new("ip")
            .args(["netns", "exec", &self.ns_a])
            .arg(&exe)
            .args(["helper_send", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env("WEIR_LIVE_SEND", format!("{} {port} {count}", self.addr_b))
            .output()
            .unwrap_or_else(|e| panic!("running the sender: {e}"));
        assert!(output.status.success(), "sender failed: {}", String::from_utf8_lossy(&output.stdout));
    }

    /// Starts the capture helper inside namespace B on `if_b`; `settings` override the defaults.
    fn capture(&self, settings: &[(&str, &str)]) -> Helper {
        let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
        self.capture_with(&[], &exe, settings)
    }

    fn capture_with(&self, wrapper: &[&str], exe: &Path, settings: &[(&str, &str)]) -> Helper {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.ns_b]).args(wrapper).arg(exe);
        command.args(["helper_capture", "--exact", "--ignored", "--nocapture", "--test-threads=1"]);
        command.env("WEIR_LIVE_IF", &self.if_b).env("WEIR_LIVE_SINK_PORTS", "5555,6666");
        for (name, value) in settings {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the capture: {e}"));
        let stdout = BufReader::new(child.stdout.take().unwrap_or_else(|| panic!("no stdout")));
        Helper { child, stdout, seen: Vec::new() }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.ns_a, &self.ns_b] {
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Deletes namespaces of this test whose process is gone: a killed test run cannot clean up
/// after itself.
fn delete_orphaned_namespaces() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix("weir-live-a").or_else(|| name.strip_prefix("weir-live-b")) else {
            continue;
        };
        let Some((_, pid)) = rest.split_once('-') else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// A running capture helper and the events it printed so far.
struct Helper {
    child: Child,
    stdout: BufReader<ChildStdout>,
    seen: Vec<String>,
}

impl Helper {
    /// Reads events until one named `event` satisfies `accept`; fails with everything seen if
    /// the helper ends first.
    fn wait_for(&mut self, event: &str, accept: impl Fn(&Value) -> bool) -> Value {
        loop {
            let mut line = String::new();
            match self.stdout.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    panic!("capture ended before a matching {event:?} event; it printed:\n{}", self.seen.join(""))
                }
                Ok(_) => {}
            }
            self.seen.push(line.clone());
            // The harness prints "test helper_capture ... " before the helper's first line.
            let Some(start) = line.find('{') else { continue };
            let Ok(value) = serde_json::from_str::<Value>(line[start..].trim()) else { continue };
            if value["event"] == event && accept(&value) {
                return value;
            }
        }
    }
}

impl Helper {
    /// Lets a helper started with WEIR_LIVE_WAIT_GO start reading.
    fn go(&mut self) {
        let stdin = self.child.stdin.as_mut().unwrap_or_else(|| panic!("no stdin"));
        stdin.write_all(b"go\n").unwrap_or_else(|e| panic!("telling the capture to go: {e}"));
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(event: &Value) -> &str {
    event["message"].as_str().unwrap_or("")
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

fn is_root() -> bool {
    proc_status("Uid").split_whitespace().nth(1) == Some("0")
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// This binary copied where uid 65534 can run it (the target directory may not be reachable).
struct ExeCopy {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn world_executable_copy_of_self() -> Option<ExeCopy> {
    let dir = tempfile::Builder::new().prefix("weir-live-").tempdir_in("/tmp").ok()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).ok()?;
    let path = dir.path().join("live-test");
    std::fs::copy(std::env::current_exe().ok()?, &path).ok()?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).ok()?;
    Some(ExeCopy { _dir: dir, path })
}
