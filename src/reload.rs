//! The reloader thread of `weir live`: on SIGHUP it reads the config file again and rebuilds the
//! rules, the reputation feeds and the exclusions; between signals it watches the feed files and
//! rebuilds the feeds when one changed. Everything is built here, off the packet path, and
//! published through [`SharedSets`]; workers pick it up between packets. A part that fails to
//! build (a config that no longer parses, rules that do not load, an unreadable feed, a bad
//! exclusion) is logged once and the part in use stays; the other parts still go through.
//!
//! Only `[detect]` (rules, classification, feeds), `[vars]` and `[exclusions]` take effect on
//! SIGHUP; the other sections need a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use weir_detect::engine::{CompiledRules, Matcher};
use weir_detect::rules::load_rule_files;

use crate::config::Config;
use crate::swap::SharedSets;
use crate::{CommonArgs, build};

/// How often the feed files' size, modification time and inode are compared with those of the
/// files loaded. A change is acted on once two polls in a row agree, so a feed still being written
/// is not loaded half-way.
pub const FEED_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Where the config comes from: the file given with `--config` (defaults without one) and the
/// `--rules` that replace its rule files.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
    pub rules_override: Vec<PathBuf>,
}

impl ConfigSource {
    pub fn of(common: &CommonArgs) -> ConfigSource {
        ConfigSource { path: common.config.clone(), rules_override: common.rules.clone() }
    }

    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.path {
            Some(p) => Config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?,
            None => Config::default(),
        };
        if !self.rules_override.is_empty() {
            config.detect.rules.clone_from(&self.rules_override);
        }
        Ok(config)
    }
}

/// Loads and compiles rule files for a swap: the Central Node's when given, else the config's.
/// Unlike the start of a run, a set where no rule loads is refused (a rule file broken while the
/// sensor runs must not silently turn detection off), and the matcher is prepared once here so a
/// set it cannot serve never reaches the workers.
pub fn compile_rules(config: &Config, central: Option<&[PathBuf]>) -> anyhow::Result<Option<Arc<CompiledRules>>> {
    let files = central.unwrap_or(&config.detect.rules);
    if files.is_empty() {
        return Ok(None);
    }
    let vars = crate::rules::vars(config);
    if let Some((name, e)) = vars.resolve().errors().first() {
        anyhow::bail!("[vars] {name}: {e}");
    }
    let classification = crate::rules::classification(config)?;
    let report = load_rule_files(files, &vars, &classification);
    if let Some(e) = report.file_errors.first() {
        anyhow::bail!("{}: {}", e.path.display(), e.reason);
    }
    if report.rules.is_empty() {
        anyhow::bail!("no rule loads ({} rejected)", report.rejected.len());
    }
    let summary = report.summary_line();
    let rules = CompiledRules::with_classification(report.rules, &classification);
    Matcher::new(&rules).map_err(|e| anyhow::anyhow!("cannot prepare the rule matcher: {e:?}"))?;
    eprintln!("weir: reload: {summary}");
    Ok(Some(Arc::new(rules)))
}

/// What identifies a feed file's content without reading it.
type FileStamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> FileStamp {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The feed files of a config, with their stamps when loaded and at the last poll.
struct FeedWatch {
    paths: Vec<PathBuf>,
    loaded: Vec<FileStamp>,
    last_poll: Vec<FileStamp>,
}

impl FeedWatch {
    fn new(config: &Config) -> FeedWatch {
        let paths: Vec<PathBuf> = config.detect.feeds.iter().map(|f| f.path.clone()).collect();
        let loaded: Vec<FileStamp> = paths.iter().map(|p| stamp(p)).collect();
        FeedWatch { paths, last_poll: loaded.clone(), loaded }
    }

    /// Whether a feed file differs from the one loaded and has stayed the same since the last poll.
    fn settled_change(&mut self) -> bool {
        let now: Vec<FileStamp> = self.paths.iter().map(|p| stamp(p)).collect();
        let settled = now == self.last_poll && now != self.loaded;
        self.last_poll = now;
        settled
    }

    /// The files as they are now count as loaded (tried, even when the load failed: a broken
    /// file is reported once, not at every poll).
    fn mark_loaded(&mut self) {
        self.loaded = self.paths.iter().map(|p| stamp(p)).collect();
        self.last_poll.clone_from(&self.loaded);
    }
}

enum Request {
    Reload,
    Stop,
}

/// The running reloader; dropping it stops the thread (and SIGHUP handling).
pub struct Reloader {
    requests: Sender<Request>,
    thread: Option<JoinHandle<()>>,
    signals: Option<signal_hook::iterator::Handle>,
}

impl Reloader {
    /// Asks for what SIGHUP does: everything rebuilt from the config file.
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn reload(&self) {
        let _ = self.requests.send(Request::Reload);
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        if let Some(signals) = self.signals.take() {
            signals.close();
        }
        let _ = self.requests.send(Request::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the reloader of `weir live`: SIGHUP and feed changes rebuild `shared`.
pub fn start(source: ConfigSource, shared: Arc<SharedSets>) -> anyhow::Result<Reloader> {
    let mut reloader = start_without_signals(source, shared)?;
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])
        .context("cannot install the SIGHUP handler")?;
    reloader.signals = Some(signals.handle());
    let requests = reloader.requests.clone();
    std::thread::Builder::new()
        .name("weir-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if requests.send(Request::Reload).is_err() {
                    break;
                }
            }
        })
        .context("cannot start the SIGHUP thread")?;
    Ok(reloader)
}

