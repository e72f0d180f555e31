//! End-to-end: `weir live` on one end of a veth pair whose both ends sit in network namespaces
//! this test creates, with traffic sent from the other end; SIGTERM ends the run with complete
//! outputs. Skipped (with a printed reason) when not root or when namespaces cannot be made.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

struct Namespaces {
    a: String,
    b: String,
    /// The capturing end (in `a`) and the sending end (in `b`).
    if_a: String,
}

impl Namespaces {
    /// `tag` keeps the veth names of tests running at once apart.
    fn create(tag: char) -> Option<Namespaces> {
        // SAFETY-free check for root: `id -u` is what a shell would ask.
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("not root; live test skipped");
            return None;
        }
        let pid = std::process::id();
        let ns = Namespaces { a: format!("weir-e2e-a{tag}{pid}"), b: format!("weir-e2e-b{tag}{pid}"), if_a: format!("weire2e{tag}0") };
        let if_b = format!("weire2e{tag}1");
        let ip = |args: &[&str]| Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
        let ok = ip(&["netns", "add", &ns.a])
            && ip(&["netns", "add", &ns.b])
            && ip(&["link", "add", &ns.if_a, "netns", &ns.a, "type", "veth", "peer", "name", &if_b, "netns", &ns.b])
            && ip(&["-n", &ns.a, "addr", "add", "10.251.0.1/24", "dev", &ns.if_a])
            && ip(&["-n", &ns.b, "addr", "add", "10.251.0.2/24", "dev", &if_b])
            && ip(&["-n", &ns.a, "link", "set", &ns.if_a, "up"])
            && ip(&["-n", &ns.a, "link", "set", "lo", "up"])
            && ip(&["-n", &ns.b, "link", "set", &if_b, "up"]);
        if !ok {
            eprintln!("cannot create network namespaces; live test skipped");
            return None;
        }
        Some(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

#[test]
fn live_capture_on_a_veth_ends_cleanly_on_sigterm() {
    let Some(ns) = Namespaces::create('s') else { return };
    let s = Scratch::new();
    let out = s.path("out");
    let config = s.path("weir.toml");
    std::fs::write(&config, "[capture]\nbpf = \"udp port 5555\"\n").unwrap();
    let weir = Command::new("ip")
        .args(["netns", "exec", &ns.a, env!("CARGO_BIN_EXE_weir"), "live", "--interface", &ns.if_a, "--out"])
        .arg(&out)
        .args(["--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the capture is open (it says so on stderr) before sending.
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let send = |port: u16, count: usize| {
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
             for i in range({count}): s.sendto(b'weir live test %d' % i, ('10.251.0.1', {port}))"
        );
        let ok = Command::new("ip").args(["netns", "exec", &ns.b, "python3", "-c", &script]).status().unwrap().success();
        assert!(ok);
    };
    send(5555, 20);
    send(6666, 10);
    std::thread::sleep(Duration::from_millis(500));
    assert!(started.elapsed() < Duration::from_secs(60));
    let pid = weir.id().to_string();
    // `ip netns exec` execs the program, so the child's pid is weir's.
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let result = weir.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(result.status.success(), "{stderr}");
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1, "only the filtered port is captured: {flows:#?}");
    assert_eq!(flows[0]["dest_port"], 5555);
    assert_eq!(flows[0]["flow"]["pkts_toserver"], 20);
    assert_eq!(flows[0]["flow"]["reason"], "shutdown");
    assert!(stderr.contains("kernel dropped 0"), "{stderr}");
}

/// Sends `count` UDP datagrams from namespace `b` to 10.251.0.1:`port`, from source port 40000 + port.
fn send_udp(ns: &Namespaces, port: u16, count: usize) {
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.251.0.2', {}))\n\
         for i in range({count}): s.sendto(b'weir live test %d' % i, ('10.251.0.1', {port}))",
        40000 + u32::from(port)
    );
    let ok = Command::new("ip").args(["netns", "exec", &ns.b, "python3", "-c", &script]).status().unwrap().success();
    assert!(ok);
}

/// Two workers on a live interface: every flow logged once with all its packets, the Prometheus
/// endpoint (on the namespace's loopback) counting what was captured, and a closing `stats`
/// record naming both workers.
#[test]
fn two_live_workers_log_every_flow_and_serve_metrics() {
    use std::io::BufReader;
    let Some(ns) = Namespaces::create('w') else { return };
    let s = Scratch::new();
    let out = s.path("out");
    let config = s.path("weir.toml");
    std::fs::write(&config, "[capture]\nworkers = 2\nbpf = \"udp\"\n[output]\nprometheus = \"127.0.0.1:0\"\n").unwrap();
    let mut weir = Command::new("ip")
        .args(["netns", "exec", &ns.a, env!("CARGO_BIN_EXE_weir"), "live", "--interface", &ns.if_a, "--out"])
        .arg(&out)
        .args(["--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(weir.stderr.take().unwrap());
    let (metrics_url, seen) = read_until(&mut stderr, Duration::from_secs(30), |line| {
        line.split_whitespace().find(|w| w.starts_with("http://")).map(str::to_string)
    });
    let metrics_url = metrics_url.unwrap_or_else(|| panic!("no metrics address announced: {seen}"));
    std::thread::sleep(Duration::from_millis(300));
    let ports = [5001u16, 5002, 5003, 5004, 5005, 5006];
    for (i, port) in ports.iter().enumerate() {
        send_udp(&ns, *port, 10 + i);
    }
    let sent: u64 = (0..ports.len()).map(|i| 10 + i as u64).sum();
    // The workers publish their counters when the link goes quiet.
    let scrape = || {
        let script = format!("import urllib.request\nprint(urllib.request.urlopen('{metrics_url}').read().decode())");
        let o = Command::new("ip").args(["netns", "exec", &ns.a, "python3", "-c", &script]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let mut text = String::new();
    let wait = Instant::now();
    while wait.elapsed() < Duration::from_secs(20) {
        text = scrape();
        if text.lines().any(|l| l == format!("weir_packets_total {sent}")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(text.lines().any(|l| l == format!("weir_packets_total {sent}")), "{text}");
    assert!(text.contains("weir_worker_packets_total{worker=\"1\"}"), "{text}");
    let pid = weir.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = weir.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(status.success(), "{seen}{rest}");
    let events = eve(&out);
    let mut flows: Vec<(u64, u64)> = of_type(&events, "flow")
        .iter()
        .map(|f| (f["dest_port"].as_u64().unwrap(), f["flow"]["pkts_toserver"].as_u64().unwrap()))
        .collect();
    flows.sort();
    let expected: Vec<(u64, u64)> = ports.iter().enumerate().map(|(i, p)| (u64::from(*p), 10 + i as u64)).collect();
    assert_eq!(flows, expected);
    let stats = of_type(&events, "stats");
    let last = stats.last().expect("a closing stats record");
    assert_eq!(last["stats"]["decoder"]["pkts"].as_u64(), Some(sent));
    assert_eq!(last["stats"]["workers"].as_array().map(Vec::len), Some(2));
}
