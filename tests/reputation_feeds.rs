//! End-to-end against the real feeds: `pcaps/reputation.pcap` (real DNS, HTTP, TLS and SMTP
//! clients reaching names, URLs and addresses listed in ../shared/feeds, see
//! `pcaps/reputation.manifest.json`) replayed with those feed files loaded as they are. Every
//! listed sighting raises exactly one alert naming its feed, indicator and where it was seen;
//! the unlisted controls raise none; excluded traffic raises none.
//!
//! The feeds live beside the repository (`../shared/feeds`), not in it: without them the tests
//! say so and pass.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn feeds_dir() -> Option<PathBuf> {
    let dir = repo().parent()?.join("shared").join("feeds");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skipped: no real feeds at {} (CI keeps ../shared beside the repository)", dir.display());
        None
    }
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(repo().join("pcaps/reputation.manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The manifest's feeds as `[[detect.feeds]]`, plus `extra` config; returns EVE and stderr.
fn replay_with_feeds(feeds: &Path, manifest: &Value, extra: &str) -> (Vec<Value>, String) {
    let s = Scratch::new();
    let mut config = String::new();
    for f in manifest["feeds"].as_array().unwrap() {
        let path = feeds.join(f["path"].as_str().unwrap());
        config.push_str(&format!(
            "[[detect.feeds]]\nname = \"{}\"\npath = \"{}\"\nformat = \"{}\"\ncategory = \"{}\"\n\n",
            f["name"].as_str().unwrap(),
            path.display(),
            f["format"].as_str().unwrap(),
            f["category"].as_str().unwrap(),
        ));
    }
    config.push_str(extra);
    let config_path = s.path("weir.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = s.path("out");
    let o = replay(&[&repo().join("pcaps/reputation.pcap")], &out, &["--config", config_path.to_str().unwrap()]);
    (eve(&out), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// (feed, indicator, seen_in, the value as seen)
type Sighting = (String, String, String, String);

fn listed(manifest: &Value) -> Vec<&Value> {
    manifest["sightings"].as_array().unwrap().iter().filter(|s| s["listed"] == true).collect()
}

/// A manifest row's key, or an alert's `reputation` object's (which calls the value `value`).
fn key_of(row: &Value) -> Sighting {
    let s = |k: &str| row[k].as_str().unwrap().to_string();
    let value = if row.get("observed").is_some() { s("observed") } else { s("value") };
    (s("feed"), s("indicator"), s("seen_in"), value)
}

/// Reputation alerts counted by what they say, after checking each one's fields against the
/// manifest row it claims to be (indicator type, match, category, web/mail, signature).
fn reputation_alerts(events: &[Value], manifest: &Value) -> BTreeMap<Sighting, usize> {
    let rows: BTreeMap<Sighting, &Value> = listed(manifest).into_iter().map(|r| (key_of(r), r)).collect();
    let mut seen = BTreeMap::new();
    for alert in events.iter().filter(|e| e["event_type"] == "alert" && e.get("reputation").is_some()) {
        let rep = &alert["reputation"];
        let key = key_of(rep);
        if let Some(row) = rows.get(&key) {
            assert_eq!(rep["indicator_type"], row["indicator_type"], "{alert}");
            assert_eq!(rep["match"], row["match"], "{alert}");
            assert_eq!(rep["category"], row["category"], "{alert}");
            let mail = row["seen_in"] == "email.url";
            assert_eq!(rep["traffic"], if mail { "mail" } else { "web" }, "{alert}");
            let feed = row["feed"].as_str().unwrap();
            let web_sid = u64::from(weir_detect::reputation::signature_id_base(feed));
            assert_eq!(alert["alert"]["signature_id"], web_sid + u64::from(mail), "{alert}");
            assert_eq!(alert["alert"]["gid"], 9);
            let signature = alert["alert"]["signature"].as_str().unwrap();
            assert!(signature.contains(feed), "{signature}");
        }
        *seen.entry(key).or_insert(0) += 1;
    }
    seen
}

/// What the rows say Weir must raise: one alert per row (a row seen twice would count twice).
fn once_each<'a>(rows: impl IntoIterator<Item = &'a Value>) -> BTreeMap<Sighting, usize> {
    let mut want = BTreeMap::new();
    for row in rows {
        *want.entry(key_of(row)).or_insert(0) += 1;
    }
    want
}

#[test]
fn the_capture_covers_every_place_and_every_feed() {
    let m = manifest();
    let rows = listed(&m);
    let places: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["seen_in"].as_str().unwrap()).collect();
    assert_eq!(places.into_iter().collect::<Vec<_>>(), ["dest_ip", "dns.query", "email.url", "http.url", "tls.sni"]);
    let feeds: std::collections::BTreeSet<&str> = rows.iter().map(|r| r["feed"].as_str().unwrap()).collect();
    assert_eq!(feeds.len(), m["feeds"].as_array().unwrap().len());
    assert_eq!(rows.len(), 11);
    assert_eq!(m["sightings"].as_array().unwrap().len() - rows.len(), 8, "controls");
}

#[test]
fn each_listed_indicator_seen_alerts_once_and_controls_never() {
    let Some(feeds) = feeds_dir() else { return };
    let m = manifest();
    let (events, stderr) = replay_with_feeds(&feeds, &m, "");
    let got = reputation_alerts(&events, &m);
    assert_eq!(got, once_each(listed(&m)), "{stderr}");

    // The controls were parsed (so their silence means something): each one is in the EVE
    // output as the value its protocol logs, and no alert carries it.
    let text: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    for control in m["sightings"].as_array().unwrap().iter().filter(|s| s["listed"] == false) {
        let observed = control["observed"].as_str().unwrap();
        let logged = match control["seen_in"].as_str().unwrap() {
            "http.url" => observed.trim_start_matches("http://").split_once('/').map(|(_, p)| format!("/{p}")).unwrap(),
            _ => observed.to_string(),
        };
        let needle = serde_json::to_string(&logged).unwrap();
        assert!(
            text.iter().any(|t| !t.contains("\"reputation\"") && t.contains(&needle)),
            "control {observed} not in the output"
        );
        assert!(
            !events.iter().any(|e| e.get("reputation").is_some_and(|r| r["value"] == observed)),
            "control {observed} alerted"
        );
    }
}

#[test]
fn the_real_feeds_load_with_the_counts_in_the_notes() {
    let Some(feeds) = feeds_dir() else { return };
    let m = manifest();
    let (_, stderr) = replay_with_feeds(&feeds, &m, "");
    for (name, counts) in [
        ("urlhaus", "6363 loaded, 0 skipped"),
        ("openphish", "300 loaded, 0 skipped"),
        ("shadowwhisperer", "43698 loaded, 0 skipped"),
        ("tweetfeed", "250 loaded, 0 skipped, 85 duplicates"),
    ] {
        assert!(
            stderr.lines().any(|l| l.starts_with(&format!("weir: feed {name} (")) && l.ends_with(counts)),
            "{name}: {counts}\n{stderr}"
        );
    }
}

#[test]
fn excluded_traffic_raises_no_reputation_alert() {
    let Some(feeds) = feeds_dir() else { return };
    let m = manifest();
    let exclusions = "[exclusions]\n\
        hosts = [\"*.netlify.app\", \"24x7support.top\", \"*.blogspot.com\"]\n\
        urls = [\"http://autoiwc.ru/templates1/*\"]\n\
        ips = [\"154.36.188.193\"]\n";
    let excluded = [
        "http://send-usdt-9999.netlify.app/",
        "24x7support.top",
        "http://www.undianshopee3535.blogspot.com/",
        "http://autoiwc.ru/templates1/js/mixitup.js",
        "154.36.188.193",
    ];
    let (events, stderr) = replay_with_feeds(&feeds, &m, exclusions);
    let got = reputation_alerts(&events, &m);
    let rows = listed(&m);
    let kept: Vec<&Value> = rows.iter().copied().filter(|r| !excluded.contains(&r["observed"].as_str().unwrap())).collect();
    assert_eq!(kept.len(), rows.len() - excluded.len(), "every excluded value is a listed sighting");
    assert_eq!(got, once_each(kept), "{stderr}");
    // One flow (the TLS session to the listed address) and five artifacts: the two netlify
    // URLs (one listed, one not), the DNS query, the mail's blogspot URL and the autoiwc URL.
    assert!(stderr.contains("excluded from scanning: 1 flows, 5 artifacts"), "{stderr}");
}