/// The reloader without a SIGHUP handler (tests ask with [`Reloader::reload`]).
fn start_without_signals(source: ConfigSource, shared: Arc<SharedSets>) -> anyhow::Result<Reloader> {
    let (tx, rx) = channel();
    let feeds = FeedWatch::new(&shared.lock().sources.config);
    let thread = std::thread::Builder::new()
        .name("weir-reload".into())
        .spawn(move || run(&source, &shared, feeds, &rx))
        .context("cannot start the reloader thread")?;
    Ok(Reloader { requests: tx, thread: Some(thread), signals: None })
}

fn run(source: &ConfigSource, shared: &SharedSets, mut feeds: FeedWatch, requests: &Receiver<Request>) {
    loop {
        match requests.recv_timeout(FEED_POLL_INTERVAL) {
            Ok(Request::Reload) => {
                eprintln!("weir: SIGHUP: reloading rules, feeds and exclusions");
                if let Some(config) = reload_all(source, shared) {
                    feeds = FeedWatch::new(&config);
                }
            }
            Ok(Request::Stop) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                if feeds.settled_change() {
                    reload_feeds(shared);
                    feeds.mark_loaded();
                }
            }
        }
    }
}

/// Rebuilds the feeds from the config in use.
fn reload_feeds(shared: &SharedSets) {
    let (config, central) = {
        let guard = shared.lock();
        (guard.sources.config.clone(), guard.sources.central_feeds())
    };
    eprintln!("weir: a feed file changed: reloading the reputation feeds");
    match build::reputation_with(&config, &central) {
        Ok(set) => {
            let entries = set.as_ref().map_or(0, |s| s.entry_count());
            shared.lock().publish(|s| s.reputation = set);
            eprintln!("weir: reputation feeds swapped in: {entries} entries");
        }
        Err(e) => eprintln!("weir: error: feeds not reloaded, the ones in use stay: {e:#}"),
    }
}

