//! End-to-end: reputation feeds over the project's captures of real traffic. A listed indicator
//! raises one alert per transaction it is seen in, saying where it was seen; unlisted traffic
//! raises none.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

fn run_with_feeds(capture: &str, feeds: &[(&str, &str, &str)]) -> Vec<Value> {
    let s = Scratch::new();
    let mut config = String::new();
    for (name, format, lines) in feeds {
        let path = s.path(&format!("{name}.txt"));
        std::fs::write(&path, lines).unwrap();
        config.push_str(&format!(
            "[[detect.feeds]]\nname = \"{name}\"\npath = \"{}\"\nformat = \"{format}\"\ncategory = \"malware\"\n\n",
            path.display()
        ));
    }
    let config_path = s.path("weir.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = s.path("out");
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps").join(capture);
    replay(&[&pcap], &out, &["--quiet", "--config", config_path.to_str().unwrap()]);
    eve(&out)
}

fn reputation_alerts(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event_type"] == "alert" && e.get("reputation").is_some()).collect()
}

#[test]
fn a_listed_domain_alerts_once_per_web_transaction() {
    let events = run_with_feeds("http.pcap", &[("bad-domains", "domains", "www.weir.test\n# a comment\n")]);
    let transactions = of_type(&events, "http").iter().filter(|h| h["http"]["hostname"] == "www.weir.test").count();
    let alerts = reputation_alerts(&events);
    assert_eq!(transactions, 7);
    assert_eq!(alerts.len(), transactions, "{alerts:#?}");
    for a in &alerts {
        assert_eq!(a["reputation"]["indicator"], "www.weir.test");
        assert_eq!(a["reputation"]["seen_in"], "http.url");
        assert_eq!(a["reputation"]["traffic"], "web");
        assert_eq!(a["alert"]["gid"], 9);
        assert!(a["alert"]["signature"].as_str().unwrap().contains("bad-domains"));
        assert!(a["tx_id"].is_u64());
    }
    // The flows they were seen in say so.
    let alerted: Vec<_> = of_type(&events, "flow").into_iter().filter(|f| f["flow"]["alerted"] == true).collect();
    assert!(!alerted.is_empty());
}

#[test]
fn a_listed_file_hash_alerts_on_that_file_only() {
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps/http.manifest.json")).unwrap(),
    )
    .unwrap();
    let sha = manifest["items"][0]["sha256"].as_str().unwrap().to_string();
    let events = run_with_feeds("http.pcap", &[("bad-files", "hashes", &format!("{sha}\n"))]);
    let alerts = reputation_alerts(&events);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["reputation"]["seen_in"], "file.sha256");
    assert_eq!(alerts[0]["reputation"]["indicator"], sha.as_str());
}

#[test]
fn dns_queries_and_mail_urls_are_checked_and_told_apart() {
    let events = run_with_feeds("dns.pcap", &[("bad-domains", "domains", "cdn.weir.test\n")]);
    let alerts = reputation_alerts(&events);
    assert!(!alerts.is_empty());
    assert!(alerts.iter().all(|a| a["reputation"]["seen_in"] == "dns.query"), "{alerts:#?}");

    let events = run_with_feeds("smtp.pcap", &[("bad-urls", "urls", "http://www.weir.test/files/firmware.bin\n")]);
    let alerts = reputation_alerts(&events);
    assert!(!alerts.is_empty(), "the URL in a message body is seen");
    for a in &alerts {
        assert_eq!(a["reputation"]["seen_in"], "email.url");
        assert_eq!(a["reputation"]["traffic"], "mail");
    }
}

#[test]
fn unlisted_traffic_raises_nothing() {
    let events = run_with_feeds("http.pcap", &[("other", "domains", "evil.example\n"), ("ips", "ips", "192.0.2.0/24\n")]);
    assert!(reputation_alerts(&events).is_empty());
    assert!(!of_type(&events, "http").is_empty());
}

#[test]
fn a_listed_address_alerts_once_per_flow() {
    let events = run_with_feeds("http.pcap", &[("bad-ips", "ips", "10.77.0.1\n")]);
    let flows = of_type(&events, "flow").len();
    let alerts = reputation_alerts(&events);
    assert_eq!(alerts.len(), flows);
    assert!(alerts.iter().all(|a| a["reputation"]["seen_in"] == "dest_ip"), "{alerts:#?}");
}
