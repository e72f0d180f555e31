//! The dispatcher against the in-process test sandbox: delivery exactly once, byte-identical,
//! through outages, crashes and bad answers.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use weir_core::SeenIn;
use weir_sandbox_client::test_sandbox::{Faults, TestSandbox};
use weir_sandbox_client::{ApiKind, Offer, SUBMIT_QUEUE, SandboxConfig};
use weir_spool::{NewItem, Payload, Spool, SpoolConfig};

/// Hundreds of artifacts as a capture would give them: eligible files (some seen several
/// times), files the policy skips, URLs from mail and HTTP. Every eligible one arrives exactly
/// once and byte-identical, and every verdict comes back.
#[test]
fn all_eligible_files_arrive_byte_identical_exactly_once() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);

    let started = Instant::now();
    let mut expected = HashMap::new();
    let mut flow = 0;
    for n in 0..200u32 {
        let bytes = pe_bytes(n);
        expected.insert(sha_hex(&bytes), bytes.clone());
        flow += 1;
        d.offer(file_sighting(
            &rig.store,
            &bytes,
            &format!("/download/{n}.bin"),
            flow,
        ));
        if n % 4 == 0 {
            // The same file again, from another flow.
            flow += 1;
            d.offer(file_sighting(&rig.store, &bytes, "again.exe", flow));
        }
    }
    for n in 0..60u32 {
        flow += 1;
        d.offer(file_sighting(
            &rig.store,
            format!("<html>page {n}</html>").as_bytes(),
            "index.html",
            flow,
        ));
    }
    for n in 0..20u32 {
        flow += 1;
        d.offer(url_sighting(
            &format!("http://evil{n}.example/payload?id={n}"),
            SeenIn::EmailUrl,
            flow,
        ));
        flow += 1;
        d.offer(url_sighting(
            &format!("HTTP://EVIL{n}.example:80/payload?id={n}#x"),
            SeenIn::HttpUrl,
            flow,
        ));
        flow += 1;
        d.offer(url_sighting(
            &format!("evil{n}.example"),
            SeenIn::DnsQuery,
            flow,
        ));
    }
    let offered = flow;
    let report = d.finish(DRAIN);
    let elapsed = started.elapsed();
    assert!(report.pending.is_empty(), "{:?}", report.pending);

    let files = sandbox.files();
    assert_eq!(files.len(), 200);
    for (sha, (bytes, times)) in &files {
        assert_eq!(*times, 1, "{sha} submitted {times} times");
        assert_eq!(Some(bytes), expected.get(sha), "{sha} not byte-identical");
    }
    let urls = sandbox.urls();
    assert_eq!(urls.len(), 20);
    assert!(urls.values().all(|n| *n == 1));
    assert!(urls.contains_key("http://evil3.example/payload?id=3"));

    let s = &report.stats;
    assert_eq!(s.offered, offered);
    assert_eq!(s.submitted, 220);
    assert_eq!(s.duplicate, 50 + 20);
    assert_eq!(s.skipped_policy, 60 + 20);
    assert_eq!(s.verdicts, 220);
    assert_eq!(s.malicious, 40 + 20);
    assert_eq!((s.failed, s.excluded, s.pending), (0, 0, 0));

    let records = &report.records;
    let sandbox_recs = sandbox_records(records);
    assert_eq!(sandbox_recs.len(), 220);
    assert_eq!(
        records
            .iter()
            .filter(|r| r["event_type"] == "alert")
            .count(),
        60
    );
    let evil = sandbox_recs
        .iter()
        .find(|r| r["sandbox"]["sha256"] == sha_hex(&pe_bytes(5)))
        .unwrap();
    assert_eq!(evil["sandbox"]["verdict"], "malicious");
    assert_eq!(evil["sandbox"]["family"], "TestFamily");
    assert_eq!(evil["sandbox"]["score"], 9.0);
    assert_eq!(evil["src_ip"], "192.0.2.10");
    assert_eq!(evil["app_proto"], "http");
    let reopened = rig.start(ApiKind::Cape);
    assert!(
        reopened.take_records(usize::MAX).unwrap().is_empty(),
        "records are handed out once"
    );
    println!(
        "dispatch: {offered} offered, {} submitted, {} duplicate, {} skipped, {} verdicts in {:.2} s ({:.0} artifacts/s)",
        s.submitted,
        s.duplicate,
        s.skipped_policy,
        s.verdicts,
        elapsed.as_secs_f64(),
        s.verdicts as f64 / elapsed.as_secs_f64()
    );
}

