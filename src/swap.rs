//! What is replaced while capture runs: the compiled rules, the reputation feeds, the scan
//! exclusions and what the license allows. Workers read one published snapshot ([`Sets`]) and
//! notice a newer one with a single atomic load; the reloader thread (SIGHUP, changed feed
//! files) and the Central Node follower build new parts off the packet path and publish them.
//!
//! A snapshot is immutable and its parts are `Arc`s, so publishing one changed part copies a few
//! pointers and the parts left alone stay shared (a worker compares them with `Arc::ptr_eq` to
//! rebuild only what changed).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use weir_detect::engine::CompiledRules;
use weir_detect::exclusions::{ExclusionLists, ExclusionSet};
use weir_detect::reputation::ReputationSet;

use crate::config::Config;

/// A value workers read and a reloader replaces while they run. Readers first compare
/// [`Swappable::generation`] (one atomic load) with the generation they hold, and take the lock
/// only when it moved.
pub struct Swappable<T> {
    current: RwLock<Arc<T>>,
    generation: AtomicU64,
}

impl<T> Swappable<T> {
    /// Starts at generation 1, so a reader holding 0 takes the first value.
    pub fn new(value: T) -> Swappable<T> {
        Swappable { current: RwLock::new(Arc::new(value)), generation: AtomicU64::new(1) }
    }

    /// Bumped by every [`Swappable::store`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current value with its generation. The generation moves under the write lock, so the
    /// pair is consistent.
    pub fn load(&self) -> (u64, Arc<T>) {
        // A writer that panicked left a complete value behind (it only assigns an Arc).
        let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
        (self.generation.load(Ordering::Acquire), guard.clone())
    }

    /// Replaces the value; returns the new generation.
    pub fn store(&self, value: T) -> u64 {
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *guard = Arc::new(value);
        self.generation.fetch_add(1, Ordering::AcqRel) + 1
    }
}

/// What the license lets the sensor do. Without a Central Node policy (or one without a
/// license) nothing is restricted: licensing is the Central Node's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Licensed {
    /// Files and URLs are offered to the sandbox.
    pub sandbox: bool,
    /// Artifacts and addresses are checked against the reputation feeds.
    pub reputation: bool,
}

impl Licensed {
    pub const ALL: Licensed = Licensed { sandbox: true, reputation: true };
}

/// One published snapshot of everything swappable.
#[derive(Clone)]
pub struct Sets {
    pub rules: Option<Arc<CompiledRules>>,
    pub reputation: Option<Arc<ReputationSet>>,
    pub exclusions: Option<Arc<ExclusionSet>>,
    pub licensed: Licensed,
}

impl Sets {
    /// The reputation feeds as workers use them: none when the license does not allow them.
    pub fn reputation_in_use(&self) -> Option<&Arc<ReputationSet>> {
        self.reputation.as_ref().filter(|_| self.licensed.reputation)
    }
}

/// The inputs the exclusions and rules are rebuilt from, kept so that either source (the config
/// file on SIGHUP, the Central Node's policy and updates) can change without losing the other.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The config as last read (rules are compiled with its `[vars]` and classification).
    pub config: Arc<Config>,
    /// `[exclusions]` as last read.
    pub local_exclusions: ExclusionLists,
    /// The Central Node policy's exclusions, once one arrived.
    pub central_exclusions: Option<ExclusionLists>,
    /// The rule files of the Central Node's applied rules update: when present they replace
    /// `[detect] rules` (the Central Node owns the rule database of the sensors it manages).
    pub central_rules: Option<Vec<PathBuf>>,
    /// The feed files of the Central Node's applied reputation and IOC updates: loaded beside
    /// `[[detect.feeds]]`.
    pub central_reputation: Vec<PathBuf>,
    pub central_ioc: Vec<PathBuf>,
}

impl Sources {
    /// Every Central Node feed file in use.
    pub fn central_feeds(&self) -> Vec<PathBuf> {
        self.central_reputation.iter().chain(&self.central_ioc).cloned().collect()
    }

    /// Local lists first, then the Central Node's entries not listed locally.
    pub fn merged_exclusions(&self) -> ExclusionLists {
        let mut lists = self.local_exclusions.clone();
        if let Some(central) = &self.central_exclusions {
            lists.merge(central);
        }
        lists
    }
}

/// The sets every worker of a run shares (each worker holds the same `Arc<SharedSets>` and swaps
/// on its own), with the inputs they were built from.
pub struct SharedSets {
    sets: Swappable<Sets>,
    /// Also serialises publishers: a rebuild reads the sources and publishes under this lock, so
    /// two rebuilds never interleave.
    sources: Mutex<Sources>,
}

impl SharedSets {
    pub fn new(sets: Sets, sources: Sources) -> SharedSets {
        SharedSets { sets: Swappable::new(sets), sources: Mutex::new(sources) }
    }

    /// One atomic load: has anything been published since `generation`?
    pub fn generation(&self) -> u64 {
        self.sets.generation()
    }

    pub fn load(&self) -> (u64, Arc<Sets>) {
        self.sets.load()
    }

    /// The sources, locked; publish through [`SourcesGuard::publish`] while holding them.
    pub fn lock(&self) -> SourcesGuard<'_> {
        SourcesGuard { shared: self, sources: self.sources.lock().unwrap_or_else(PoisonError::into_inner) }
    }
}

/// The locked sources of a [`SharedSets`]; the only way to publish.
pub struct SourcesGuard<'a> {
    shared: &'a SharedSets,
    pub sources: MutexGuard<'a, Sources>,
}

