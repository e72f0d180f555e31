//! End-to-end delivery through the reference receiver on loopback, with certificates made at test
//! time: exactly once in effect, outages, bad answers, refused identities.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Cn, Fault, FaultProxy, Pki, event, fast_config, file_bytes, stored_ns, wait_until};
use serde_json::json;
use sha2::{Digest, Sha256};
use weir_sensor_link::{Link, MailStore, Offer, UpdateValidator};
use weir_spool::{ContentRef, Filestore};

fn accept_all() -> UpdateValidator {
    Arc::new(|_, _| Ok(()))
}

fn start(config: weir_sensor_link::LinkConfig, out: &Path) -> Link {
    Link::start(config, Arc::new(Filestore::new(out.join("filestore"))), Arc::new(MailStore::new(out.join("mail"))), accept_all())
        .unwrap()
}

/// Stores an email in the mail store layout and returns its reference.
fn store_email(out: &Path, n: u64) -> ContentRef {
    let msg = format!("From: a{n}@example.org\r\nSubject: {n}\r\n\r\nbody {n}\r\n").into_bytes();
    let sha: [u8; 32] = Sha256::digest(&msg).into();
    let path = MailStore::new(out.join("mail")).path_of(&sha);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &msg).unwrap();
    ContentRef { sha256: sha, len: msg.len() as u64 }
}

fn offer_range(link: &Link, range: std::ops::Range<u64>) {
    for n in range {
        assert_eq!(link.event(event(n)), Offer::Queued);
    }
}

fn wait_delivered(link: &Link, what: &str) {
    link.flush().unwrap();
    wait_until(what, || link.status().pending() == 0);
}

fn stored_file(data: &Path, sensor: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    let sha = weir_spool::hex(&Sha256::digest(bytes));
    std::fs::read(data.join(sensor).join("files").join(&sha[..2]).join(&sha)).ok()
}

#[test]
fn two_sensors_deliver_everything_exactly_once_and_stay_separate() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), None);
    let mut links = Vec::new();
    for sensor in ["sensor-a", "sensor-b"] {
        let out = tmp.path().join(sensor);
        let config = fast_config(&cn.url(), sensor, pki.client_tls(sensor, &pki), &out.join("spool"));
        links.push((sensor, out.clone(), start(config, &out)));
    }
    std::thread::scope(|s| {
        for (sensor, out, link) in &links {
            s.spawn(move || {
                let filestore = Filestore::new(out.join("filestore"));
                for n in 0..1000u64 {
                    assert_eq!(link.event(event(n)), Offer::Queued);
                    if n % 50 == 0 {
                        let r = filestore.store(&file_bytes(n)).unwrap();
                        assert_eq!(link.file(r, json!({ "n": n })), Offer::Queued);
                    }
                    if n % 200 == 0 {
                        assert_eq!(link.email(store_email(out, n), json!({})), Offer::Queued);
                    }
                }
                // The same file twice: the second upload ends at the HEAD.
                let r = filestore.store(&file_bytes(0)).unwrap();
                assert_eq!(link.file(r, json!({})), Offer::Queued);
                wait_delivered(link, sensor);
            });
        }
    });
    for (sensor, _, link) in &links {
        assert_eq!(stored_ns(&cn.data, sensor), (0..1000).collect::<Vec<_>>(), "{sensor}: events in order, once each");
        for n in (0..1000).step_by(50) {
            assert_eq!(stored_file(&cn.data, sensor, &file_bytes(n)).as_deref(), Some(&file_bytes(n)[..]));
        }
        let mails: Vec<_> = walk(&cn.data.join(sensor).join("emails"));
        assert_eq!(mails.len(), 5);
        assert!(mails.iter().all(|p| p.extension().is_some_and(|e| e == "eml")));
        wait_until("a health report", || cn.data.join(sensor).join("health.json").exists());
        let stats = link.status().stats;
        assert_eq!(stats.events_delivered, 1000);
        assert_eq!(stats.files_delivered, 21);
        assert_eq!(stats.content_already_present, 1);
        assert_eq!(stats.emails_delivered, 5);
        assert_eq!(stats.dropped_spool_full + stats.rejected_by_cn + stats.refused_intake, 0);
    }
    let health: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cn.data.join("sensor-a/health.json")).unwrap()).unwrap();
    assert_eq!(health["sensor_id"], "sensor-a");
    assert!(health["queues"].is_object() && health["license"]["state"] == "unknown");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
        }
    }
    out
}