#[test]
fn cuckoo_api_delivers_files_and_urls_with_bearer_auth() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cuckoo);
    rig.offer_files(&d, 0..10u32);
    d.offer(url_sighting("http://evil.example/", SeenIn::EmailUrl, 99));
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty());
    assert_files_delivered_once(&sandbox, 0..10);
    assert_eq!(sandbox.urls().get("http://evil.example/"), Some(&1));
    assert_eq!(sandbox.refused_auth(), 0);
    assert_eq!(report.stats.verdicts, 11);
    assert_eq!(report.stats.malicious, 2 + 1);
}

/// Connection refused for the first half of the run, then the sandbox comes up: all delivered.
#[test]
fn sandbox_down_for_the_first_half_then_up_all_delivered() {
    let addr = free_addr();
    let rig = Rig::new(&format!("http://{addr}/"));
    let d = rig.start(ApiKind::Cape);
    rig.offer_files(&d, 0..20u32);
    // Everything is kept while the sandbox is down, and retried.
    assert!(wait_for(DRAIN, || {
        let s = d.stats();
        s.pending == 20 && s.retries >= 10 && s.circuit_opened >= 1
    }));
    assert_eq!(d.stats().submitted, 0);

    let sandbox = TestSandbox::start_on(addr, TOKEN).unwrap();
    rig.offer_files(&d, 20..40u32);
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_files_delivered_once(&sandbox, 0..40);
    assert_eq!(report.stats.verdicts, 40);
}

/// The dispatcher is dropped without `finish` while submissions are in flight (the sandbox
/// creates tasks and answers late); a new one on the same spool delivers the rest, and no file
/// reaches the sandbox twice.
#[test]
fn crash_mid_flight_then_restart_delivers_all_none_twice() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.delay_after_create = Duration::from_millis(300));
    let rig = Rig::new(&sandbox.url());
    let first = rig.start(ApiKind::Cape);
    rig.offer_files(&first, 0..30u32);
    assert!(wait_for(DRAIN, || sandbox.tasks_created() >= 8));
    drop(first);
    let created_at_crash = sandbox.tasks_created();
    assert!(created_at_crash < 30, "the crash came mid-flight");

    sandbox.faults(|f| f.delay_after_create = Duration::ZERO);
    let second = rig.start(ApiKind::Cape);
    let report = second.finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_files_delivered_once(&sandbox, 0..30);
    assert_eq!(sandbox.tasks_created(), 30);
    assert!(
        report.stats.adopted >= 1,
        "the tasks created during the crash were adopted, not resubmitted"
    );
    let records = &report.records;
    let shas: HashSet<&Value> = sandbox_records(records)
        .iter()
        .map(|r| &r["sandbox"]["sha256"])
        .collect();
    assert_eq!(
        sandbox_records(records).len(),
        30,
        "one verdict record per file"
    );
    assert_eq!(shas.len(), 30);
}

/// Garbage JSON, 500s and 429s: every item is retried until delivered, none lost or doubled.
#[test]
fn bad_answers_are_retried_until_delivered() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.set_faults(Faults {
        garbage_next: 4,
        server_error_next: 4,
        rate_limit_next: 4,
        ..Faults::default()
    });
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    rig.offer_files(&d, 0..6u32);
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_eq!(report.stats.retries, 12);
    assert_eq!(report.stats.verdicts, 6);
    // A garbage answer to a submission may hide a created task: the retry finds it by hash.
    assert!(
        sandbox.files().values().all(|(_, times)| *times == 1),
        "{:?}",
        sandbox.files().values().map(|v| v.1).collect::<Vec<_>>()
    );
}

