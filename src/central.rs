//! `weir central`: the reference Central Node receiver (protocol v1, docs/protocol-v1.md) until
//! SIGINT or SIGTERM. Mutual TLS: the receiver's certificate and key, and the CA that signed the
//! sensors' certificates, default to DATA/tls/{cn.pem, cn.key, ca.pem}.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use weir_sensor_link::receiver::{self, ServerTls};

pub struct TlsFiles {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

pub fn run(listen: &str, data: &Path, tls: TlsFiles) -> anyhow::Result<()> {
    let listen: SocketAddr = listen.parse().with_context(|| format!("--listen {listen}: not an address:port"))?;
    let tls_dir = data.join("tls");
    let ca = tls.ca.unwrap_or_else(|| tls_dir.join("ca.pem"));
    let cert = tls.cert.unwrap_or_else(|| tls_dir.join("cn.pem"));
    let key = tls.key.unwrap_or_else(|| tls_dir.join("cn.key"));
    let server_tls = ServerTls::from_files(&ca, &cert, &key).map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the receiver's runtime")?;
    runtime.block_on(async {
        let serving = receiver::serve(listen, data, server_tls);
        eprintln!("weir: Central Node receiver on {listen}, data in {}", data.display());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot install the SIGTERM handler")?;
        tokio::select! {
            result = serving => result.map_err(|e| anyhow::anyhow!("{e}")),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = term.recv() => Ok(()),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Sensor side: what the Central Node sends down (policy, rules updates) swapped in at run time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use weir_detect::exclusions::ExclusionLists;
use weir_sensor_link::{AppliedUpdate, Exclusions, Link, LicenseState, Policy, UpdateKind};

use crate::swap::{Licensed, SharedSets};

/// How often the license is evaluated again without a new policy: expiry comes with time, not
/// with a message.
pub const LICENSE_CHECK_INTERVAL: Duration = Duration::from_secs(60);

/// The policy's exclusion lists under the `[exclusions]` key names.
fn exclusion_lists(e: &Exclusions) -> ExclusionLists {
    ExclusionLists {
        ips: e.ips.clone(),
        hosts: e.hosts.clone(),
        urls: e.urls.clone(),
        file_md5: e.md5.clone(),
        file_sha256: e.sha256.clone(),
        file_types: e.file_types.clone(),
        email_senders: e.email_senders.clone(),
        email_recipients: e.email_recipients.clone(),
        user_agents: e.user_agents.clone(),
    }
}

/// What a license state lets the sensor do. No license yet (no policy, or one without a
/// license): nothing is restricted. An unreadable expiry enables nothing.
pub fn licensed(state: &LicenseState) -> Licensed {
    match state {
        LicenseState::Unknown => Licensed::ALL,
        other => Licensed { sandbox: other.allows("sandbox"), reputation: other.allows("reputation") },
    }
}

/// What has been logged, so each change is logged once.
struct Follower {
    shared: Arc<SharedSets>,
    license_warning: Duration,
    license_said: Option<String>,
    rules_version: Option<String>,
    /// Versions of the reputation and IOC updates in use.
    feed_versions: [Option<String>; 2],
}

/// Follows the link's policy and rules updates for the rest of the run: what is in use when the
/// link starts (saved by an earlier run) is applied before this returns, later changes by a thread
/// that ends with the link.
pub fn follow(link: &Link, shared: Arc<SharedSets>, license_warning: Duration) -> anyhow::Result<()> {
    let mut policy = link.policy();
    let mut updates = link.updates();
    let mut f = Follower { shared, license_warning, license_said: None, rules_version: None, feed_versions: [None, None] };
    f.policy(policy.borrow_and_update().as_deref());
    f.updates(&updates.borrow_and_update());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the Central Node follower: {e}"))?;
    std::thread::Builder::new()
        .name("weir-central-follow".into())
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    tokio::select! {
                        changed = policy.changed() => {
                            if changed.is_err() { return; }
                            let p = policy.borrow_and_update().clone();
                            f.policy(p.as_deref());
                        }
                        changed = updates.changed() => {
                            if changed.is_err() { return; }
                            let u = updates.borrow_and_update().clone();
                            f.updates(&u);
                        }
                        () = tokio::time::sleep(LICENSE_CHECK_INTERVAL) => {
                            let p = policy.borrow().clone();
                            f.license(p.as_deref());
                        }
                    }
                }
            });
        })
        .map_err(|e| anyhow::anyhow!("cannot start the Central Node follower: {e}"))?;
    Ok(())
}