#[test]
fn central_node_down_for_the_first_half_then_up_gets_everything() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    // A port nobody listens on until the CN starts there.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = tmp.path().join("sensor");
    let config = fast_config(&format!("https://{addr}/"), "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool"));
    let link = start(config, &out);
    offer_range(&link, 0..500);
    let filestore = Filestore::new(out.join("filestore"));
    let early = filestore.store(&file_bytes(1)).unwrap();
    assert_eq!(link.file(early, json!({})), Offer::Queued);
    link.flush().unwrap();
    wait_until("failed attempts while the CN is down", || link.status().stats.retries >= 3);
    assert_eq!(link.status().pending(), 6, "five batches of 100 and one file wait in the spool");

    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), Some(addr));
    offer_range(&link, 500..1000);
    wait_delivered(&link, "everything after the CN came up");
    assert_eq!(stored_ns(&cn.data, "sensor-1"), (0..1000).collect::<Vec<_>>());
    assert_eq!(stored_file(&cn.data, "sensor-1", &file_bytes(1)).as_deref(), Some(&file_bytes(1)[..]));
}

#[test]
fn garbage_cut_slow_answers_and_500s_are_retried_and_nothing_is_lost() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), None);
    // Until it is removed, a folder where the event log goes makes every batch a 500.
    std::fs::create_dir_all(cn.data.join("sensor-1/events.ndjson")).unwrap();
    let proxy = FaultProxy::start(cn.addr, |i| match i % 5 {
        0 => Fault::Garbage,
        1 => Fault::CutAfter(3000),
        2 => Fault::Slow(Duration::from_millis(700)),
        3 => Fault::CutAfter(40_000),
        _ => Fault::Pass,
    });
    let out = tmp.path().join("sensor");
    let mut config = fast_config(&proxy.url(), "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool"));
    // Shorter than the slow connection's delay: those attempts time out, and the CN may still
    // store what was sent, so the retry must be recognised by its key.
    config.request_timeout = Duration::from_millis(500);
    let link = start(config, &out);
    let filestore = Filestore::new(out.join("filestore"));
    for n in 0..600u64 {
        assert_eq!(link.event(event(n)), Offer::Queued);
        if n % 100 == 0 {
            assert_eq!(link.file(filestore.store(&file_bytes(n * 7 + 20_000)).unwrap(), json!({})), Offer::Queued);
        }
    }
    link.flush().unwrap();
    wait_until("a 500 from the CN", || link.status().last_error.is_some_and(|e| e.contains("500")));
    std::fs::remove_dir(cn.data.join("sensor-1/events.ndjson")).unwrap();
    wait_delivered(&link, "everything through the faulty path");
    let ns = stored_ns(&cn.data, "sensor-1");
    assert_eq!(ns, (0..600).collect::<Vec<_>>(), "each event stored once, in order");
    for n in (0..600u64).step_by(100) {
        let bytes = file_bytes(n * 7 + 20_000);
        assert_eq!(stored_file(&cn.data, "sensor-1", &bytes).as_deref(), Some(&bytes[..]));
    }
    assert!(link.status().stats.retries > 0);
    assert!(proxy.connections.load(std::sync::atomic::Ordering::SeqCst) >= 5, "every kind of fault was met");
}

#[test]
fn a_sensor_without_a_valid_client_certificate_is_refused() {
    let pki = Pki::new("Weir test CA");
    let rogue = Pki::new("Rogue CA");
    let tmp = tempfile::tempdir().unwrap();
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), None);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("{}api/v1/sensors/sensor-1/events", cn.url());
    let post = |client: reqwest::Client| {
        rt.block_on(async {
            client.post(&url).header("idempotency-key", "k1").body("{\"n\":1}\n").send().await.map(|r| r.status())
        })
    };
    let trust = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap();
    let identity = |tls: &weir_sensor_link::ClientTls| {
        let mut pem = tls.cert_pem.clone();
        pem.extend_from_slice(&tls.key_pem);
        reqwest::Identity::from_pem(&pem).unwrap()
    };
    // No client certificate at all.
    let bare = reqwest::Client::builder().tls_certs_only([trust.clone()]).build().unwrap();
    assert!(post(bare).is_err(), "a client without a certificate must not get an HTTP answer");
    // A certificate from another CA.
    let rogue_tls = rogue.client_tls("sensor-1", &pki);
    let client = reqwest::Client::builder().tls_certs_only([trust.clone()]).identity(identity(&rogue_tls)).build().unwrap();
    assert!(post(client).is_err(), "a certificate from an unknown CA must be refused");
    // A valid certificate for another sensor.
    let other = pki.client_tls("sensor-2", &pki);
    let client = reqwest::Client::builder().tls_certs_only([trust]).identity(identity(&other)).build().unwrap();
    assert_eq!(post(client).unwrap(), reqwest::StatusCode::FORBIDDEN);
    assert!(!cn.data.join("sensor-1").exists(), "nothing was stored for sensor-1");

    // The link with a rogue certificate keeps its events and keeps trying.
    let out = tmp.path().join("sensor");
    let link = start(fast_config(&cn.url(), "sensor-1", rogue_tls, &out.join("spool")), &out);
    offer_range(&link, 0..10);
    link.flush().unwrap();
    wait_until("refused attempts", || link.status().stats.retries >= 3);
    assert_eq!(link.status().pending(), 1);
    assert_eq!(link.status().stats.events_delivered, 0);
    assert!(!cn.data.join("sensor-1").exists());
}

