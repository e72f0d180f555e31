//! End-to-end: `weir central` on loopback with mutual TLS (certificates made here), a sensor-side
//! link delivering events to it, and a clean exit on SIGTERM.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use weir_sensor_link::{ClientTls, Link, LinkConfig, MailStore};

#[test]
fn missing_certificates_are_a_one_line_error() {
    let s = Scratch::new();
    let o = weir().args(["central", "--listen", "127.0.0.1:0", "--data"]).arg(s.path("cn")).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("tls/") && err.trim().lines().count() == 1, "{err}");
}

#[test]
fn a_sensor_delivers_events_over_mutual_tls() {
    let s = Scratch::new();
    let data = s.path("cn");
    pki(&data.join("tls"), "sensor-1");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut central = weir()
        .args(["central", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    let certs = data.join("tls");
    let tls = ClientTls::from_files(&certs.join("ca.pem"), &certs.join("sensor-1.pem"), &certs.join("sensor-1.key")).unwrap();
    let spool = s.path("spool");
    let link = Link::start(
        LinkConfig::new(&format!("https://127.0.0.1:{port}/"), "sensor-1", tls, &spool),
        Arc::new(weir_spool::Filestore::new(s.path("filestore"))),
        Arc::new(MailStore::new(s.path("mail"))),
        Arc::new(|_, _| Ok(())),
    )
    .unwrap();
    for i in 0..5 {
        let _ = link.event(format!("{{\"event_type\":\"alert\",\"n\":{i}}}").into_bytes());
    }
    link.flush().unwrap();
    let started = Instant::now();
    while link.status().pending() > 0 && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = link.shutdown();
    assert_eq!(status.pending(), 0, "{status:?}");

    let events = std::fs::read_to_string(data.join("sensor-1").join("events.ndjson")).unwrap();
    assert_eq!(events.lines().count(), 5, "{events}");
    assert!(events.lines().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));

    assert!(std::process::Command::new("kill").args(["-TERM", &central.id().to_string()]).status().unwrap().success());
    let status = central.wait().unwrap();
    assert!(status.success());
}

#[test]
fn a_replay_ships_mail_records_files_and_messages_to_the_central_node() {
    let s = Scratch::new();
    let data = s.path("cn");
    let certs = data.join("tls");
    pki(&certs, "sensor-1");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut central = weir()
        .args(["central", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[central]\nenabled = true\nurl = \"https://127.0.0.1:{port}/\"\nsensor_id = \"sensor-1\"\n\
             ca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\nspool_dir = \"{spool}\"\nbatch_age = 1\nreplay_wait = 60\n",
            ca = certs.join("ca.pem").display(),
            cert = certs.join("sensor-1.pem").display(),
            key = certs.join("sensor-1.key").display(),
            spool = s.path("spool").display(),
        ),
    )
    .unwrap();
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/smtp.pcap");
    let out = s.path("out");
    let o = replay(&[&pcap], &out, &["--config", config.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("Central Node: 0 items still spooled"), "{stderr}");

    let sensor = data.join("sensor-1");
    let events = std::fs::read_to_string(sensor.join("events.ndjson")).unwrap();
    let types: Vec<String> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event_type"].as_str().unwrap().to_string())
        .collect();
    let local = eve(&out);
    assert_eq!(types.iter().filter(|t| *t == "smtp").count(), of_type(&local, "smtp").len());
    assert_eq!(types.iter().filter(|t| *t == "fileinfo").count(), of_type(&local, "fileinfo").len());
    assert!(!types.iter().any(|t| t == "flow"), "flow records stay local");
    // Every stored attachment and message arrived, byte-identical (content-addressed names).
    for kind in ["filestore", "mail"] {
        let remote_kind = if kind == "filestore" { "files" } else { "emails" };
        let mut count = 0;
        for entry in walk(&out.join(kind)) {
            if entry.parent().and_then(|p| p.file_name()).is_some_and(|n| n == "tmp") {
                continue;
            }
            let name = entry.file_name().unwrap().to_str().unwrap().to_string();
            let remote = sensor.join(remote_kind).join(&name[..2]).join(&name);
            assert_eq!(std::fs::read(&remote).unwrap(), std::fs::read(&entry).unwrap(), "{}", remote.display());
            count += 1;
        }
        assert!(count > 0, "nothing under {kind}");
    }
    assert!(std::process::Command::new("kill").args(["-TERM", &central.id().to_string()]).status().unwrap().success());
    assert!(central.wait().unwrap().success());
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { files.extend(walk(&p)) } else { files.push(p) }
        }
    }
    files
}
