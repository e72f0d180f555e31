//! End-to-end hot swaps during `weir live` on a veth pair in network namespaces (as tests/live.rs):
//! a rewritten feed file and SIGHUP-reloaded rules take effect without a restart; a Central Node
//! rules update replaces the rules, a bad one is rejected while the old rules keep matching, and
//! policy exclusions stop alerts for the excluded host. Skipped (with a printed reason) when not
//! root or when namespaces cannot be made.
//!
//! Waits are bounded (60 s) loops on something the sensor writes; nothing asserts on time.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const SENSOR_PORT: u16 = 5555;

struct Namespaces {
    a: String,
    b: String,
    /// 10.x.0.1 is the captured end, 10.x.0.2 the sender.
    net: u8,
}

impl Namespaces {
    fn create(tag: &str, net: u8) -> Option<Namespaces> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            eprintln!("not root; reload test skipped");
            return None;
        }
        let pid = std::process::id();
        let ns = Namespaces { a: format!("weir-rl{tag}a{pid}"), b: format!("weir-rl{tag}b{pid}"), net };
        let (ia, ib) = (format!("wrl{tag}0"), format!("wrl{tag}1"));
        let ip = |args: &[&str]| Command::new("ip").args(args).status().map(|s| s.success()).unwrap_or(false);
        let ok = ip(&["netns", "add", &ns.a])
            && ip(&["netns", "add", &ns.b])
            && ip(&["link", "add", &ia, "netns", &ns.a, "type", "veth", "peer", "name", &ib, "netns", &ns.b])
            && ip(&["-n", &ns.a, "addr", "add", &format!("10.{net}.0.1/24"), "dev", &ia])
            && ip(&["-n", &ns.b, "addr", "add", &format!("10.{net}.0.2/24"), "dev", &ib])
            && ip(&["-n", &ns.a, "link", "set", &ia, "up"])
            && ip(&["-n", &ns.b, "link", "set", &ib, "up"]);
        if !ok {
            eprintln!("cannot create network namespaces; reload test skipped");
            return None;
        }
        Some(ns)
    }

    fn interface(&self, tag: &str) -> String {
        format!("wrl{tag}0")
    }

    fn sender(&self) -> String {
        format!("10.{}.0.2", self.net)
    }

    /// One UDP datagram from the sender's `sport` to the captured end: one new flow per port.
    fn send(&self, sport: u16, payload: &str) {
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('', {sport}))\n\
             s.sendto(b'{payload}', ('10.{}.0.1', {SENSOR_PORT}))",
            self.net
        );
        let ok = Command::new("ip").args(["netns", "exec", &self.b, "python3", "-c", &script]).status().unwrap().success();
        assert!(ok, "sending from port {sport}");
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// `weir live` in the first namespace, its stderr collected as it comes.
struct Live {
    child: Child,
    stderr: Arc<Mutex<String>>,
    out: PathBuf,
}