/// A wrong token is an error on every attempt; the items wait in the spool and go once the token
/// is fixed.
#[test]
fn wrong_token_keeps_items_until_fixed() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let d = rig.start_with(SandboxConfig {
        token: "wrong".into(),
        ..rig.config(ApiKind::Cape)
    });
    rig.offer_files(&d, 0..3u32);
    assert!(wait_for(DRAIN, || sandbox.refused_auth() >= 6));
    let report = d.finish(Duration::ZERO);
    assert_eq!(report.pending.len(), 3);
    assert_eq!(sandbox.tasks_created(), 0);

    let d = rig.start(ApiKind::Cape);
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty());
    assert_files_delivered_once(&sandbox, 0..3);
}

/// A redirect loop fails the request after a few hops instead of hanging; the item is kept.
#[test]
fn redirect_loop_is_an_error_and_the_item_is_kept() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.redirect_loop = true);
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    d.offer(file_sighting(&rig.store, &pe_bytes(1), "x.exe", 1));
    assert!(wait_for(DRAIN, || d.stats().retries >= 2));
    let requests = sandbox.requests();
    let retries = d.stats().retries;
    // Each failed attempt is the request and at most MAX_REDIRECTS hops, plus one in flight.
    assert!(
        requests <= (retries + 1) * (weir_sandbox_client::MAX_REDIRECTS as u64 + 1),
        "{requests} requests, {retries} retries"
    );
    let report = d.finish(Duration::ZERO);
    assert_eq!(report.pending.len(), 1);
    assert_eq!(sandbox.tasks_created(), 0);
}

/// A 2 GiB report is not read whole: the verdict is recorded from the task view as partial.
#[test]
fn huge_report_is_abandoned_at_the_limit() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.huge_report = true);
    let rig = Rig::new(&sandbox.url());
    let d = rig.start_with(SandboxConfig {
        max_report_bytes: 1 << 20,
        ..rig.config(ApiKind::Cape)
    });
    d.offer(file_sighting(&rig.store, &pe_bytes(1), "x.exe", 1));
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty());
    let records = &report.records;
    assert_eq!(records.len(), 1);
    let sb = &records[0]["sandbox"];
    assert_eq!(sb["status"], "reported");
    assert_eq!(sb["verdict"], "unknown");
    assert_eq!(sb["error"], "report over 1048576 bytes");
    // Bounded read: the server produced the limit plus what socket buffers hold, not 2 GiB.
    let sent = sandbox.huge_report_bytes_sent();
    assert!(sent >= 1 << 20, "{sent}");
    assert!(
        sent < 64 << 20,
        "{sent} bytes of the 2 GiB report were read"
    );
}

/// Analyses the sandbox accepts and then fails are recorded as such, not retried forever.
#[test]
fn accepted_then_failed_analysis_is_recorded() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.fail_analysis = true);
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    rig.offer_files(&d, 0..3u32);
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty());
    assert_eq!(report.stats.analysis_failed, 3);
    assert_eq!(report.stats.verdicts, 0);
    let records = &report.records;
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(
        |r| r["sandbox"]["status"] == "failed_analysis" && r["sandbox"]["verdict"] == "unknown"
    ));
}

/// A slow sandbox is still served within the limits; the circuit opens on an outage (503) and
/// closes when it ends.
#[test]
fn outage_opens_the_circuit_and_slow_answers_still_deliver() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.unavailable = true);
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    rig.offer_files(&d, 0..4u32);
    assert!(wait_for(DRAIN, || d.stats().circuit_opened >= 2));
    sandbox.faults(|f| {
        f.unavailable = false;
        f.delay = Duration::from_millis(20);
    });
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty());
    assert_eq!(report.stats.verdicts, 4);
    assert_files_delivered_once(&sandbox, 0..4);
}

