//! Maps the config file's sections onto each stage crate's own config and builds the stages.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use weir_decode::{DecodeConfig, Decoder};
use weir_extract::applayer::AppLayerConfig;
use weir_extract::files::{FileSink, Filestore, NullSink};
use weir_extract::mailstore::{MailSink, MailStore, NullMailSink};
use weir_extract::mime::{HeldMessageBudget, MimeConfig};
use weir_extract::smb::SmbConfig;
use weir_extract::http::{HttpConfig, SharedRangeJoiner};
use weir_flow::{FlowConfig, FlowTable, Timeouts, WhenFull};
use weir_reassembly::StreamConfig;

use crate::config::{
    ChecksumValidation, Config, ExceptionCap, ExceptionPolicyName, FeedFormat, MailSection, FragPolicy, SandboxApi, TimeoutSection,
};
use weir_detect::engine::CompiledRules;
use weir_detect::exclusions::{ExclusionCounters, ExclusionLists, ExclusionSet};
use weir_detect::reputation::{FeedFormat as ReputationFormat, FeedSpec, ReputationSet};

use crate::output::EveWriter;
use crate::swap::{Licensed, Sets, SharedSets, Sources};
use crate::exception::ExceptionPolicies;
use crate::worker::{Worker, WorkerConfig};

