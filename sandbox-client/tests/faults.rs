//! The bad-input list not covered by `dispatch.rs`: a sandbox slower than the timeout,
//! unreadable reports, `Retry-After`, the Cuckoo API's failed analyses and wrong token, and the
//! error each bad answer becomes (what the log says).

mod common;

use std::time::Duration;

use common::*;
use weir_sandbox_client::test_sandbox::{Faults, TestSandbox};
use weir_sandbox_client::{
    ApiError, ApiKind, MAX_REDIRECTS, MAX_REJECTIONS, MAX_RETRY_AFTER, SandboxApi, SandboxConfig,
    TaskStatus,
};

/// Status and report answers slower than the timeout: each poll times out and is retried, the
/// item keeps its task (no second submission), and the verdicts come once the sandbox speeds up.
#[test]
fn a_sandbox_slower_than_the_timeout_keeps_tasks_and_delivers_later() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.delay_reads = Duration::from_millis(1500));
    let rig = Rig::new(&sandbox.url());
    let d = rig.start_with(SandboxConfig {
        timeout_secs: 1,
        ..rig.config(ApiKind::Cape)
    });
    rig.offer_files(&d, 0..4);
    assert!(wait_for(DRAIN, || {
        sandbox.tasks_created() == 4 && d.stats().retries >= 8
    }));
    let s = d.stats();
    assert_eq!((s.submitted, s.verdicts, s.pending), (4, 0, 4));

    sandbox.faults(|f| f.delay_reads = Duration::ZERO);
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_eq!(report.stats.verdicts, 4);
    assert_eq!(sandbox.tasks_created(), 4, "no task was submitted again");
    assert_files_delivered_once(&sandbox, 0..4);
}

/// Reports that are not JSON: the items stay in the spool with their task ids across a restart,
/// and are judged from the same tasks once the reports are readable.
#[test]
fn unreadable_reports_keep_items_with_their_tasks_until_readable() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.garbage_reports = true);
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    rig.offer_files(&d, 0..4);
    assert!(wait_for(DRAIN, || d.stats().retries >= 8
        || sandbox.tasks_created() > 4));
    assert_eq!(
        sandbox.tasks_created(),
        4,
        "a task whose report was unreadable was submitted again"
    );
    let report = d.finish(Duration::ZERO);
    assert_eq!(report.stats.verdicts, 0);
    assert_eq!(report.pending.len(), 4);
    assert!(
        report.pending.iter().all(|p| p.task_id.is_some()),
        "{:?}",
        report.pending
    );
    assert!(report.records.is_empty());

    sandbox.faults(|f| f.garbage_reports = false);
    let report = rig.start(ApiKind::Cape).finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_eq!(report.stats.verdicts, 4);
    assert_eq!(report.stats.submitted, 0, "the recorded tasks were polled");
    assert_eq!(sandbox.tasks_created(), 4);
    assert_eq!(sandbox_records(&report.records).len(), 4);
    assert_files_delivered_once(&sandbox, 0..4);
}

/// Cuckoo: accepted-then-failed analyses end with a `failed_analysis` record; a wrong Bearer
/// token keeps the items until it is fixed.
#[test]
fn cuckoo_failed_analyses_are_recorded_and_a_wrong_token_keeps_items() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.fail_analysis = true);
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cuckoo);
    rig.offer_files(&d, 0..3);
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_eq!(
        (report.stats.analysis_failed, report.stats.verdicts),
        (3, 0)
    );
    assert_eq!(report.records.len(), 3);
    assert!(report.records.iter().all(|r| {
        r["sandbox"]["status"] == "failed_analysis" && r["sandbox"]["verdict"] == "unknown"
    }));

    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let d = rig.start_with(SandboxConfig {
        token: "wrong".into(),
        ..rig.config(ApiKind::Cuckoo)
    });
    rig.offer_files(&d, 0..3);
    assert!(wait_for(DRAIN, || sandbox.refused_auth() >= 6));
    let report = d.finish(Duration::ZERO);
    assert_eq!(report.pending.len(), 3);
    assert_eq!(sandbox.tasks_created(), 0);
    let report = rig.start(ApiKind::Cuckoo).finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_files_delivered_once(&sandbox, 0..3);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn api(url: &str, api: ApiKind, token: &str) -> SandboxApi {
    SandboxApi::new(&SandboxConfig {
        api,
        url: url.into(),
        token: token.into(),
        timeout_secs: 5,
        max_report_bytes: 1 << 20,
        ..SandboxConfig::default()
    })
    .unwrap()
}

/// A 429's `Retry-After` (seconds) is the retry delay, clamped to `MAX_RETRY_AFTER`; a form the
/// client does not read (an HTTP date) leaves the delay to the backoff.
#[test]
fn retry_after_is_honoured_and_clamped() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let cape = api(&sandbox.url(), ApiKind::Cape, TOKEN);
    let rt = runtime();
    for (header, expected) in [
        ("7", Some(Duration::from_secs(7))),
        ("86400", Some(MAX_RETRY_AFTER)),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
    ] {
        sandbox.set_faults(Faults {
            rate_limit_next: 1,
            retry_after: Some(header.into()),
            ..Faults::default()
        });
        match rt.block_on(cape.status(1)) {
            Err(ApiError::RateLimited { retry_after }) => {
                assert_eq!(retry_after, expected, "Retry-After: {header}")
            }
            other => panic!("Retry-After: {header}: {other:?}"),
        }
    }
}