/// A verdict is reused for a later sighting of the same file, across a restart, without a new
/// submission; the later record says it came from the cache and carries the later flow.
#[test]
fn known_verdicts_are_reused_for_later_sightings() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    d.offer(file_sighting(&rig.store, &pe_bytes(5), "evil.exe", 1));
    let report = d.finish(DRAIN);
    assert_eq!(report.stats.submitted, 1);

    assert_eq!(report.records.len(), 2, "sandbox and alert");
    let d = rig.start(ApiKind::Cape);
    d.offer(file_sighting(
        &rig.store,
        &pe_bytes(5),
        "evil-again.exe",
        77,
    ));
    let report = d.finish(DRAIN);
    assert_eq!(
        (
            report.stats.duplicate,
            report.stats.cached_verdicts,
            report.stats.submitted
        ),
        (1, 1, 0)
    );
    assert_eq!(sandbox.tasks_created(), 1);
    let later = &report.records;
    assert_eq!(later.len(), 2);
    assert_eq!(later[0]["flow_id"], 77);
    assert_eq!(later[0]["sandbox"]["cached"], true);
    assert_eq!(
        later[1]["alert"]["signature_id"],
        weir_sandbox_client::SANDBOX_ALERT_SID
    );
}

/// An item older than the retention is dropped, counted and not submitted.
#[test]
fn items_past_the_retention_are_dropped_and_counted() {
    let rig = Rig::new(&format!("http://{}/", free_addr()));
    {
        let spool = Spool::open(&rig.spool_dir(), SpoolConfig::default()).unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(22 * 86_400);
        let meta = serde_json::json!({"key": "url:http://old.example/", "subject": {"url": "http://old.example/"}, "flow": {}, "task_id": null});
        spool
            .push_at(SUBMIT_QUEUE, NewItem::new(meta, Payload::None), old)
            .unwrap();
    }
    let d = rig.start(ApiKind::Cape);
    assert!(wait_for(DRAIN, || d.stats().dropped_retention == 1));
    let report = d.finish(Duration::ZERO);
    assert!(report.pending.is_empty());
    assert_eq!(report.stats.submitted, 0);
}

/// `finish` waits only as long as it is told and names what is left.
#[test]
fn finish_reports_what_is_still_pending() {
    let rig = Rig::new(&format!("http://{}/", free_addr()));
    let d = rig.start(ApiKind::Cape);
    d.offer(file_sighting(&rig.store, &pe_bytes(1), "x.exe", 1));
    d.offer(url_sighting("http://evil.example/a", SeenIn::EmailUrl, 2));
    let report = d.finish(Duration::from_millis(100));
    let keys: Vec<&str> = report.pending.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            format!("sha256:{}", sha_hex(&pe_bytes(1))).as_str(),
            "url:http://evil.example/a"
        ]
    );
    assert!(report.pending.iter().all(|p| p.task_id.is_none()));
    assert_eq!(report.stats.pending, 2);
}

/// With a one-slot intake the capture side spills to the spool itself; nothing is lost or
/// doubled either way.
#[test]
fn a_full_intake_spills_to_the_spool_and_loses_nothing() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let cfg = SandboxConfig {
        queue_capacity: 1,
        ..rig.config(ApiKind::Cape)
    };
    let sightings: Vec<_> = (0..50u32)
        .flat_map(|n| {
            let bytes = pe_bytes(n);
            [
                file_sighting(&rig.store, &bytes, "a.exe", u64::from(n)),
                file_sighting(&rig.store, &bytes, "b.exe", u64::from(n) + 100),
            ]
        })
        .collect();
    let d = rig.start_with(cfg);
    let offers: Vec<_> = sightings.into_iter().map(|s| d.offer(s)).collect();
    let report = d.finish(DRAIN);
    assert!(
        offers
            .iter()
            .all(|o| matches!(o, Offer::Queued | Offer::Spilled))
    );
    assert!(report.stats.spilled >= 1, "{:?}", report.stats);
    assert_eq!(
        report.stats.spilled,
        offers.iter().filter(|o| **o == Offer::Spilled).count() as u64
    );
    assert!(report.pending.is_empty());
    assert_eq!(report.stats.duplicate, 50);
    assert_files_delivered_once(&sandbox, 0..50);
}