fn usize_of(bytes: u64) -> usize {
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

pub fn decode_config(c: &Config, live: bool) -> DecodeConfig {
    let mut d = DecodeConfig::default();
    d.vxlan_ports = c.capture.vxlan_ports.clone();
    d.checksum_validation = match c.capture.checksum_validation {
        ChecksumValidation::Auto => live,
        ChecksumValidation::On => true,
        ChecksumValidation::Off => false,
    };
    d.max_tunnel_depth = c.capture.max_tunnel_depth;
    d.defrag.memcap = usize::try_from(c.capture.defrag_memcap.0).unwrap_or(usize::MAX);
    d.defrag.timeout_secs = c.capture.defrag_timeout;
    d.defrag.max_fragments = c.capture.defrag_max_fragments;
    d.defrag.policy = match c.capture.defrag_policy {
        FragPolicy::First => weir_decode::OverlapPolicy::First,
        FragPolicy::Last => weir_decode::OverlapPolicy::Last,
        FragPolicy::Bsd => weir_decode::OverlapPolicy::Bsd,
        FragPolicy::BsdRight => weir_decode::OverlapPolicy::BsdRight,
        FragPolicy::Linux => weir_decode::OverlapPolicy::Linux,
        FragPolicy::Windows => weir_decode::OverlapPolicy::Windows,
        FragPolicy::Solaris => weir_decode::OverlapPolicy::Solaris,
    };
    d
}

pub fn stream_config(c: &Config) -> StreamConfig {
    let mut s = StreamConfig::default();
    s.midstream = c.stream.midstream;
    s.async_oneside = c.stream.async_oneside;
    s.depth = c.stream.depth.0;
    s.max_queued_segments = c.stream.max_queued_segments;
    s.overlap_policy = c.stream.overlap_policy.to_reassembly();
    s.inline = c.stream.inline;
    // A table that does not parse was already reported by the config's validation.
    s.host_os_policy = c.host_os_policy().unwrap_or_default();
    s
}

pub fn app_layer_config(c: &Config) -> AppLayerConfig {
    let h = &c.app_layer.http;
    let http = h.enabled.then(|| HttpConfig {
        request_body_limit: usize_of(h.request_body_limit.0),
        response_body_limit: usize_of(h.response_body_limit.0),
        decompress_max_bytes: h.decompress_limit.0,
        log_headers: h.log_headers,
        // A new budget per call: each worker builds its own config.
        held_header_budget: HeldMessageBudget::new(usize_of(h.header_memcap.0)),
        ..HttpConfig::default()
    });
    AppLayerConfig {
        http,
        dns: c.app_layer.dns.enabled,
        tls: c.app_layer.tls.enabled,
        smtp: mime_config(&c.app_layer.smtp),
        pop3: mime_config(&c.app_layer.pop3),
        imap: mime_config(&c.app_layer.imap),
        ftp: c.app_layer.ftp.enabled,
        smb: c.app_layer.smb.enabled.then(SmbConfig::default),
    }
}

/// One mail protocol's parser settings; `None` when it is off. A new budget per call: each
/// worker builds its own config.
fn mime_config(section: &MailSection) -> Option<MimeConfig> {
    section.enabled.then(|| MimeConfig {
        held_budget: HeldMessageBudget::new(usize_of(section.message_memcap.0)),
        ..MimeConfig::default()
    })
}

fn timeouts(base: Timeouts, section: Option<TimeoutSection>) -> Timeouts {
    match section {
        None => base,
        Some(s) => Timeouts {
            new: s.new.unwrap_or(base.new),
            established: s.established.unwrap_or(base.established),
            closed: s.closed.unwrap_or(base.closed),
        },
    }
}

/// Under `[exception_policy] flow_table = "bypass"`, how long the least recently seen flow must
/// have been idle to give way to a new one in a full table.
const FULL_TABLE_GIVE_WAY_IDLE: std::time::Duration = std::time::Duration::from_secs(30);

pub fn flow_config(c: &Config) -> FlowConfig {
    let base = FlowConfig::default();
    let t = &c.stream.timeouts;
    let when_full = match c.exception_policy.policy(ExceptionCap::FlowTable) {
        ExceptionPolicyName::Bypass => WhenFull::RefuseNew { idle: FULL_TABLE_GIVE_WAY_IDLE },
        _ => WhenFull::EvictLeastRecent,
    };
    FlowConfig {
        max_flows: c.stream.max_flows,
        when_full,
        tcp: timeouts(base.tcp, t.tcp),
        udp: timeouts(base.udp, t.udp),
        icmp: timeouts(base.icmp, t.icmp),
        other: timeouts(base.other, t.other),
    }
}

/// Starts sandbox dispatch when `[sandbox]` is enabled. Files are read back from the filestore,
/// so dispatch needs `[output] filestore` on.
pub fn sandbox(c: &Config, out: &Path) -> anyhow::Result<Option<weir_sandbox_client::Dispatcher>> {
    let s = &c.sandbox;
    if !s.enabled {
        return Ok(None);
    }
    if !c.output.filestore {
        anyhow::bail!("[sandbox] enabled needs [output] filestore = true: submitted files are read from it");
    }
    let mut cfg = weir_sandbox_client::SandboxConfig::default();
    cfg.enabled = true;
    cfg.api = match s.api {
        SandboxApi::Cape => weir_sandbox_client::ApiKind::Cape,
        SandboxApi::Cuckoo => weir_sandbox_client::ApiKind::Cuckoo,
    };
    if let Some(url) = &s.url {
        cfg.url = url.clone();
    }
    if let Some(token) = &s.token {
        cfg.token = token.clone();
    }
    cfg.ca = s.ca.clone();
    cfg.spool_dir = s.spool_dir.clone();
    if !s.file_types.is_empty() {
        cfg.types = s.file_types.clone();
    }
    cfg.min_size = s.min_file_size.0;
    cfg.max_size = s.max_file_size.0;
    cfg.urls_from = s.url_sources.clone();
    cfg.concurrency = s.concurrency;
    cfg.submissions_per_minute = s.rate_per_minute;
    cfg.retention_days = u64::from(s.retention_days);
    cfg.poll_interval_ms = s.poll_interval_ms;
    let problems = cfg.validate();
    if !problems.is_empty() {
        anyhow::bail!("[sandbox] {}", problems.join("; "));
    }
    let content = std::sync::Arc::new(weir_spool::Filestore::new(out.join("filestore")));
    let dispatcher = weir_sandbox_client::Dispatcher::start(cfg, content, std::sync::Arc::new(weir_sandbox_client::NoExclusions))
        .map_err(|e| anyhow::anyhow!("cannot start sandbox dispatch: {e}"))?;
    Ok(Some(dispatcher))
}

/// Starts the Central Node link when `[central]` is enabled. Rule updates it receives are
/// accepted only when their rule files load.
pub fn central(c: &Config, out: &Path, shared: &Arc<SharedSets>) -> anyhow::Result<Option<weir_sensor_link::Link>> {
    let s = &c.central;
    if !s.enabled {
        return Ok(None);
    }
    // validate() made sure these are set when enabled.
    let (Some(url), Some(sensor_id), Some(ca), Some(cert), Some(key)) = (&s.url, &s.sensor_id, &s.ca, &s.cert, &s.key) else {
        anyhow::bail!("[central] enabled needs url, sensor_id, ca, cert and key");
    };
    let tls = weir_sensor_link::ClientTls::from_files(ca, cert, key).map_err(|e| anyhow::anyhow!("[central] {e}"))?;
    let mut cfg = weir_sensor_link::LinkConfig::new(url, sensor_id, tls, &s.spool_dir);
    cfg.token = s.token.clone();
    cfg.retention_days = u64::from(s.retention_days);
    cfg.spool_max_bytes = s.spool_max.0;
    cfg.batch_max_events = s.batch_events;
    cfg.batch_max_age = std::time::Duration::from_secs(s.batch_age);
    cfg.poll_interval = std::time::Duration::from_secs(s.poll_interval);
    let license_warning = cfg.license_warning;
    let vars = crate::rules::vars(c);
    let classification = crate::rules::classification(c)?;
    let validator: weir_sensor_link::UpdateValidator = Arc::new(move |kind, dir: &Path| {
        if kind != weir_sensor_link::UpdateKind::Rules {
            let verdict = validate_feed_update(dir);
            if let Err(reason) = &verdict {
                eprintln!("weir: error: Central Node {} update rejected: {reason}; the feeds in use stay", kind.as_str());
            }
            return verdict;
        }
        let files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| e.to_string())?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rules"))
            .collect();
        let report = weir_detect::rules::load_rule_files(&files, &vars, &classification);
        let verdict = match report.file_errors.first() {
            Some(e) => Err(format!("{}: {}", e.path.display(), e.reason)),
            None if report.rules.is_empty() => Err("the update holds no rule that loads".into()),
            None => Ok(()),
        };
        if let Err(reason) = &verdict {
            eprintln!("weir: error: Central Node rules update rejected: {reason}; the rules in use stay");
        }
        verdict
    });
    let link = weir_sensor_link::Link::start(
        cfg,
        Arc::new(weir_spool::Filestore::new(out.join("filestore"))),
        Arc::new(weir_sensor_link::MailStore::new(out.join("mail"))),
        validator,
    )
    .map_err(|e| anyhow::anyhow!("cannot start the Central Node link: {e}"))?;
    crate::central::follow(&link, shared.clone(), license_warning)?;
    Ok(Some(link))
}