impl Follower {
    fn updates(&mut self, applied: &std::collections::BTreeMap<UpdateKind, AppliedUpdate>) {
        self.rules(applied.get(&UpdateKind::Rules));
        self.feeds(UpdateKind::Reputation, applied.get(&UpdateKind::Reputation));
        self.feeds(UpdateKind::Ioc, applied.get(&UpdateKind::Ioc));
    }

    /// Swaps in the feeds of an applied reputation or IOC update, loaded beside
    /// `[[detect.feeds]]`. A set that fails to load keeps the feeds in use.
    fn feeds(&mut self, kind: UpdateKind, update: Option<&AppliedUpdate>) {
        let Some(update) = update else { return };
        let slot = usize::from(kind == UpdateKind::Ioc);
        if self.feed_versions[slot].as_deref() == Some(update.version.as_str()) {
            return;
        }
        self.feed_versions[slot] = Some(update.version.clone());
        let (config, mut sources) = {
            let guard = self.shared.lock();
            (guard.sources.config.clone(), guard.sources.clone())
        };
        match kind {
            UpdateKind::Ioc => sources.central_ioc = update.files.clone(),
            _ => sources.central_reputation = update.files.clone(),
        }
        // Built before taking the lock: loading feeds can take seconds.
        match crate::build::reputation_with(&config, &sources.central_feeds()) {
            Ok(set) => {
                let entries = set.as_ref().map_or(0, |s| s.entry_count());
                let mut guard = self.shared.lock();
                match kind {
                    UpdateKind::Ioc => guard.sources.central_ioc = update.files.clone(),
                    _ => guard.sources.central_reputation = update.files.clone(),
                }
                guard.publish(|s| s.reputation = set);
                eprintln!("weir: Central Node {} update {} swapped in: {entries} entries in all feeds", kind.as_str(), update.version);
            }
            Err(e) => eprintln!(
                "weir: error: Central Node {} update {} not used, the feeds in use stay: {e:#}",
                kind.as_str(),
                update.version
            ),
        }
    }

    fn policy(&mut self, policy: Option<&Policy>) {
        let Some(policy) = policy else { return };
        self.exclusions(&exclusion_lists(&policy.exclusions));
        self.license(Some(policy));
    }

    /// Merges the policy's exclusions with `[exclusions]` and swaps the result in.
    fn exclusions(&mut self, central: &ExclusionLists) {
        let guard = self.shared.lock();
        if guard.sources.central_exclusions.as_ref() == Some(central) {
            return;
        }
        let mut sources = guard.sources.clone();
        sources.central_exclusions = Some(central.clone());
        let lists = sources.merged_exclusions();
        let counters = guard.current().exclusions.as_ref().map(|e| e.counters().clone()).unwrap_or_default();
        match crate::build::exclusion_set(&lists, counters) {
            Ok(set) => {
                let mut guard = guard;
                guard.sources.central_exclusions = Some(central.clone());
                guard.publish(|s| s.exclusions = set);
                eprintln!(
                    "weir: Central Node policy: exclusions swapped in ({} entries from the Central Node, merged with [exclusions])",
                    count(central)
                );
            }
            Err(e) => eprintln!("weir: error: Central Node exclusions refused, the ones in use stay: {e:#}"),
        }
    }

    /// Evaluates the license now; publishes and logs what changed.
    fn license(&mut self, policy: Option<&Policy>) {
        let state = LicenseState::evaluate(policy.and_then(|p| p.license.as_ref()), SystemTime::now(), self.license_warning);
        let allowed = licensed(&state);
        let guard = self.shared.lock();
        if guard.current().licensed != allowed {
            guard.publish(|s| s.licensed = allowed);
        }
        drop(guard);
        let on_off = |on: bool| if on { "on" } else { "off" };
        let effect = format!("sandbox dispatch {}, reputation {}", on_off(allowed.sandbox), on_off(allowed.reputation));
        let said = match &state {
            LicenseState::Unknown => return,
            LicenseState::Valid { expires, .. } => format!("license valid until {expires}: {effect}"),
            LicenseState::Expiring { expires, seconds_left, .. } => {
                format!("warning: license expires {expires} (in {} days): {effect}", seconds_left / 86_400)
            }
            LicenseState::Expired { expires, .. } => {
                format!("error: license expired {expires}: {effect}; capture, extraction and EVE go on")
            }
            LicenseState::Invalid { reason } => format!("error: license unreadable ({reason}): {effect}"),
        };
        if self.license_said.as_deref() != Some(said.as_str()) {
            eprintln!("weir: {said}");
            self.license_said = Some(said);
        }
    }

