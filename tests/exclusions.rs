//! End-to-end: scan exclusions. Excluded addresses are counted in flow records and nothing more;
//! an excluded host is parsed and logged but raises no reputation alert.

mod common;

use std::path::Path;

use common::*;

fn run(exclusions: &str) -> (Vec<serde_json::Value>, std::path::PathBuf, Scratch, String) {
    let s = Scratch::new();
    let feed = s.path("domains.txt");
    std::fs::write(&feed, "www.weir.test\n").unwrap();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[[detect.feeds]]\nname = \"bad\"\npath = \"{}\"\nformat = \"domains\"\n\n[exclusions]\n{exclusions}\n",
            feed.display()
        ),
    )
    .unwrap();
    let out = s.path("out");
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/http.pcap");
    let o = replay(&[&pcap], &out, &["--config", config.to_str().unwrap()]);
    (eve(&out), out, s, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn an_excluded_address_is_counted_but_not_scanned() {
    let (events, out, _s, stderr) = run("ips = [\"10.77.0.0/24\"]");
    assert!(!of_type(&events, "flow").is_empty(), "flows are still logged");
    assert!(of_type(&events, "http").is_empty());
    assert!(of_type(&events, "fileinfo").is_empty());
    assert!(of_type(&events, "alert").is_empty());
    assert!(std::fs::read_dir(out.join("filestore")).map(|d| d.flatten().all(|e| e.file_name() == "tmp")).unwrap_or(true));
    assert!(stderr.contains("excluded from scanning: 7 flows"), "{stderr}");
}

#[test]
fn an_excluded_host_is_logged_but_raises_no_reputation_alert() {
    let (events, _out, _s, stderr) = run("hosts = [\"*.weir.test\"]");
    assert!(of_type(&events, "http").len() >= 7);
    assert!(of_type(&events, "alert").is_empty(), "{stderr}");
    let (events, _out, _s, _) = run("hosts = [\"cdn.weir.test\"]");
    assert_eq!(of_type(&events, "alert").len(), 7, "other hosts are still checked");
}

#[test]
fn bad_exclusion_entries_are_reported_together() {
    let s = Scratch::new();
    let config = s.path("weir.toml");
    std::fs::write(&config, "[exclusions]\nips = [\"10.0.0.0/99\", \"not-an-ip\"]\n").unwrap();
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/dns.pcap");
    let o = replay_status(&[&pcap], &s.path("out"), &["--config", config.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("10.0.0.0/99") && err.contains("not-an-ip"), "{err}");
}