impl Live {
    fn start(ns: &Namespaces, tag: &str, config: &Path, out: &Path) -> Live {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.a, env!("CARGO_BIN_EXE_weir"), "live", "--interface", &ns.interface(tag), "--out"])
            .arg(out)
            .args(["--config", config.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let live = Live { child, stderr, out: out.to_path_buf() };
        live.wait_for_log("capturing on");
        live
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait_for_log(&self, needle: &str) {
        let started = Instant::now();
        while !self.log().contains(needle) {
            assert!(started.elapsed() < WAIT, "no `{needle}` in stderr:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Alerts so far (eve.json is flushed whenever the link goes quiet).
    fn alerts(&self) -> Vec<Value> {
        of_type(&eve(&self.out), "alert").into_iter().cloned().collect()
    }

    /// Sends `payload` from a new port at a time (ports from `*next`) until an alert with `sid`
    /// names one of them; returns that port.
    fn send_until_alert(&self, ns: &Namespaces, next: &mut u16, payload: &str, sid: u64) -> u16 {
        self.send_until(ns, next, payload, &format!("sid {sid}"), |a| a["alert"]["signature_id"] == sid)
    }

    /// As [`Live::send_until_alert`], for the first alert `wanted` accepts.
    fn send_until(&self, ns: &Namespaces, next: &mut u16, payload: &str, what: &str, wanted: impl Fn(&Value) -> bool) -> u16 {
        let started = Instant::now();
        let mut sent = Vec::new();
        loop {
            *next += 1;
            ns.send(*next, payload);
            sent.push(*next);
            std::thread::sleep(Duration::from_millis(300));
            if let Some(port) = self
                .alerts()
                .iter()
                .filter(|a| wanted(a))
                .filter_map(|a| a["src_port"].as_u64())
                .find(|p| sent.contains(&(*p as u16)))
            {
                return port as u16;
            }
            assert!(started.elapsed() < WAIT, "no alert ({what}):\n{}", self.log());
        }
    }

    /// SIGTERM; the run must end cleanly. Returns every EVE record.
    fn stop(self) -> (Vec<Value>, String) {
        // `ip netns exec` execs the program, so the child's pid is weir's.
        assert!(Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success());
        let mut child = self.child;
        let status = child.wait().unwrap();
        // The reader thread ends at EOF, right after exit.
        std::thread::sleep(Duration::from_millis(200));
        let log = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "{log}");
        (eve(&self.out), log)
    }
}

/// The rule alerts (gid 1, not reputation) of the flow from `port`.
fn sids_of(events: &[Value], port: u16) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["event_type"] == "alert" && e["src_port"] == port && e["alert"]["gid"] == 1)
        .filter_map(|e| e["alert"]["signature_id"].as_u64())
        .collect()
}

fn rule(sid: u32, content: &str) -> String {
    format!("alert udp any any -> any {SENSOR_PORT} (msg:\"sid {sid}\"; content:\"{content}\"; sid:{sid}; rev:1;)\n")
}

/// Replaces a file by renaming a complete new one over it, from outside `dir` when given.
fn replace(path: &Path, text: &str) {
    let tmp = path.parent().unwrap().parent().unwrap().join(format!(".{}.tmp", path.file_name().unwrap().to_str().unwrap()));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn a_rewritten_feed_and_sighup_reloaded_rules_take_effect_during_live() {
    let Some(ns) = Namespaces::create("f", 253) else { return };
    let s = Scratch::new();
    std::fs::create_dir_all(s.path("etc")).unwrap();
    let feed = s.path("etc/bad-ips.txt");
    let rules = s.path("etc/local.rules");
    std::fs::write(&feed, "192.0.2.1\n").unwrap();
    std::fs::write(&rules, rule(1, "alpha")).unwrap();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nworkers = 2\nbpf = \"udp port {SENSOR_PORT}\"\n[detect]\nrules = [\"{}\"]\n\
             [[detect.feeds]]\nname = \"bad-ips\"\ncategory = \"malware\"\nformat = \"ips\"\npath = \"{}\"\n",
            rules.display(),
            feed.display()
        ),
    )
    .unwrap();
    let live = Live::start(&ns, "f", &config, &s.path("out"));
    let mut port = 20_000;

    // Before: the rule matches, the sender is not listed.
    let before = live.send_until_alert(&ns, &mut port, "alpha", 1);
    // The feed file is replaced: the sender is listed from now on.
    replace(&feed, &format!("{}\n", ns.sender()));
    let listed = live.send_until(&ns, &mut port, "alpha", "reputation", |a| a.get("reputation").is_some());
    // Rules rewritten and SIGHUP: sid 2 replaces sid 1.
    replace(&rules, &rule(2, "alpha"));
    assert!(Command::new("kill").args(["-HUP", &live.child.id().to_string()]).status().unwrap().success());
    live.wait_for_log("reload done");
    let reloaded = live.send_until_alert(&ns, &mut port, "alpha", 2);
    // Rules that do not load on the next SIGHUP: refused, sid 2 goes on matching.
    replace(&rules, "this is not a rule\n");
    assert!(Command::new("kill").args(["-HUP", &live.child.id().to_string()]).status().unwrap().success());
    live.wait_for_log("rules not reloaded, the ones in use stay");
    let kept = live.send_until_alert(&ns, &mut port, "alpha", 2);

    let (events, log) = live.stop();
    assert_eq!(sids_of(&events, before), [1], "{log}");
    assert_eq!(sids_of(&events, reloaded), [2]);
    assert_eq!(sids_of(&events, kept), [2]);
    let reputation: Vec<&Value> = events.iter().filter(|e| e.get("reputation").is_some()).collect();
    assert!(reputation.iter().all(|e| e["src_port"] != before), "listed only after the rewrite");
    assert!(reputation.iter().any(|e| e["src_port"] == listed && e["reputation"]["indicator"] == ns.sender().as_str()));
    assert!(sids_of(&events, listed).contains(&1), "the rules went on matching");
    assert!(log.contains("reputation feeds swapped in: 1 entries"), "{log}");
}