/// SIGHUP: the config file again, then each part; returns the config read.
fn reload_all(source: &ConfigSource, shared: &SharedSets) -> Option<Arc<Config>> {
    let config = match source.load() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("weir: error: config not reloaded, rules, feeds and exclusions in use stay: {e:#}");
            return None;
        }
    };
    // Built before taking the lock: loading feeds can take seconds, and the Central Node
    // follower must not wait that long to publish.
    let central_rules = shared.lock().sources.central_rules.clone();
    let rules = compile_rules(&config, central_rules.as_deref());
    let central_feeds = shared.lock().sources.central_feeds();
    let reputation = build::reputation_with(&config, &central_feeds);
    let mut guard = shared.lock();
    guard.sources.config = config.clone();
    guard.sources.local_exclusions = build::exclusion_lists(&config);
    let lists = guard.sources.merged_exclusions();
    let counters = guard.current().exclusions.as_ref().map(|e| e.counters().clone()).unwrap_or_default();
    let exclusions = build::exclusion_set(&lists, counters);
    if guard.sources.central_rules != central_rules {
        // The Central Node swapped rules in meanwhile: theirs are newer than what was built here.
        eprintln!("weir: reload: rules from the Central Node arrived meanwhile; they stay");
    }
    let rules = rules.map(|r| (guard.sources.central_rules == central_rules).then_some(r));
    guard.publish(|s| {
        match rules {
            Ok(Some(r)) => s.rules = r,
            Ok(None) => {}
            Err(e) => eprintln!("weir: error: rules not reloaded, the ones in use stay: {e:#}"),
        }
        match reputation {
            Ok(r) => s.reputation = r,
            Err(e) => eprintln!("weir: error: feeds not reloaded, the ones in use stay: {e:#}"),
        }
        match exclusions {
            Ok(x) => s.exclusions = x,
            Err(e) => eprintln!("weir: error: exclusions not reloaded, the ones in use stay: {e:#}"),
        }
    });
    eprintln!("weir: reload done");
    Some(config)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use weir_core::{FlowKey, IpProto, Vlans};

    use super::*;

    fn write_config(dir: &Path, feed: &Path, rules: &Path) -> PathBuf {
        let path = dir.join("weir.toml");
        std::fs::write(
            &path,
            format!(
                "[detect]\nrules = [\"{}\"]\n[[detect.feeds]]\nname = \"bad-ips\"\ncategory = \"malware\"\nformat = \"ips\"\npath = \"{}\"\n",
                rules.display(),
                feed.display()
            ),
        )
        .unwrap();
        path
    }

    /// Replaces a file the way feed updaters do: a new file renamed over the old one.
    fn replace(path: &Path, text: &str) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn listed(shared: &SharedSets, ip: &str) -> bool {
        let (_, sets) = shared.load();
        let Some(set) = sets.reputation.as_ref() else { return false };
        !set.lookup_ip(ip.parse().unwrap(), weir_detect::reputation::Seen::DestIp).is_empty()
    }

    /// Waits (bounded, generously) for the generation to pass `after`.
    fn wait_past(shared: &SharedSets, after: u64) -> u64 {
        let started = Instant::now();
        while shared.generation() <= after {
            assert!(started.elapsed() < Duration::from_secs(60), "nothing was published");
            std::thread::sleep(Duration::from_millis(50));
        }
        shared.generation()
    }

    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf, Arc<SharedSets>) {
        let dir = tempfile::tempdir().unwrap();
        let feed = dir.path().join("ips.txt");
        let rules = dir.path().join("local.rules");
        std::fs::write(&feed, "192.0.2.1\n").unwrap();
        std::fs::write(&rules, "alert udp any any -> any any (msg:\"one\"; content:\"alpha\"; sid:1;)\n").unwrap();
        let path = write_config(dir.path(), &feed, &rules);
        let config = ConfigSource { path: Some(path.clone()), ..ConfigSource::default() }.load().unwrap();
        let shared = build::shared_sets(&config).unwrap();
        (dir, path, feed, rules, shared)
    }

    fn sids(shared: &SharedSets) -> Vec<u32> {
        let (_, sets) = shared.load();
        let rules = sets.rules.as_ref().unwrap();
        (0..rules.len()).filter_map(|i| rules.rule(i)).map(|r| r.sid).collect()
    }

    #[test]
    fn a_rewritten_feed_file_is_swapped_in_and_a_broken_one_keeps_the_old_set() {
        let (_dir, path, feed, _rules, shared) = setup();
        assert!(listed(&shared, "192.0.2.1"));
        let reloader = start_without_signals(ConfigSource { path: Some(path), ..ConfigSource::default() }, shared.clone()).unwrap();
        let g = shared.generation();
        replace(&feed, "198.51.100.7\n");
        let g = wait_past(&shared, g);
        assert!(listed(&shared, "198.51.100.7"));
        assert!(!listed(&shared, "192.0.2.1"));

        // An unreadable feed (a directory where the file was) is refused; the set stays.
        std::fs::remove_file(&feed).unwrap();
        std::fs::create_dir(&feed).unwrap();
        std::thread::sleep(FEED_POLL_INTERVAL * 3);
        assert_eq!(shared.generation(), g, "nothing was published");
        assert!(listed(&shared, "198.51.100.7"));
        drop(reloader);
    }

    #[test]
    fn a_reload_request_rebuilds_rules_and_exclusions_and_keeps_parts_that_fail() {
        let (_dir, path, _feed, rules, shared) = setup();
        assert_eq!(sids(&shared), [1]);
        let reloader = start_without_signals(ConfigSource { path: Some(path.clone()), ..ConfigSource::default() }, shared.clone()).unwrap();

        std::fs::write(&rules, "alert udp any any -> any any (msg:\"two\"; content:\"beta\"; sid:2;)\n").unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("[exclusions]\nips = [\"10.9.0.0/16\"]\n");
        std::fs::write(&path, &text).unwrap();
        let g = shared.generation();
        reloader.reload();
        let g = wait_past(&shared, g);
        assert_eq!(sids(&shared), [2]);
        let key = FlowKey {
            src_ip: "10.9.1.1".parse().unwrap(),
            dst_ip: "10.1.1.1".parse().unwrap(),
            src_port: 1,
            dst_port: 2,
            proto: IpProto::UDP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        };
        assert!(shared.load().1.exclusions.as_ref().unwrap().excludes_flow(&key));

        // Rules that no longer load: the rule set stays, the rest of the reload goes on.
        std::fs::write(&rules, "this is not a rule\n").unwrap();
        std::fs::write(&path, text.replace("10.9.0.0/16", "10.8.0.0/16")).unwrap();
        reloader.reload();
        wait_past(&shared, g);
        assert_eq!(sids(&shared), [2]);
        let exclusions = shared.load().1.exclusions.clone().unwrap();
        assert!(!exclusions.excludes_flow(&key));
        assert!(exclusions.excludes_ip("10.8.0.1".parse().unwrap()));
        drop(reloader);
    }
}