impl SourcesGuard<'_> {
    /// The snapshot in use.
    pub fn current(&self) -> Arc<Sets> {
        self.shared.sets.load().1
    }

    /// Publishes the current snapshot changed by `change`; returns the new generation.
    pub fn publish(&self, change: impl FnOnce(&mut Sets)) -> u64 {
        let mut next = Sets::clone(&self.current());
        change(&mut next);
        self.shared.sets.store(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty() -> Sets {
        Sets { rules: None, reputation: None, exclusions: None, licensed: Licensed::ALL }
    }

    #[test]
    fn a_store_moves_the_generation_with_the_value() {
        let s = Swappable::new(5u32);
        assert_eq!(s.load(), (1, Arc::new(5)));
        assert_eq!(s.store(7), 2);
        assert_eq!(s.generation(), 2);
        assert_eq!(*s.load().1, 7);
    }

    #[test]
    fn publishing_one_part_keeps_the_others_shared() {
        let set = Arc::new(ExclusionSet::empty());
        let shared = SharedSets::new(Sets { exclusions: Some(set.clone()), ..empty() }, Sources::default());
        let (g0, before) = shared.load();
        let g1 = shared.lock().publish(|s| s.licensed.reputation = false);
        assert_eq!(g1, g0 + 1);
        let (_, after) = shared.load();
        assert!(Arc::ptr_eq(after.exclusions.as_ref().unwrap(), &set));
        assert!(before.licensed.reputation);
        assert!(!after.licensed.reputation);
    }

    #[test]
    fn readers_on_other_threads_see_every_published_value_in_order() {
        let shared = Arc::new(Swappable::new(0u64));
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let (mut seen_gen, mut seen) = (0, 0);
                while seen < 1000 {
                    if shared.generation() != seen_gen {
                        let (g, v) = shared.load();
                        assert!(*v >= seen, "values go forward");
                        assert_eq!(g, *v + 1, "generation and value are one pair");
                        (seen_gen, seen) = (g, *v);
                    }
                    std::thread::yield_now();
                }
                seen
            })
        };
        for v in 1..=1000 {
            shared.store(v);
        }
        assert_eq!(reader.join().unwrap(), 1000);
    }

    #[test]
    fn reputation_is_not_used_without_the_license() {
        let set = Arc::new(ReputationSet::load(&[]).0);
        let sets = Sets { reputation: Some(set), ..empty() };
        assert!(sets.reputation_in_use().is_some());
        let unlicensed = Sets { licensed: Licensed { sandbox: true, reputation: false }, ..sets };
        assert!(unlicensed.reputation_in_use().is_none());
        assert!(unlicensed.reputation.is_some(), "kept for when the license comes back");
    }

    /// A worker takes swapped rules between packets and keeps each flow's detection state: a
    /// flowbit set under the old rules is seen by the new ones.
    #[test]
    fn a_worker_swaps_rules_mid_flow_and_keeps_flow_state() {
        use etherparse::PacketBuilder;
        use weir_core::{LinkType, Timestamp};

        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::Config::default();
        let compile = |text: &str| {
            let path = dir.path().join("r.rules");
            std::fs::write(&path, text).unwrap();
            crate::reload::compile_rules(&config, Some(&[path])).unwrap()
        };
        let old = compile(
            "alert udp any any -> any any (msg:\"a\"; content:\"alpha\"; flowbits:set,seen; sid:1;)\n",
        );
        let shared = Arc::new(SharedSets::new(Sets { rules: old, ..empty() }, Sources::default()));
        let eve = crate::output::EveWriter::create(dir.path(), true, &[]).unwrap();
        let run = crate::build::RunShared { sets: shared.clone(), sandbox: None, central: None, range_joiner: Default::default() };
        let mut worker = crate::build::worker_for(&config, dir.path(), eve, &run, false).unwrap();
        let frame = |sport: u16, payload: &[u8]| {
            let mut out = Vec::new();
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .udp(sport, 53_000)
                .write(&mut out, payload)
                .unwrap();
            out
        };
        let t = |s: u64| Timestamp::from_secs_nanos(1_700_000_000 + s, 0);
        worker.process(1, t(0), LinkType::ETHERNET, &frame(1000, b"alpha")).unwrap();
        assert_eq!(worker.stats().alerts, 1);

        let new = compile(
            "alert udp any any -> any any (msg:\"b\"; content:\"beta\"; flowbits:isset,seen; sid:2;)\n",
        );
        shared.lock().publish(|s| s.rules = new);
        // An idle tick is one of the worker's looks at the generation.
        worker.advance(t(1)).unwrap();
        worker.process(2, t(2), LinkType::ETHERNET, &frame(1000, b"beta alpha")).unwrap();
        worker.process(3, t(3), LinkType::ETHERNET, &frame(2000, b"beta")).unwrap();
        worker.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("eve.json")).unwrap();
        let alerts: Vec<(u64, u64)> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|e| e["event_type"] == "alert")
            .map(|e| (e["src_port"].as_u64().unwrap(), e["alert"]["signature_id"].as_u64().unwrap()))
            .collect();
        // sid 1 is gone (its content is in the second packet), sid 2 sees the bit of flow 1000
        // only: flow 2000 never had it set.
        assert_eq!(alerts, [(1000, 1), (1000, 2)]);
    }

    #[test]
    fn central_exclusions_are_added_after_the_local_ones() {
        let sources = Sources {
            local_exclusions: ExclusionLists { hosts: vec!["a.example".into()], ..ExclusionLists::default() },
            central_exclusions: Some(ExclusionLists {
                hosts: vec!["b.example".into(), "a.example".into()],
                ips: vec!["10.0.0.0/8".into()],
                ..ExclusionLists::default()
            }),
            ..Sources::default()
        };
        let merged = sources.merged_exclusions();
        assert_eq!(merged.hosts, ["a.example", "b.example"]);
        assert_eq!(merged.ips, ["10.0.0.0/8"]);
    }
}
