//! A writer process killed with SIGKILL mid-stream leaves a spool that opens, holds every item the
//! writer was told was durable, in order, and nothing half-written.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;
use weir_spool::{ItemId, NewItem, Payload, Spool, SpoolConfig};

const CHILD_ENV: &str = "WEIR_SPOOL_KILL9_DIR";

/// The child's body: pushes, acks every third item, and reports each durable step on stdout.
/// Without the environment variable it is an ordinary (empty) test.
#[test]
fn kill9_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let spool = Spool::open(std::path::Path::new(&dir), SpoolConfig::default()).unwrap();
    for n in 0u64.. {
        let payload = Payload::Inline(vec![(n % 251) as u8; (n as usize * 37) % 4000]);
        let id = spool
            .push("q", NewItem::new(json!({ "n": n }), payload))
            .unwrap();
        println!("pushed {n} {}", id.0);
        if n % 3 == 0 {
            spool.ack("q", id).unwrap();
            println!("acked {n} {}", id.0);
        }
    }
}

#[test]
fn kill9_mid_write_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut pushed = Vec::new();
    let mut acked = Vec::new();
    let out = BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        let line = line.unwrap();
        let mut f = line.split_whitespace();
        match (f.next(), f.next(), f.next()) {
            (Some("pushed"), Some(n), Some(id)) => {
                pushed.push((n.parse::<u64>().unwrap(), id.parse::<u64>().unwrap()))
            }
            (Some("acked"), Some(_), Some(id)) => acked.push(id.parse::<u64>().unwrap()),
            _ => continue,
        }
        if pushed.len() >= 150 {
            break;
        }
    }
    // Child::kill sends SIGKILL on Unix: no destructor, no flush.
    child.kill().unwrap();
    child.wait().unwrap();

    let spool = Spool::open(dir.path(), SpoolConfig::default()).unwrap();
    let items = spool.peek("q", None, 100_000).unwrap();
    let present: Vec<u64> = items.iter().map(|i| i.id.0).collect();
    for (n, id) in &pushed {
        let acked_here = acked.contains(id);
        let found = items.iter().find(|i| i.id == ItemId(*id));
        if acked_here {
            assert!(found.is_none(), "acked item {id} came back");
        } else {
            let item = found.unwrap_or_else(|| panic!("durable item {id} lost"));
            assert_eq!(item.meta, json!({ "n": n }));
            assert_eq!(
                item.payload,
                Payload::Inline(vec![(n % 251) as u8; (*n as usize * 37) % 4000])
            );
        }
    }
    assert!(present.windows(2).all(|w| w[0] < w[1]), "queue order kept");
    // Items the child pushed after the last line read are whole too.
    for item in &items {
        let n = item.meta["n"].as_u64().unwrap();
        assert_eq!(
            item.payload,
            Payload::Inline(vec![(n % 251) as u8; (n as usize * 37) % 4000])
        );
    }
    let stats = spool.stats().unwrap();
    assert_eq!(stats.items, items.len() as u64);
    // The reopened spool keeps working.
    let next = spool
        .push("q", NewItem::new(json!({}), Payload::None))
        .unwrap();
    assert!(present.iter().all(|id| *id < next.0));
}