/// Serves `weir central` on 127.0.0.1 inside the captured namespace (where the sensor runs).
fn central_in(ns: &Namespaces, data: &Path, port: u16) -> Child {
    assert!(Command::new("ip").args(["-n", &ns.a, "link", "set", "lo", "up"]).status().unwrap().success());
    Command::new("ip")
        .args(["netns", "exec", &ns.a, env!("CARGO_BIN_EXE_weir"), "central", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(data)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn central_node_rules_updates_and_policy_exclusions_are_swapped_in_during_live() {
    let Some(ns) = Namespaces::create("c", 252) else { return };
    let s = Scratch::new();
    let data = s.path("cn");
    let certs = data.join("tls");
    pki(&certs, "sensor-1");
    let updates = data.join("updates").join("rules");
    std::fs::create_dir_all(&updates).unwrap();
    std::fs::create_dir_all(data.join("policy")).unwrap();
    let port = 18_443;
    let mut central = central_in(&ns, &data, port);
    let rules = s.path("local.rules");
    std::fs::write(&rules, rule(1, "alpha")).unwrap();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nworkers = 2\nbpf = \"udp port {SENSOR_PORT}\"\n[detect]\nrules = [\"{rules}\"]\n\
             [central]\nenabled = true\nurl = \"https://127.0.0.1:{port}/\"\nsensor_id = \"sensor-1\"\n\
             ca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\nspool_dir = \"{spool}\"\nbatch_age = 1\npoll_interval = 1\nreplay_wait = 5\n",
            rules = rules.display(),
            ca = certs.join("ca.pem").display(),
            cert = certs.join("sensor-1.pem").display(),
            key = certs.join("sensor-1.key").display(),
            spool = s.path("spool").display(),
        ),
    )
    .unwrap();
    let live = Live::start(&ns, "c", &config, &s.path("out"));
    let mut port_seq = 30_000;

    // The local rules until the Central Node sends some.
    let local = live.send_until_alert(&ns, &mut port_seq, "alpha", 1);
    // An update with new rules replaces them: sid 2 from now on, sid 1 no more.
    replace(&updates.join("cn.rules"), &rule(2, "alpha"));
    live.wait_for_log("rules update");
    let updated = live.send_until_alert(&ns, &mut port_seq, "alpha", 2);
    // An update whose rules do not load is rejected; sid 2 goes on matching.
    replace(&updates.join("cn.rules"), "this is not a rule\n");
    live.wait_for_log("Central Node rules update rejected");
    let kept = live.send_until_alert(&ns, &mut port_seq, "alpha", 2);

    // A policy excluding the sender, with a license that ran out.
    let policy = format!(
        "{{\"license\": {{\"id\": \"L-1\", \"expires\": \"2000-01-01T00:00:00Z\", \"features\": [\"reputation\"]}},\n \
         \"exclusions\": {{\"ips\": [\"{}\"]}}}}",
        ns.sender()
    );
    replace(&data.join("policy").join("default.json"), &policy);
    live.wait_for_log("exclusions swapped in");
    // Workers take the new exclusions at their next look (a quiet link looks at every idle tick);
    // flows sent over a few seconds after that must all be excluded from the second on.
    let mut excluded = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        port_seq += 1;
        ns.send(port_seq, "alpha");
        excluded.push(port_seq);
    }
    std::thread::sleep(Duration::from_millis(500));

    let (events, log) = live.stop();
    assert!(Command::new("kill").args(["-TERM", &central.id().to_string()]).status().unwrap().success());
    let _ = central.wait();
    assert_eq!(sids_of(&events, local), [1], "{log}");
    assert_eq!(sids_of(&events, updated), [2], "{log}");
    assert_eq!(sids_of(&events, kept), [2], "{log}");
    for port in &excluded[1..] {
        let flows: Vec<&Value> = of_type(&events, "flow").into_iter().filter(|f| f["src_port"] == *port).collect();
        assert_eq!(flows.len(), 1, "the excluded flow from {port} is still logged");
        assert!(sids_of(&events, *port).is_empty(), "excluded flow from {port} alerted:\n{log}");
    }
    assert!(log.contains("Central Node rules update") && log.contains("swapped in: 1 rules"), "{log}");
    assert!(log.contains("license expired 2000-01-01T00:00:00Z: sandbox dispatch off, reputation off"), "{log}");
}