/// The scan exclusions of `[exclusions]`; `None` when the section lists nothing. Every bad entry
/// is reported at once.
pub fn exclusions(c: &Config) -> anyhow::Result<Option<ExclusionSet>> {
    let lists = exclusion_lists(c);
    if lists == ExclusionLists::default() {
        return Ok(None);
    }
    match ExclusionSet::build(&lists) {
        Ok(set) => Ok(Some(set)),
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}", lines.join("; "))
        }
    }
}

/// The lists of `[exclusions]`.
pub fn exclusion_lists(c: &Config) -> ExclusionLists {
    let e = &c.exclusions;
    ExclusionLists {
        ips: e.ips.clone(),
        hosts: e.hosts.clone(),
        urls: e.urls.clone(),
        file_md5: e.file_md5.clone(),
        file_sha256: e.file_sha256.clone(),
        file_types: e.file_types.clone(),
        email_senders: e.email_senders.clone(),
        email_recipients: e.email_recipients.clone(),
        user_agents: e.user_agents.clone(),
    }
}

/// Builds merged exclusion lists, counting into `counters` (those of the set it replaces, so the
/// counts go on); `None` when nothing is listed. Every bad entry is reported at once.
pub fn exclusion_set(lists: &ExclusionLists, counters: Arc<ExclusionCounters>) -> anyhow::Result<Option<Arc<ExclusionSet>>> {
    if *lists == ExclusionLists::default() {
        return Ok(None);
    }
    match ExclusionSet::build_with_counters(lists, counters) {
        Ok(set) => Ok(Some(Arc::new(set))),
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::bail!("{}", lines.join("; "))
        }
    }
}

