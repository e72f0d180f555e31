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
}

impl Namespaces {
    fn create() -> Option<Namespaces> {
        // SAFETY-free check for root: `id -u` is what a shell would ask.
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("not root; live test skipped");
            return None;
        }
        let tag = std::process::id();
        let ns = Namespaces { a: format!("weir-e2e-a{tag}"), b: format!("weir-e2e-b{tag}") };
        let ip = |args: &[&str]| Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
        let ok = ip(&["netns", "add", &ns.a])
            && ip(&["netns", "add", &ns.b])
            && ip(&["link", "add", "weire2e0", "netns", &ns.a, "type", "veth", "peer", "name", "weire2e1", "netns", &ns.b])
            && ip(&["-n", &ns.a, "addr", "add", "10.251.0.1/24", "dev", "weire2e0"])
            && ip(&["-n", &ns.b, "addr", "add", "10.251.0.2/24", "dev", "weire2e1"])
            && ip(&["-n", &ns.a, "link", "set", "weire2e0", "up"])
            && ip(&["-n", &ns.b, "link", "set", "weire2e1", "up"]);
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
    let Some(ns) = Namespaces::create() else { return };
    let s = Scratch::new();
    let out = s.path("out");
    let config = s.path("weir.toml");
    std::fs::write(&config, "[capture]\nbpf = \"udp port 5555\"\n").unwrap();
    let weir = Command::new("ip")
        .args(["netns", "exec", &ns.a, env!("CARGO_BIN_EXE_weir"), "live", "--interface", "weire2e0", "--out"])
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
