//! A dispatcher process killed with SIGKILL mid-dispatch; a new one on the same spool delivers
//! every file, none twice. Killed once while tasks are being created, once while they are polled.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use weir_sandbox_client::ApiKind;
use weir_sandbox_client::test_sandbox::TestSandbox;

const FILES: u32 = 30;
const CHILD_URL: &str = "WEIR_SANDBOX_KILL9_URL";
const CHILD_DIR: &str = "WEIR_SANDBOX_KILL9_DIR";

/// The child's body: dispatch every file, then wait to be killed. Without the environment it is an
/// ordinary (empty) test.
#[test]
fn kill9_child_dispatcher() {
    let (Ok(url), Ok(dir)) = (std::env::var(CHILD_URL), std::env::var(CHILD_DIR)) else {
        return;
    };
    let rig = Rig::at(&url, std::path::Path::new(&dir));
    let d = rig.start(ApiKind::Cape);
    rig.offer_files(&d, 0..FILES);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `kill9_child_dispatcher` of this test binary against `rig`.
fn spawn_child(rig: &Rig) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child_dispatcher",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, &rig.url)
        .env(CHILD_DIR, &rig.root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// SIGKILL: no destructor runs, nothing is flushed.
fn kill9(mut child: Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn kill9_mid_dispatch_then_restart_delivers_all_none_twice() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    // Tasks exist well before the child hears of them, so the kill lands inside that window.
    sandbox.faults(|f| f.delay_after_create = Duration::from_millis(300));
    let rig = Rig::new(&sandbox.url());
    let child = spawn_child(&rig);
    let reached = wait_for(DRAIN, || sandbox.tasks_created() >= 8);
    kill9(child);
    assert!(reached, "the child never dispatched");
    assert!(
        sandbox.tasks_created() < FILES as usize,
        "the kill came mid-dispatch"
    );

    sandbox.faults(|f| f.delay_after_create = Duration::ZERO);
    let report = rig.start(ApiKind::Cape).finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_files_delivered_once(&sandbox, 0..FILES);
    assert_eq!(sandbox.tasks_created(), FILES as usize);
    assert!(report.stats.adopted >= 1);
}

/// Killed after every task was created and polled, before any verdict: the restart polls the
/// recorded tasks, submits nothing, and writes one verdict record per file.
#[test]
fn kill9_while_polling_then_restart_resumes_the_tasks() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    sandbox.faults(|f| f.polls_until_reported = u32::MAX);
    let rig = Rig::new(&sandbox.url());
    let child = spawn_child(&rig);
    let reached = wait_for(DRAIN, || sandbox.tasks_polled() == FILES as usize);
    kill9(child);
    assert!(reached, "the child never polled every task");

    sandbox.faults(|f| f.polls_until_reported = 2);
    let report = rig.start(ApiKind::Cape).finish(DRAIN);
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    assert_files_delivered_once(&sandbox, 0..FILES);
    assert_eq!(sandbox.tasks_created(), FILES as usize);
    assert_eq!((report.stats.submitted, report.stats.adopted), (0, 0));
    assert_eq!(report.stats.verdicts, u64::from(FILES));
    let records = sandbox_records(&report.records);
    assert_eq!(records.len(), FILES as usize);
    let shas: std::collections::HashSet<_> =
        records.iter().map(|r| &r["sandbox"]["sha256"]).collect();
    assert_eq!(shas.len(), FILES as usize, "one record per file");
}