/// Rules, feeds and exclusions of a run, loaded once and shared by its workers (and swapped by
/// the reloader and the Central Node link).
pub fn shared_sets(c: &Config) -> anyhow::Result<Arc<SharedSets>> {
    let sources = Sources { config: Arc::new(c.clone()), local_exclusions: exclusion_lists(c), ..Sources::default() };
    let sets = Sets {
        rules: rules(c)?,
        reputation: reputation(c)?,
        exclusions: exclusion_set(&sources.local_exclusions, Arc::default())?,
        licensed: Licensed::ALL,
    };
    Ok(Arc::new(SharedSets::new(sets, sources)))
}

/// Loads the reputation feeds and hash IOC lists of `[[detect.feeds]]`; `None` when there are
/// none. A feed that cannot be read stops the run; refused lines are counted and reported.
pub fn reputation(c: &Config) -> anyhow::Result<Option<Arc<ReputationSet>>> {
    reputation_with(c, &[])
}

/// A reputation or IOC update is accepted when every file is a feed that loads with at least one
/// entry.
fn validate_feed_update(dir: &Path) -> Result<(), String> {
    let files: Vec<std::path::PathBuf> = std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    if files.is_empty() {
        return Err("the update holds no file".into());
    }
    let specs = files.iter().map(|p| central_feed_spec(p)).collect::<anyhow::Result<Vec<_>>>().map_err(|e| e.to_string())?;
    let (_, reports) = ReputationSet::load(&specs);
    for report in &reports {
        if let Some(e) = &report.error {
            return Err(format!("{}: {e}", report.path.display()));
        }
    }
    if reports.iter().all(|r| r.loaded == 0) {
        return Err("no entry loads from the update's files".into());
    }
    Ok(())
}

/// The feed a Central Node reputation or IOC update file is, told by its extension (protocol
/// v1): `.csv` URLhaus CSV, `.intel` Zeek intel, `.domains`, `.urls`, `.ips`, `.hashes` lists.
/// Its name is `central:` and the file's name, its category `central`.
pub fn central_feed_spec(path: &Path) -> anyhow::Result<FeedSpec> {
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("csv") => ReputationFormat::UrlhausCsv,
        Some("intel") => ReputationFormat::ZeekIntel,
        Some("domains") => ReputationFormat::Domains,
        Some("urls") => ReputationFormat::Urls,
        Some("ips") => ReputationFormat::Ips,
        Some("hashes") => ReputationFormat::Hashes,
        _ => anyhow::bail!("{}: not a feed file (.csv, .intel, .domains, .urls, .ips or .hashes)", path.display()),
    };
    let name = format!("central:{}", path.file_name().map_or_else(String::new, |s| s.to_string_lossy().into_owned()));
    Ok(FeedSpec { name, category: "central".into(), format, path: path.to_path_buf() })
}

/// `[[detect.feeds]]` plus the feed files of the Central Node's applied reputation and IOC
/// updates; `None` when there is none at all.
pub fn reputation_with(c: &Config, central: &[std::path::PathBuf]) -> anyhow::Result<Option<Arc<ReputationSet>>> {
    if c.detect.feeds.is_empty() && central.is_empty() {
        return Ok(None);
    }
    let mut specs: Vec<FeedSpec> = c
        .detect
        .feeds
        .iter()
        .map(|f| FeedSpec {
            name: f.name.clone(),
            category: f.category.clone(),
            format: match f.format {
                FeedFormat::UrlhausCsv => ReputationFormat::UrlhausCsv,
                FeedFormat::ZeekIntel => ReputationFormat::ZeekIntel,
                FeedFormat::Domains => ReputationFormat::Domains,
                FeedFormat::Urls => ReputationFormat::Urls,
                FeedFormat::Ips => ReputationFormat::Ips,
                FeedFormat::Hashes => ReputationFormat::Hashes,
            },
            path: f.path.clone(),
        })
        .collect();
    for path in central {
        let mut spec = central_feed_spec(path)?;
        // Two updates may carry files of one name; feed names must differ.
        let base = spec.name.clone();
        let mut n = 1;
        while specs.iter().any(|s| s.name == spec.name) {
            n += 1;
            spec.name = format!("{base}#{n}");
        }
        specs.push(spec);
    }
    let (set, reports) = ReputationSet::load(&specs);
    for report in &reports {
        if let Some(e) = &report.error {
            anyhow::bail!("{}: {e}", report.path.display());
        }
        eprintln!("weir: feed {}", report.summary());
    }
    Ok(Some(Arc::new(set)))
}

