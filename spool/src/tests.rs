use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use super::*;

fn open(dir: &Path) -> Spool {
    Spool::open(dir, SpoolConfig::default()).unwrap()
}

fn meta(n: u64) -> NewItem {
    NewItem::new(json!({ "n": n }), Payload::None)
}

#[test]
fn the_spool_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let spool_dir = dir.path().join("spool");
    drop(open(&spool_dir));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&spool_dir) & 0o077, 0);
    assert_eq!(mode(&spool_dir.join(FILE_NAME)) & 0o077, 0);
}

#[test]
fn queues_are_ordered_and_independent() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a1 = s.push("a", meta(1)).unwrap();
    let b1 = s.push("b", meta(10)).unwrap();
    let a2 = s.push("a", meta(2)).unwrap();
    let a3 = s
        .push(
            "a",
            NewItem::new(json!({"n": 3}), Payload::Inline(b"abc".to_vec())),
        )
        .unwrap();
    assert!(a1 < a2 && a2 < a3);
    let a: Vec<u64> = s
        .peek("a", None, 10)
        .unwrap()
        .iter()
        .map(|i| i.meta["n"].as_u64().unwrap())
        .collect();
    assert_eq!(a, [1, 2, 3]);
    assert_eq!(s.peek("a", Some(a1), 1).unwrap()[0].id, a2);
    assert_eq!(
        s.peek("a", None, 10).unwrap()[2].payload,
        Payload::Inline(b"abc".to_vec())
    );
    assert_eq!(s.peek("b", None, 10).unwrap()[0].id, b1);
    assert_eq!(s.ids("a", None, 10).unwrap(), [a1, a2, a3]);
    assert_eq!(s.ids("a", Some(a1), 1).unwrap(), [a2]);
    assert!(s.ack("a", a2).unwrap());
    assert!(!s.ack("a", a2).unwrap(), "a second ack finds nothing");
    let ids: Vec<ItemId> = s
        .peek("a", None, 10)
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, [a1, a3]);
    let stats = s.stats().unwrap();
    assert_eq!(stats.items, 3);
    assert_eq!(stats.queues["a"].depth, 2);
    assert_eq!(stats.queues["b"].depth, 1);
}

#[test]
fn a_batch_commits_together_and_refuses_item_by_item() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spool::open(
        dir.path(),
        SpoolConfig {
            max_items: 3,
            ..SpoolConfig::default()
        },
    )
    .unwrap();
    let results = s
        .push_batch(vec![
            ("a".into(), meta(1)),
            ("bad/name".into(), meta(2)),
            ("b".into(), meta(3)),
            ("a".into(), meta(4)),
            ("a".into(), meta(5)),
        ])
        .unwrap();
    assert!(matches!(results[1], Err(SpoolError::BadQueueName)));
    assert!(matches!(results[4], Err(SpoolError::Full { .. })));
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    let a: Vec<u64> = s
        .peek("a", None, 10)
        .unwrap()
        .iter()
        .map(|i| i.meta["n"].as_u64().unwrap())
        .collect();
    assert_eq!(a, [1, 4]);
    assert_eq!(s.depth("b").unwrap(), 1);
    assert_eq!(s.stats().unwrap().rejected_full, 1);
}

#[test]
fn ack_many_removes_only_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = s.push("q", meta(1)).unwrap();
    let b = s.push("q", meta(2)).unwrap();
    let c = s.push("q", meta(3)).unwrap();
    s.ack("q", b).unwrap();
    assert_eq!(s.ack_many("q", &[a, b, ItemId(99)]).unwrap(), 1);
    assert_eq!(s.ids("q", None, 10).unwrap(), [c]);
    assert_eq!(s.stats().unwrap().items, 1);
}

#[test]
fn ids_are_never_reused_after_ack() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let a = s.push("q", meta(1)).unwrap();
    s.ack("q", a).unwrap();
    let b = s.push("q", meta(2)).unwrap();
    assert!(b > a);
}

