//! A dispatcher process killed with SIGKILL mid-dispatch; a new one on the same spool delivers
//! every file, none twice.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use weir_sandbox_client::ApiKind;
use weir_sandbox_client::test_sandbox::TestSandbox;
use weir_spool::Filestore;

const TOKEN: &str = "s3cret";
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
    let dir = std::path::PathBuf::from(dir);
    let store = Filestore::new(dir.join("filestore"));
    let d = start(
        config(&url, &dir.join("spool"), ApiKind::Cape, TOKEN),
        &store,
    );
    for n in 0..FILES {
        d.offer(file_sighting(&store, &pe_bytes(n), "x.exe", u64::from(n)));
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn kill9_mid_dispatch_then_restart_delivers_all_none_twice() {
    let sandbox = TestSandbox::start(TOKEN).unwrap();
    // Tasks exist well before the child hears of them, so the kill lands inside that window.
    sandbox.faults(|f| f.delay_after_create = Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child_dispatcher",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_URL, sandbox.url())
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reached = wait_for(Duration::from_secs(60), || sandbox.tasks_created() >= 8);
    // SIGKILL: no destructor runs, nothing is flushed.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reached, "the child never dispatched");
    assert!(
        sandbox.tasks_created() < FILES as usize,
        "the kill came mid-dispatch"
    );

    sandbox.faults(|f| f.delay_after_create = Duration::ZERO);
    let store = Filestore::new(dir.path().join("filestore"));
    let d = start(
        config(
            &sandbox.url(),
            &dir.path().join("spool"),
            ApiKind::Cape,
            TOKEN,
        ),
        &store,
    );
    let report = d.finish(Duration::from_secs(60));
    assert!(report.pending.is_empty(), "{:?}", report.pending);
    let files = sandbox.files();
    assert_eq!(files.len(), FILES as usize);
    for n in 0..FILES {
        let bytes = pe_bytes(n);
        let (got, times) = &files[&sha_hex(&bytes)];
        assert_eq!(*times, 1, "file {n} submitted {times} times");
        assert_eq!(got, &bytes);
    }
    assert_eq!(sandbox.tasks_created(), FILES as usize);
    assert!(report.stats.adopted >= 1);
}
