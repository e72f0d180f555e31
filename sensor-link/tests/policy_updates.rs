//! Policy and updates from the reference receiver: ETags, verification, validation, swap, and the
//! old set kept when an update is bad.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{Cn, Pki, fast_config, wait_until};
use sha2::{Digest, Sha256};
use weir_sensor_link::{Link, LicenseState, MailStore, UpdateKind, UpdateValidator};
use weir_spool::Filestore;

/// Accepts a staged rules folder unless a file in it says BROKEN (a stand-in for "rules load").
fn rules_must_load() -> UpdateValidator {
    Arc::new(|kind, dir: &Path| {
        assert_eq!(kind, UpdateKind::Rules);
        for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
            let path = entry.map_err(|e| e.to_string())?.path();
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            if text.contains("BROKEN") {
                return Err(format!("{}: rule does not parse", path.display()));
            }
        }
        Ok(())
    })
}

fn applied_rules(link: &Link) -> Option<(String, String)> {
    let updates = link.updates().borrow().clone();
    let u = updates.get(&UpdateKind::Rules)?;
    let text = std::fs::read_to_string(u.files.first()?).ok()?;
    Some((u.version.clone(), text))
}

#[test]
fn updates_are_verified_validated_and_swapped_and_bad_ones_keep_the_old() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cn");
    let rules_dir = data.join("updates/rules");
    std::fs::create_dir_all(&rules_dir).unwrap();
    std::fs::write(rules_dir.join("weir.rules"), "alert tcp any any -> any any (msg:\"one\"; sid:1;)\n").unwrap();
    let cn = Cn::start(&data, pki.server_tls(), None);
    let out = tmp.path().join("sensor");
    let config = fast_config(&cn.url(), "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool"));
    let start = |config| {
        Link::start(config, Arc::new(Filestore::new(out.join("fs"))), Arc::new(MailStore::new(out.join("mail"))), rules_must_load())
            .unwrap()
    };
    let link = start(config.clone());
    wait_until("the first rules update", || applied_rules(&link).is_some());
    let (v1, text1) = applied_rules(&link).unwrap();
    assert!(text1.contains("sid:1;"));
    let first_dir = link.updates().borrow()[&UpdateKind::Rules].dir.clone();

    // A manifest whose hash does not match the file.
    let bad = "alert tcp any any -> any any (msg:\"two\"; sid:2;)\n";
    std::fs::write(rules_dir.join("weir2.rules"), bad).unwrap();
    let manifest = serde_json::json!({
        "kind": "rules", "version": "bad-hash",
        "files": [{ "name": "weir2.rules", "sha256": "00".repeat(32), "size": bad.len() }]
    });
    std::fs::write(rules_dir.join("manifest.json"), manifest.to_string()).unwrap();
    wait_until("the bad hash rejected", || link.status().stats.updates_rejected >= 1);
    let status = link.status();
    let rejected = status.updates[&UpdateKind::Rules].last_rejected.clone().unwrap();
    assert_eq!(rejected.0, "bad-hash");
    assert!(rejected.1.contains("does not match the manifest"), "{}", rejected.1);
    assert_eq!(applied_rules(&link), Some((v1.clone(), text1.clone())), "the old rules stay");
    assert!(!out.join("spool/updates/rules/.staging").exists());

    // Files that hash right but do not load.
    std::fs::remove_file(rules_dir.join("manifest.json")).unwrap();
    std::fs::remove_file(rules_dir.join("weir2.rules")).unwrap();
    std::fs::write(rules_dir.join("weir.rules"), "alert BROKEN\n").unwrap();
    wait_until("the unloadable rules rejected", || link.status().stats.updates_rejected >= 2);
    let rejected = link.status().updates[&UpdateKind::Rules].last_rejected.clone().unwrap();
    assert!(rejected.1.contains("validation failed") && rejected.1.contains("does not parse"), "{}", rejected.1);
    assert_eq!(applied_rules(&link), Some((v1.clone(), text1.clone())), "the old rules stay");
    assert_eq!(link.status().stats.updates_applied, 1);

    // A good update replaces the set; the old folder goes.
    std::fs::write(rules_dir.join("weir.rules"), "alert tcp any any -> any any (msg:\"three\"; sid:3;)\n").unwrap();
    wait_until("the good update applied", || link.status().stats.updates_applied >= 2);
    let (v3, text3) = applied_rules(&link).unwrap();
    assert_ne!(v3, v1);
    assert!(text3.contains("sid:3;"));
    assert!(!first_dir.exists());
    let stats = link.status().stats;
    assert_eq!((stats.updates_applied, stats.updates_rejected), (2, 2), "a rejected update is not fetched again");

    // After a restart the applied update is known at once, and not fetched again (ETag).
    drop(link);
    let link = start(config);
    assert_eq!(applied_rules(&link), Some((v3, text3)));
    wait_until("a health report after restart", || link.status().stats.health_reports >= 1);
    assert_eq!(link.status().stats.updates_applied, 0);
}