#[test]
fn content_references_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let r = ContentRef {
        sha256: [0xab; 32],
        len: 12345,
    };
    let id = s
        .push("files", NewItem::new(json!({}), Payload::Content(r)))
        .unwrap();
    assert_eq!(
        s.get("files", id).unwrap().unwrap().payload,
        Payload::Content(r)
    );
}

#[test]
fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (id, other) = {
        let s = open(dir.path());
        let id = s
            .push(
                "q",
                NewItem::new(json!({"task": null}), Payload::Inline(vec![0, 1, 2])),
            )
            .unwrap();
        let other = s.push("q", meta(5)).unwrap();
        s.update_meta("q", id, json!({"task": 42})).unwrap();
        assert_eq!(s.record_attempt("q", id).unwrap(), 1);
        assert_eq!(s.record_attempt("q", id).unwrap(), 2);
        (id, other)
    };
    let s = open(dir.path());
    let item = s.get("q", id).unwrap().unwrap();
    assert_eq!(item.meta, json!({"task": 42}));
    assert_eq!(item.attempts, 2);
    assert_eq!(item.payload, Payload::Inline(vec![0, 1, 2]));
    assert!(s.push("q", meta(6)).unwrap() > other);
}

#[test]
fn a_full_spool_refuses_loudly_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spool::open(
        dir.path(),
        SpoolConfig {
            max_items: 2,
            ..SpoolConfig::default()
        },
    )
    .unwrap();
    let a = s.push("q", meta(1)).unwrap();
    s.push("q", meta(2)).unwrap();
    let err = s.push("q", meta(3)).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Full {
                used_items: 2,
                max_items: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.stats().unwrap().rejected_full, 1);
    assert_eq!(s.depth("q").unwrap(), 2);
    s.ack("q", a).unwrap();
    s.push("q", meta(3)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let s = Spool::open(
        dir.path(),
        SpoolConfig {
            max_bytes: 1000,
            ..SpoolConfig::default()
        },
    )
    .unwrap();
    s.push("q", NewItem::new(json!({}), Payload::Inline(vec![0; 800])))
        .unwrap();
    let err = s
        .push("q", NewItem::new(json!({}), Payload::Inline(vec![0; 300])))
        .unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::Full {
                max_bytes: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(s.peek("q", None, 10).unwrap().len(), 1);
}

#[test]
fn ack_and_push_moves_atomically_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let s = Spool::open(
        dir.path(),
        SpoolConfig {
            max_items: 1,
            ..SpoolConfig::default()
        },
    )
    .unwrap();
    let a = s.push("work", meta(1)).unwrap();
    // At the item cap, but the ack frees the slot the follow-up takes.
    let r = s.ack_and_push("work", a, "results", meta(2)).unwrap();
    assert_eq!(s.depth("work").unwrap(), 0);
    assert_eq!(s.get("results", r).unwrap().unwrap().meta, json!({"n": 2}));
    // Acknowledging an item that is gone pushes nothing.
    assert!(matches!(
        s.ack_and_push("work", a, "results", meta(3)),
        Err(SpoolError::NotFound { .. })
    ));
    assert_eq!(s.depth("results").unwrap(), 1);
}

#[test]
fn old_items_are_dropped_with_a_record_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let t0 = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let day = Duration::from_secs(86_400);
    let old = s.push_at("q", meta(1), t0).unwrap();
    let young = s.push_at("q", meta(2), t0 + 10 * day).unwrap();
    s.push_at("other", meta(3), t0 + day).unwrap();
    let stats = s.stats().unwrap();
    assert_eq!(stats.oldest_age(t0 + 2 * day), Some(2 * day));
    assert_eq!(stats.queues["q"].oldest, Some(t0));

    assert!(
        s.expire(t0 + 21 * day).unwrap().is_empty(),
        "exactly the retention is kept"
    );
    let dropped = s.expire(t0 + 22 * day + Duration::from_secs(1)).unwrap();
    let mut got: Vec<(String, u64)> = dropped
        .iter()
        .map(|d| (d.queue.clone(), d.meta["n"].as_u64().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, [("other".to_string(), 3), ("q".to_string(), 1)]);
    assert_eq!(dropped.iter().find(|d| d.queue == "q").unwrap().id, old);
    let stats = s.stats().unwrap();
    assert_eq!(stats.dropped_retention, 2);
    assert_eq!(stats.items, 1);
    assert_eq!(s.peek("q", None, 10).unwrap()[0].id, young);
}