#[test]
fn events_left_in_the_spool_by_a_stopped_link_are_sent_by_the_next_one() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = tmp.path().join("sensor");
    let url = format!("https://{addr}/");
    let link = start(fast_config(&url, "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool")), &out);
    offer_range(&link, 0..250);
    let status = link.shutdown();
    assert_eq!(status.stats.events_spooled, 250, "shutdown spools what was still in the intake");
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), Some(addr));
    let link = start(fast_config(&url, "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool")), &out);
    // A file that is not in the filestore cannot ever be sent: dropped with a record, not retried.
    let missing = ContentRef { sha256: [7; 32], len: 10 };
    assert_eq!(link.file(missing, json!({})), Offer::Queued);
    wait_delivered(&link, "the previous run's events");
    assert_eq!(stored_ns(&cn.data, "sensor-1"), (0..250).collect::<Vec<_>>());
    let stats = link.status().stats;
    assert_eq!((stats.content_unreadable, stats.rejected_by_cn, stats.files_delivered), (1, 0, 0));
}

#[test]
fn a_full_spool_refuses_loudly_and_keeps_what_it_holds() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = tmp.path().join("sensor");
    let url = format!("https://{addr}/");
    let mut config = fast_config(&url, "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool"));
    // Room for a few batches of 100 events (about 8 KiB each), not for 20.
    config.spool_max_bytes = 30_000;
    let link = start(config.clone(), &out);
    offer_range(&link, 0..2000);
    link.flush().unwrap();
    let status = link.status();
    let kept = status.stats.events_spooled;
    assert!(kept > 0 && kept < 2000, "spooled {kept}");
    assert_eq!(status.stats.dropped_spool_full, 2000 - kept, "every event is spooled or counted as lost");
    drop(link);
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), Some(addr));
    let link = start(config, &out);
    wait_delivered(&link, "what the full spool held");
    assert_eq!(stored_ns(&cn.data, "sensor-1"), (0..kept).collect::<Vec<_>>(), "the first batches, intact");
}

#[test]
fn a_bearer_token_when_required_must_match() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let cn = Cn::start_with(&tmp.path().join("cn"), pki.server_tls(), None, Some("s3cret"));
    let mut config = fast_config(&cn.url(), "sensor-1", pki.client_tls("sensor-1", &pki), &tmp.path().join("a/spool"));
    config.token = Some("wrong".into());
    let wrong = start(config, &tmp.path().join("a"));
    offer_range(&wrong, 0..5);
    wrong.flush().unwrap();
    wait_until("refused attempts", || wrong.status().last_error.is_some_and(|e| e.contains("401")));
    assert_eq!(wrong.status().pending(), 1);
    drop(wrong);
    let mut config = fast_config(&cn.url(), "sensor-1", pki.client_tls("sensor-1", &pki), &tmp.path().join("a/spool"));
    config.token = Some("s3cret".into());
    let right = start(config, &tmp.path().join("a"));
    wait_delivered(&right, "with the right token");
    assert_eq!(stored_ns(&cn.data, "sensor-1"), vec![0, 1, 2, 3, 4]);
}

#[test]
fn records_that_are_not_one_json_object_are_refused_at_intake() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), None);
    let out = tmp.path().join("sensor");
    let link = start(fast_config(&cn.url(), "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool")), &out);
    assert_eq!(link.event(event(0)), Offer::Queued);
    for bad in [&b"not json"[..], b"[1,2]", b"{\"a\":1}\n{\"b\":2}", b"{\"a\":", b""] {
        assert!(matches!(link.event(bad.to_vec()), Offer::Refused(_)), "{}", String::from_utf8_lossy(bad));
    }
    assert_eq!(link.event(event(1)), Offer::Queued);
    wait_delivered(&link, "the good records");
    assert_eq!(stored_ns(&cn.data, "sensor-1"), vec![0, 1], "the good records of the batch are not lost with the bad");
    assert_eq!(link.status().stats.refused_intake, 5);
}