/// Each bad answer becomes its own error, whose message (what the dispatcher logs) says what went
/// wrong; none is mistaken for a verdict.
#[test]
fn bad_answers_become_clear_errors() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rt = runtime();
    let cape = api(&sandbox.url(), ApiKind::Cape, TOKEN);
    let task = rt.block_on(cape.submit_url("http://a.example/")).unwrap();
    assert_eq!(task, 1);

    for (api_kind, scheme) in [(ApiKind::Cape, "Token"), (ApiKind::Cuckoo, "Bearer")] {
        let wrong = api(&sandbox.url(), api_kind, "wrong");
        let err = rt.block_on(wrong.status(task)).unwrap_err();
        assert!(
            matches!(err, ApiError::Auth { status: 401 }),
            "{scheme}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            "sandbox refused the token (HTTP 401): check [sandbox] token"
        );
    }

    sandbox.faults(|f| f.garbage_next = 1);
    let err = rt.block_on(cape.status(task)).unwrap_err();
    assert!(matches!(err, ApiError::Garbage(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("sandbox answer is not the JSON expected: "),
        "{err}"
    );

    sandbox.faults(|f| f.garbage_reports = true);
    let err = rt.block_on(cape.report(task)).unwrap_err();
    assert!(matches!(err, ApiError::Garbage(_)), "{err:?}");
    sandbox.faults(|f| f.garbage_reports = false);

    sandbox.faults(|f| f.server_error_next = 1);
    let err = rt.block_on(cape.status(task)).unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 500 }), "{err:?}");
    assert!(err.is_outage());

    sandbox.faults(|f| f.unavailable = true);
    let err = rt.block_on(cape.status(task)).unwrap_err();
    assert!(matches!(err, ApiError::Server { status: 503 }), "{err:?}");
    sandbox.faults(|f| f.unavailable = false);

    sandbox.faults(|f| f.redirect_loop = true);
    let before = sandbox.requests();
    let err = rt.block_on(cape.status(task)).unwrap_err();
    assert!(matches!(err, ApiError::Redirects), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("sandbox redirected more than {MAX_REDIRECTS} times (a redirect loop?)")
    );
    assert_eq!(
        sandbox.requests() - before,
        MAX_REDIRECTS as u64 + 1,
        "the request and {MAX_REDIRECTS} hops"
    );
    sandbox.faults(|f| f.redirect_loop = false);

    // The 2 GiB report: read up to the limit, then the task view; the server produced a bounded
    // amount, not the whole report.
    sandbox.faults(|f| f.huge_report = true);
    let report = rt.block_on(cape.report(task)).unwrap();
    assert_eq!(report.partial.as_deref(), Some("report over 1048576 bytes"));
    assert_eq!(report.score, None);
    let sent = sandbox.huge_report_bytes_sent();
    assert!((1 << 20..64 << 20).contains(&sent), "{sent} bytes produced");
    sandbox.faults(|f| f.huge_report = false);

    // None of the bad answers above reached the task: this is its first status poll.
    assert_eq!(
        rt.block_on(cape.status(task)).unwrap(),
        TaskStatus::InProgress("pending".into())
    );

    let down = api(&format!("http://{}/", free_addr()), ApiKind::Cape, TOKEN);
    let err = rt.block_on(down.status(task)).unwrap_err();
    assert!(matches!(err, ApiError::Unreachable(_)), "{err:?}");
    assert!(
        err.to_string().starts_with("sandbox unreachable: "),
        "{err}"
    );
}

/// A file of several MiB with bytes that differ all along, distinct per `n`.
fn big_file(n: u32) -> Vec<u8> {
    let mut b = pe_bytes(n);
    b.extend((0..5u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 ^ n as u8));
    b
}

/// Files of several MiB (like the capture's ELF libraries and archives) arrive whole. One that a
/// proxy cuts off at its upload limit (413 before the body is read) is never lost: depending on how
/// much of the body was sent when the answer came, the client sees the 413 (a rejection, given up
/// after `MAX_REJECTIONS` with a `rejected` record) or a broken connection (kept and retried).
#[test]
fn large_files_arrive_whole_and_an_upload_cut_off_is_not_lost() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    let rig = Rig::new(&sandbox.url());
    let d = rig.start(ApiKind::Cape);
    for n in 0..2 {
        d.offer(file_sighting(
            &rig.store,
            &big_file(n),
            "big.so",
            u64::from(n),
        ));
    }
    let report = d.finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    let files = sandbox.files();
    assert_eq!(files.len(), 2);
    for n in 0..2 {
        let bytes = big_file(n);
        let (got, times) = &files[&sha_hex(&bytes)];
        assert_eq!((got.len(), *times), (bytes.len(), 1));
        assert!(got == &bytes, "file {n} not byte-identical");
    }

    sandbox.faults(|f| f.upload_limit = 1 << 20);
    let d = rig.start(ApiKind::Cape);
    d.offer(file_sighting(&rig.store, &big_file(7), "big.so", 7));
    assert!(wait_for(DRAIN, || {
        let s = d.stats();
        s.retries > u64::from(MAX_REJECTIONS) || s.failed > 0
    }));
    let report = d.finish(Duration::ZERO);
    let rejected = report
        .records
        .iter()
        .filter(|r| r["sandbox"]["status"] == "rejected")
        .count();
    assert_eq!(
        (
            report.pending.len() + rejected,
            report.records.len() - rejected
        ),
        (1, 0),
        "kept or given up with a record: {:?}",
        report.records
    );
    assert_eq!(report.stats.submitted, 0);
    assert_eq!(sandbox.tasks_created(), 2);
}
