//! Storage on a full disk: the output directory is a 256 KiB tmpfs this test mounts (needs root;
//! skipped with the reason printed otherwise). A replay that produces more than fits must stop
//! loudly (non-zero exit naming the failure) and leave nothing corrupt: every file in the
//! filestore and mail store holds exactly the bytes its SHA-256 name says, and eve.json holds only
//! whole records.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sha2::{Digest, Sha256};

struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            println!("SKIPPED full disk test: mounting a tmpfs needs root");
            return None;
        }
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(at).status().ok()?.success();
        if !ok {
            println!("SKIPPED full disk test: cannot mount a tmpfs");
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every stored file under `dir/<aa>/<name>`: its content hashes to its name.
fn check_store(dir: &Path, suffix: &str) -> usize {
    let mut checked = 0;
    let Ok(shards) = std::fs::read_dir(dir) else { return 0 };
    for shard in shards.flatten() {
        if shard.file_name() == "tmp" || !shard.path().is_dir() {
            continue;
        }
        for f in std::fs::read_dir(shard.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let sha = name.strip_suffix(suffix).unwrap_or(&name).to_string();
            let bytes = std::fs::read(f.path()).unwrap();
            let got: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(got, sha, "{} is not what its name says", f.path().display());
            checked += 1;
        }
    }
    checked
}

#[test]
fn a_full_disk_stops_the_run_loudly_and_corrupts_nothing() {
    let s = Scratch::new();
    let Some(fs) = Tmpfs::mount(&s.path("small"), "256k") else { return };
    let out = fs.0.join("out");
    let pcaps = Path::new(env!("CARGO_MANIFEST_DIR")).join("pcaps");
    // The project's captures write about 1.4 MiB of records, files and messages: more than fits.
    let o = replay_status(&[&pcaps], &out, &["-q"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a run that could not write its outputs must fail: {stderr}");
    assert!(stderr.contains("No space left on device"), "the reason is said: {stderr}");
    let files = check_store(&out.join("filestore"), "");
    let mails = check_store(&out.join("mail"), ".eml");
    println!("intact after the disk filled: {files} files, {mails} messages");
    // eve.json: whole records only, up to the point where the disk filled.
    let text = std::fs::read_to_string(out.join("eve.json")).unwrap_or_default();
    let complete = text.rsplit_once('\n').map_or("", |(whole, _)| whole);
    for line in complete.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("corrupt record ({e}): {line}"));
    }
}