#[test]
fn bad_inputs_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    assert!(matches!(s.push("", meta(1)), Err(SpoolError::BadQueueName)));
    assert!(matches!(
        s.push("a/b", meta(1)),
        Err(SpoolError::BadQueueName)
    ));
    let huge = NewItem::new(json!({"x": "y".repeat(MAX_META_BYTES)}), Payload::None);
    assert!(matches!(
        s.push("q", huge),
        Err(SpoolError::MetaTooLarge { .. })
    ));
    assert!(matches!(
        s.update_meta("q", ItemId(99), json!(1)),
        Err(SpoolError::NotFound { id: 99, .. })
    ));
    assert_eq!(s.stats().unwrap().items, 0);
}

#[derive(Clone, Debug)]
enum Op {
    Push(u8, u16),
    Ack(u8, usize),
    Update(u8, usize, u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..3, 0u16..2000).prop_map(|(q, n)| Op::Push(q, n)),
        (0u8..3, 0usize..8).prop_map(|(q, i)| Op::Ack(q, i)),
        (0u8..3, 0usize..8, 0u16..100).prop_map(|(q, i, n)| Op::Update(q, i, n)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The spool behaves like one ordered list per queue with a byte cap, across reopenings.
    #[test]
    fn matches_a_model_of_ordered_lists(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let config = SpoolConfig { max_items: 12, ..SpoolConfig::default() };
        let mut spool = Spool::open(dir.path(), config.clone()).unwrap();
        let mut model: BTreeMap<String, Vec<(ItemId, Value, usize)>> = BTreeMap::new();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Push(q, n) => {
                    let q = format!("q{q}");
                    let total: usize = model.values().map(Vec::len).sum();
                    let r = spool.push(&q, NewItem::new(json!(n), Payload::Inline(vec![n as u8; n as usize % 50])));
                    if total >= 12 {
                        prop_assert!(matches!(r, Err(SpoolError::Full { .. })), "expected Full");
                    } else {
                        model.entry(q).or_default().push((r.unwrap(), json!(n), n as usize % 50));
                    }
                }
                Op::Ack(q, i) => {
                    let q = format!("q{q}");
                    let list = model.entry(q.clone()).or_default();
                    if i < list.len() {
                        let (id, _, _) = list.remove(i);
                        prop_assert!(spool.ack(&q, id).unwrap());
                    }
                }
                Op::Update(q, i, n) => {
                    let q = format!("q{q}");
                    let list = model.entry(q.clone()).or_default();
                    if let Some(entry) = list.get_mut(i) {
                        spool.update_meta(&q, entry.0, json!({"u": n})).unwrap();
                        entry.1 = json!({"u": n});
                    }
                }
            }
            if step % 7 == 6 {
                drop(spool);
                spool = Spool::open(dir.path(), config.clone()).unwrap();
            }
            for (q, list) in &model {
                let got = spool.peek(q, None, 100).unwrap();
                let got: Vec<(ItemId, Value, usize)> = got
                    .into_iter()
                    .map(|i| {
                        let len = match i.payload { Payload::Inline(b) => b.len(), _ => usize::MAX };
                        (i.id, i.meta, len)
                    })
                    .collect();
                prop_assert_eq!(&got, list);
                prop_assert_eq!(spool.depth(q).unwrap(), list.len() as u64);
            }
            prop_assert_eq!(spool.stats().unwrap().items, model.values().map(Vec::len).sum::<usize>() as u64);
        }
    }
}
