//! A sensor process killed with SIGKILL in the middle of uploading, then started again on the same
//! spool: everything it had spooled reaches the Central Node, each event stored once.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::{Cn, Fault, FaultProxy, Pki, event, fast_config, file_bytes, stored_ns, wait_until};
use serde_json::json;
use sha2::{Digest, Sha256};
use weir_sensor_link::{ClientTls, Link, MailStore, Offer};
use weir_spool::Filestore;

const CHILD_ENV: &str = "WEIR_LINK_KILL9_DIR";
const EVENTS: u64 = 3000;
const FILES: u64 = 30;

fn tls_from(dir: &Path) -> ClientTls {
    ClientTls::from_files(&dir.join("ca.pem"), &dir.join("sensor.pem"), &dir.join("sensor.key")).unwrap()
}

fn start(dir: &Path, url: &str) -> Link {
    let mut config = fast_config(url, "sensor-1", tls_from(dir), &dir.join("spool"));
    // Many small batches, so the upload is long enough to be interrupted.
    config.batch_max_events = 10;
    Link::start(
        config,
        Arc::new(Filestore::new(dir.join("filestore"))),
        Arc::new(MailStore::new(dir.join("mail"))),
        Arc::new(|_, _| Ok(())),
    )
    .unwrap()
}

/// The child's body: spools everything, says so, and uploads until it is killed. Without the
/// environment variable it is an ordinary (empty) test.
#[test]
fn kill9_child_sensor() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let dir = PathBuf::from(dir);
    let url = std::fs::read_to_string(dir.join("url")).unwrap();
    let link = start(&dir, &url);
    let filestore = Filestore::new(dir.join("filestore"));
    for n in 0..EVENTS {
        assert_eq!(link.event(event(n)), Offer::Queued);
        if n % (EVENTS / FILES) == 0 {
            assert_eq!(link.file(filestore.store(&file_bytes(n)).unwrap(), json!({})), Offer::Queued);
        }
    }
    link.flush().unwrap();
    println!("spooled");
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn sensor_killed_mid_upload_delivers_everything_after_restart() {
    let pki = Pki::new("Weir test CA");
    let tmp = tempfile::tempdir().unwrap();
    let cn = Cn::start(&tmp.path().join("cn"), pki.server_tls(), None);
    // Every chunk the sensor sends is held back a little, so the kill lands mid-upload.
    let proxy = FaultProxy::start(cn.addr, |_| Fault::Drip(Duration::from_millis(15)));
    let dir = tmp.path().join("sensor");
    std::fs::create_dir_all(&dir).unwrap();
    let tls = pki.client_tls("sensor-1", &pki);
    std::fs::write(dir.join("ca.pem"), &tls.ca_pem).unwrap();
    std::fs::write(dir.join("sensor.pem"), &tls.cert_pem).unwrap();
    std::fs::write(dir.join("sensor.key"), &tls.key_pem).unwrap();
    std::fs::write(dir.join("url"), proxy.url()).unwrap();

    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_child_sensor", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let out = BufReader::new(child.0.stdout.take().unwrap());
    let spooled = out.lines().map_while(Result::ok).any(|l| l.trim_end().ends_with("spooled"));
    assert!(spooled, "the child did not finish spooling");
    wait_until("the first events at the CN", || stored_ns(&cn.data, "sensor-1").len() >= 50);
    // Child::kill is SIGKILL on Unix: no destructor, no flush, requests cut wherever they are.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let before = stored_ns(&cn.data, "sensor-1").len() as u64;
    assert!(before < EVENTS, "the kill came after the upload finished; nothing was interrupted");

    let link = start(&dir, &cn.url());
    wait_until("everything after the restart", || link.status().pending() == 0);
    assert_eq!(stored_ns(&cn.data, "sensor-1"), (0..EVENTS).collect::<Vec<_>>(), "each event once, in order");
    for n in (0..EVENTS).step_by((EVENTS / FILES) as usize) {
        let bytes = file_bytes(n);
        let sha = weir_spool::hex(&Sha256::digest(&bytes));
        assert_eq!(std::fs::read(cn.data.join("sensor-1/files").join(&sha[..2]).join(&sha)).unwrap(), bytes);
    }
}


/// Kills the child if the test fails before it does, so a failure cannot hang the run.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