/// Loads and compiles the rules a run uses; `None` when no rule file is named.
pub fn rules(c: &Config) -> anyhow::Result<Option<Arc<CompiledRules>>> {
    if c.detect.rules.is_empty() {
        return Ok(None);
    }
    let report = crate::rules::load_for_run(c)?;
    let classification = crate::rules::classification(c)?;
    eprintln!("weir: {}", report.summary_line());
    let compiled = CompiledRules::with_classification(report.rules, &classification);
    eprintln!("weir: {}", crate::rules::compile_summary(&compiled));
    Ok(Some(Arc::new(compiled)))
}

/// What every worker of a run shares, built once: the swappable rules, feeds and exclusions,
/// the sandbox dispatcher, the Central Node link and the HTTP 206 range joiner.
pub struct RunShared {
    pub sets: Arc<SharedSets>,
    pub sandbox: Option<Arc<weir_sandbox_client::Dispatcher>>,
    pub central: Option<Arc<weir_sensor_link::Link>>,
    pub range_joiner: SharedRangeJoiner,
}

pub fn run_shared(c: &Config, out: &Path) -> anyhow::Result<RunShared> {
    let sets = shared_sets(c)?;
    Ok(RunShared {
        sandbox: sandbox(c, out)?.map(Arc::new),
        central: central(c, out, &sets)?.map(Arc::new),
        range_joiner: range_joiner(c, out)?,
        sets,
    })
}

/// The joiner of 206 parts into whole files, storing them in the filestore when it is on. Every
/// worker of a run must share one (two parts of a file may reach different workers): build it
/// once ([`RunShared`]) and put clones in each worker's `HttpConfig::range_joiner`.
pub fn range_joiner(c: &Config, out: &Path) -> anyhow::Result<SharedRangeJoiner> {
    if !c.output.filestore {
        return Ok(SharedRangeJoiner::default());
    }
    let store = Filestore::new(out).with_context(|| format!("cannot create the filestore in {}", out.display()))?;
    Ok(SharedRangeJoiner::new(Box::new(store)))
}

/// A worker for a live capture (`live`: checksums validated under `auto`) or a replay.
pub fn worker_for(c: &Config, out: &Path, eve: EveWriter, shared: &RunShared, live: bool) -> anyhow::Result<Worker> {
    let decoder = Decoder::new(decode_config(c, live));
    let files: Box<dyn FileSink + Send> = if c.output.filestore {
        Box::new(Filestore::new(out).with_context(|| format!("cannot create the filestore in {}", out.display()))?)
    } else {
        Box::new(NullSink)
    };
    let mails: Box<dyn MailSink + Send> = if c.output.mail_store {
        Box::new(MailStore::new(out).map_err(|e| anyhow::anyhow!("cannot create the mail store in {}: {e}", out.display()))?)
    } else {
        Box::new(NullMailSink)
    };
    let mut app = app_layer_config(c);
    if let Some(http) = app.http.as_mut() {
        http.range_joiner = shared.range_joiner.clone();
    }
    let cfg = WorkerConfig {
        stream: stream_config(c),
        app,
        stream_memcap: usize_of(c.stream.memcap.0),
        inspect_depth: c.stream.inspect_depth.0,
        files_stored: c.output.filestore,
        mails_stored: c.output.mail_store,
        exception_policies: ExceptionPolicies::from_section(&c.exception_policy),
    };
    let mut worker = Worker::new(decoder, FlowTable::new(flow_config(c)), cfg, eve, files, mails, None);
    worker.set_shared(shared.sets.clone())?;
    if let Some(dispatcher) = &shared.sandbox {
        worker.set_sandbox(dispatcher.clone());
    }
    if let Some(link) = &shared.central {
        worker.set_central(link.clone());
    }
    Ok(worker)
}