#[test]
fn policy_carries_license_and_exclusions_and_survives_restart() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cn");
    std::fs::create_dir_all(data.join("policy")).unwrap();
    // A per-sensor policy with an expired license and fields this version does not know.
    let policy = r#"{"license":{"id":"L-7","expires":"2020-01-01T00:00:00Z","features":["sandbox","reputation"],"seats":3},
        "exclusions":{"ips":["10.1.0.0/16"],"sha256":["aa"],"future":1},"v2":true}"#;
    std::fs::write(data.join("policy/sensor-1.json"), policy).unwrap();
    std::fs::write(data.join("policy/default.json"), r#"{"exclusions":{"hosts":["example.org"]}}"#).unwrap();
    let cn = Cn::start(&data, pki.server_tls(), None);
    let out = tmp.path().join("sensor");
    let config = fast_config(&cn.url(), "sensor-1", pki.client_tls("sensor-1", &pki), &out.join("spool"));
    let start = |config| {
        Link::start(config, Arc::new(Filestore::new(out.join("fs"))), Arc::new(MailStore::new(out.join("mail"))), Arc::new(|_, _| Ok(())))
            .unwrap()
    };
    let link = start(config.clone());
    wait_until("the policy", || link.policy().borrow().is_some());
    let p = link.policy().borrow().clone().unwrap();
    assert_eq!(p.exclusions.ips, vec!["10.1.0.0/16"]);
    assert_eq!(
        link.license(),
        LicenseState::Expired { expires: "2020-01-01T00:00:00Z".into(), disabled: vec!["sandbox".into(), "reputation".into()] }
    );
    wait_until("license reported in health", || {
        std::fs::read(cn.data.join("sensor-1/health.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|h| h["license"]["state"] == "expired" && h["license"]["disabled"][0] == "sandbox")
    });
    assert_eq!(link.status().stats.policy_updates, 1, "an unchanged policy is not fetched again");

    // The CN goes away; the next start still has the policy.
    drop(link);
    drop(cn);
    let link = start(config);
    assert_eq!(link.policy().borrow().as_ref().map(|p| p.exclusions.ips.clone()), Some(vec!["10.1.0.0/16".to_string()]));
    assert!(matches!(link.license(), LicenseState::Expired { .. }));
}

#[test]
fn receiver_manifest_lists_files_with_their_hashes() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("cn");
    std::fs::create_dir_all(data.join("updates/ioc")).unwrap();
    std::fs::write(data.join("updates/ioc/hashes.txt"), "44d88612fea8a8f36de82e1278abb02f\n").unwrap();
    let cn = Cn::start(&data, pki.server_tls(), None);
    let tls = pki.client_tls("sensor-1", &pki);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut pem = tls.cert_pem.clone();
    pem.extend_from_slice(&tls.key_pem);
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = format!("{}api/v1/sensors/sensor-1/updates/ioc", cn.url());
    let (etag, manifest) = rt.block_on(async {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        (etag, serde_json::from_slice::<serde_json::Value>(&r.bytes().await.unwrap()).unwrap())
    });
    let sha = weir_spool::hex(&Sha256::digest(b"44d88612fea8a8f36de82e1278abb02f\n"));
    assert_eq!(manifest["kind"], "ioc");
    assert_eq!(manifest["files"], serde_json::json!([{ "name": "hashes.txt", "sha256": sha, "size": 33 }]));
    let again = rt.block_on(async { client.get(&url).header("if-none-match", &etag).send().await.unwrap().status() });
    assert_eq!(again, 304);
    let unknown = rt.block_on(async { client.get(format!("{url}x")).send().await.unwrap().status() });
    assert_eq!(unknown, 404);
}