    /// Swaps in the rules of an applied update (the link verified it and the validator loaded
    /// it); they replace `[detect] rules`. A set that fails here keeps the rules in use.
    fn rules(&mut self, update: Option<&AppliedUpdate>) {
        let Some(update) = update else { return };
        if self.rules_version.as_deref() == Some(update.version.as_str()) {
            return;
        }
        self.rules_version = Some(update.version.clone());
        let files: Vec<std::path::PathBuf> =
            update.files.iter().filter(|p| p.extension().is_some_and(|x| x == "rules")).cloned().collect();
        let config = self.shared.lock().sources.config.clone();
        match crate::reload::compile_rules(&config, Some(&files)) {
            Ok(rules) => {
                let count = rules.as_ref().map_or(0, |r| r.len());
                let mut guard = self.shared.lock();
                guard.sources.central_rules = Some(files);
                guard.publish(|s| s.rules = rules);
                eprintln!("weir: Central Node rules update {} swapped in: {count} rules", update.version);
            }
            Err(e) => {
                eprintln!("weir: error: Central Node rules update {} not used, the rules in use stay: {e:#}", update.version)
            }
        }
    }
}

fn count(l: &ExclusionLists) -> usize {
    [
        &l.ips,
        &l.hosts,
        &l.urls,
        &l.file_md5,
        &l.file_sha256,
        &l.file_types,
        &l.email_senders,
        &l.email_recipients,
        &l.user_agents,
    ]
    .iter()
    .map(|v| v.len())
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_sensor_link::License;

    fn state(expires: &str, features: &[&str]) -> LicenseState {
        let license = License { id: "L-1".into(), expires: expires.into(), features: features.iter().map(|f| f.to_string()).collect() };
        LicenseState::evaluate(Some(&license), SystemTime::now(), Duration::from_secs(14 * 86_400))
    }

    #[test]
    fn the_license_gates_sandbox_and_reputation() {
        assert_eq!(licensed(&LicenseState::Unknown), Licensed::ALL);
        assert_eq!(licensed(&state("2999-01-01T00:00:00Z", &["sandbox", "reputation"])), Licensed::ALL);
        assert_eq!(
            licensed(&state("2999-01-01T00:00:00Z", &["sandbox"])),
            Licensed { sandbox: true, reputation: false }
        );
        let expired = Licensed { sandbox: false, reputation: false };
        assert_eq!(licensed(&state("2000-01-01T00:00:00Z", &["sandbox", "reputation"])), expired);
        assert_eq!(licensed(&state("next tuesday", &["sandbox"])), expired);
    }

    #[test]
    fn policy_lists_keep_their_meaning_under_config_names() {
        let e = Exclusions { md5: vec!["00".repeat(16)], sha256: vec!["11".repeat(32)], ..Exclusions::default() };
        let l = exclusion_lists(&e);
        assert_eq!(l.file_md5, e.md5);
        assert_eq!(l.file_sha256, e.sha256);
        assert_eq!(count(&l), 2);
    }

    #[test]
    fn central_reputation_and_ioc_updates_are_swapped_in_beside_the_local_feeds() {
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local.domains");
        std::fs::write(&local, "local.example\n").unwrap();
        let mut config = crate::config::Config::default();
        config.detect.feeds.push(crate::config::FeedSection {
            name: "local".into(),
            category: "malware".into(),
            format: crate::config::FeedFormat::Domains,
            path: local,
        });
        let shared = crate::build::shared_sets(&config).unwrap();
        let mut f = Follower {
            shared: shared.clone(),
            license_warning: Duration::ZERO,
            license_said: None,
            rules_version: None,
            feed_versions: [None, None],
        };
        let entries = |s: &SharedSets| s.load().1.reputation.as_ref().map_or(0, |r| r.entry_count());
        assert_eq!(entries(&shared), 1);
        let update = |version: &str, name: &str, text: &str| {
            let d = dir.path().join(version);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(name), text).unwrap();
            AppliedUpdate { version: version.into(), dir: d.clone(), files: vec![d.join(name)] }
        };
        f.feeds(UpdateKind::Reputation, Some(&update("r1", "cn.domains", "a.example\nb.example\n")));
        assert_eq!(entries(&shared), 3);
        f.feeds(UpdateKind::Ioc, Some(&update("i1", "cn.hashes", &format!("{}\n", "ab".repeat(32)))));
        assert_eq!(entries(&shared), 4);
        // A file the sensor cannot read as a feed keeps the feeds in use.
        f.feeds(UpdateKind::Reputation, Some(&update("r2", "cn.exe", "MZ")));
        assert_eq!(entries(&shared), 4);
        // A newer good one replaces the reputation update's files; the IOC ones stay.
        f.feeds(UpdateKind::Reputation, Some(&update("r3", "cn.urls", "http://c.example/x\n")));
        assert_eq!(entries(&shared), 3);
    }
}
