//! The sections of the config file. Every key is optional; the defaults are the values a fresh
//! `weir replay x.pcap` runs with, and `weir.example.toml` repeats them with comments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::size::ByteSize;

/// Worker threads at most: beyond the cores of any sensor this runs on.
pub const MAX_WORKERS: usize = 64;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub capture: CaptureSection,
    pub vars: VarsSection,
    pub stream: StreamSection,
    pub app_layer: AppLayerSection,
    pub detect: DetectSection,
    pub output: OutputSection,
    pub sandbox: SandboxSection,
    pub central: CentralSection,
    pub exclusions: ExclusionsSection,
    pub icap: IcapSection,
    pub exception_policy: ExceptionPolicySection,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChecksumValidation {
    /// Off for replays (captures often hold offloaded, unfilled checksums), on for live capture.
    #[default]
    Auto,
    On,
    Off,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FragPolicy {
    First,
    Last,
    /// Suricata's default.
    #[default]
    Bsd,
    BsdRight,
    Linux,
    Windows,
    Solaris,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// Interface for `weir live` when `--interface` is not given.
    pub interface: Option<String>,
    /// A libpcap filter expression applied to live capture.
    pub bpf: Option<String>,
    pub snaplen: u32,
    /// Flow-affine worker threads: 1 runs everything on the capture thread; more run a dispatcher
    /// that steers each flow to one worker thread.
    pub workers: usize,
    pub checksum_validation: ChecksumValidation,
    /// UDP ports decoded as VXLAN.
    pub vxlan_ports: Vec<u16>,
    /// Tunnel layers peeled off at most (GRE, VXLAN, ERSPAN, IP-in-IP).
    pub max_tunnel_depth: u8,
    pub defrag_memcap: ByteSize,
    /// Seconds an incomplete datagram waits for its missing fragments.
    pub defrag_timeout: u64,
    pub defrag_policy: FragPolicy,
    /// Fragments kept for one datagram at most.
    pub defrag_max_fragments: usize,
}

impl Default for CaptureSection {
    fn default() -> Self {
        CaptureSection {
            interface: None,
            bpf: None,
            snaplen: 65_535,
            workers: 1,
            checksum_validation: ChecksumValidation::Auto,
            vxlan_ports: vec![4789],
            max_tunnel_depth: 4,
            defrag_memcap: ByteSize::mib(32),
            defrag_timeout: 60,
            defrag_policy: FragPolicy::Bsd,
            defrag_max_fragments: 256,
        }
    }
}

/// Address and port groups for rules (`HOME_NET = "[10.0.0.0/8,192.168.0.0/16]"`,
/// `HTTP_PORTS = "[80,8080]"`). Names not given keep Suricata's defaults.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct VarsSection(pub BTreeMap<String, VarValue>);

/// A group written as one string or as a list of entries.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum VarValue {
    One(String),
    List(Vec<String>),
}

impl VarValue {
    /// The group in rule syntax.
    pub fn to_rule_syntax(&self) -> String {
        match self {
            VarValue::One(s) => s.clone(),
            VarValue::List(items) => format!("[{}]", items.join(",")),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    First,
    Last,
    #[default]
    Bsd,
    BsdRight,
    Linux,
    OldLinux,
    Windows,
    Windows2k3,
    Vista,
    Solaris,
    OldSolaris,
    Hpux10,
    Hpux11,
    Irix,
    Macos,
}

impl OverlapPolicy {
    /// The reassembly crate's name for the same policy.
    pub fn to_reassembly(self) -> weir_reassembly::OverlapPolicy {
        use weir_reassembly::OverlapPolicy as P;
        match self {
            OverlapPolicy::First => P::First,
            OverlapPolicy::Last => P::Last,
            OverlapPolicy::Bsd => P::Bsd,
            OverlapPolicy::BsdRight => P::BsdRight,
            OverlapPolicy::Linux => P::Linux,
            OverlapPolicy::OldLinux => P::OldLinux,
            OverlapPolicy::Windows => P::Windows,
            OverlapPolicy::Windows2k3 => P::Windows2k3,
            OverlapPolicy::Vista => P::Vista,
            OverlapPolicy::Solaris => P::Solaris,
            OverlapPolicy::OldSolaris => P::OldSolaris,
            OverlapPolicy::Hpux10 => P::Hpux10,
            OverlapPolicy::Hpux11 => P::Hpux11,
            OverlapPolicy::Irix => P::Irix,
            OverlapPolicy::Macos => P::Macos,
        }
    }
}

/// Timeouts of one protocol, seconds of packet time.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TimeoutSection {
    pub new: Option<u64>,
    pub established: Option<u64>,
    pub closed: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutsSection {
    pub tcp: Option<TimeoutSection>,
    pub udp: Option<TimeoutSection>,
    pub icmp: Option<TimeoutSection>,
    pub other: Option<TimeoutSection>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// Flows held at once; past it the least recently seen flow is ended and logged.
    pub max_flows: usize,
    /// Per-protocol flow timeouts (defaults: TCP 60/600/60, UDP 30/300, ICMP 30/300, other 30/300).
    pub timeouts: TimeoutsSection,
    /// Pick up TCP sessions whose handshake was not seen. On by default, unlike Suricata: a sensor
    /// restarted on a busy link must inspect the sessions already running.
    pub midstream: bool,
    /// Reassemble and inspect flows of which only one direction is captured as their data
    /// arrives. On by default, unlike Suricata: mirror ports and asymmetric routing often show a
    /// sensor one side only, and a file or URL in such a flow must not wait for the flow's end
    /// (or be missed). The cost: without the peer's ACKs, injected data cannot be told from
    /// data the peer received.
    pub async_oneside: bool,
    pub overlap_policy: OverlapPolicy,
    /// Bytes of each direction reassembled for the parsers; 0 (the default) is the whole stream,
    /// so files are extracted whole whatever their size. Unlike Suricata's 1 MiB default: a cut
    /// here is a truncated file, and memory is bounded by the memcaps, not by this.
    pub depth: ByteSize,
    /// Bytes of each direction inspected by rules on the raw stream (rules without an app-layer
    /// buffer), as Suricata's 1 MiB default reassembly depth bounds it.
    pub inspect_depth: ByteSize,
    /// Memory for out-of-order and unacknowledged segments, over all sessions.
    pub memcap: ByteSize,
    /// Out-of-order segments held per direction at most.
    pub max_queued_segments: usize,
    /// Suricata's `stream.inline` (IPS mode): stream bytes are inspected on the packet that
    /// carries them rather than once the receiver ACKs them, and the first copy of overlapping
    /// data wins. Off by default, as Suricata (a passive sensor sees what the receiver ACKed).
    pub inline: bool,
    /// Overlap policy by receiving host, Suricata's `host-os-policy`: policy name to a list of
    /// addresses or networks (`old-linux = ["10.0.0.0/8"]`); the longest prefix wins, and
    /// hosts listed nowhere use `overlap_policy`.
    pub host_os_policy: BTreeMap<OverlapPolicy, Vec<String>>,
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            max_flows: 100_000,
            timeouts: TimeoutsSection::default(),
            midstream: true,
            async_oneside: true,
            overlap_policy: OverlapPolicy::Bsd,
            depth: ByteSize(0),
            inspect_depth: ByteSize::mib(1),
            memcap: ByteSize::mib(256),
            max_queued_segments: 2048,
            inline: false,
            host_os_policy: BTreeMap::new(),
        }
    }
}

/// What happens to a flow when one of its caps is met or its parser gives up (Suricata's
/// exception policies). A passive sensor drops nothing, so Suricata's inline-only `drop-flow`,
/// `drop-packet` and `reject` are refused, and so is `pass-packet` (every cap here acts on a
/// flow); `auto` is `ignore`, as in Suricata's IDS mode.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum ExceptionPolicyName {
    /// Keep going as the cap states in ARCHITECTURE.md's Limits table.
    #[default]
    Ignore,
    /// Keep reassembling, parsing, extracting and logging the flow, but inspect it no more: no
    /// rule or reputation alert comes from it afterwards.
    PassFlow,
    /// Stop reassembling, parsing and inspecting the flow; it is still counted and logged, with
    /// `"bypassed": true`.
    Bypass,
}

impl TryFrom<String> for ExceptionPolicyName {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "ignore" | "auto" => Ok(ExceptionPolicyName::Ignore),
            "pass-flow" => Ok(ExceptionPolicyName::PassFlow),
            "bypass" => Ok(ExceptionPolicyName::Bypass),
            "drop-flow" | "drop-packet" | "reject" => Err(format!(
                "`{name}` needs an inline sensor; Weir only watches traffic: use \"ignore\", \"pass-flow\" or \"bypass\""
            )),
            "pass-packet" => Err("`pass-packet` acts on one packet; these caps act on a flow: use \"pass-flow\"".into()),
            _ => Err(format!("unknown exception policy `{name}`: use \"ignore\", \"pass-flow\" or \"bypass\"")),
        }
    }
}

/// One policy per cap; a cap left out takes `default` (Suricata's master switch), except
/// `midstream`, which is `ignore` unless set: a sensor restarted on a busy link must not give up
/// every session already running because a memory policy was made strict.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExceptionPolicySection {
    /// The policy of every cap not named below.
    pub default: ExceptionPolicyName,
    /// All sessions together over `[stream] memcap` (applied to the session that crossed it).
    pub stream_memcap: Option<ExceptionPolicyName>,
    /// One session's held segments over reassembly's per-flow memcap (2 MiB).
    pub flow_memcap: Option<ExceptionPolicyName>,
    /// One direction's out-of-order segments over `[stream] max_queued_segments`.
    pub max_queued_segments: Option<ExceptionPolicyName>,
    /// A direction reached `[stream] depth` (Suricata's `stream.bypass` is `bypass` here).
    pub depth: Option<ExceptionPolicyName>,
    /// A session picked up without its handshake (`[stream] midstream`).
    pub midstream: Option<ExceptionPolicyName>,
    /// An app-layer parser met input it cannot parse and gave up on the flow.
    pub app_layer_error: Option<ExceptionPolicyName>,
    /// An HTTP header block cut at `[app_layer.http] header_memcap`.
    pub http_header_memcap: Option<ExceptionPolicyName>,
    /// An unfinished mail message cut at the held-message budget of its worker.
    pub mail_memcap: Option<ExceptionPolicyName>,
    /// A new flow while the flow table holds `[stream] max_flows`: `ignore` ends the least
    /// recently seen flow to make room; `bypass` leaves the new flow untracked (its packets
    /// counted, not inspected) unless the least recently seen flow has been idle 30 s, so a
    /// flood of new tuples cannot push out the sessions in use. `pass-flow` does not apply.
    pub flow_table: Option<ExceptionPolicyName>,
}

/// The caps an exception policy decides on, in the order the section lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExceptionCap {
    StreamMemcap,
    FlowMemcap,
    MaxQueuedSegments,
    Depth,
    Midstream,
    AppLayerError,
    HttpHeaderMemcap,
    MailMemcap,
    FlowTable,
}

impl ExceptionCap {
    pub const ALL: [ExceptionCap; 9] = [
        ExceptionCap::StreamMemcap,
        ExceptionCap::FlowMemcap,
        ExceptionCap::MaxQueuedSegments,
        ExceptionCap::Depth,
        ExceptionCap::Midstream,
        ExceptionCap::AppLayerError,
        ExceptionCap::HttpHeaderMemcap,
        ExceptionCap::MailMemcap,
        ExceptionCap::FlowTable,
    ];
}

impl ExceptionPolicySection {
    /// The policy `cap` takes: its own setting, else the master switch (`midstream`: else
    /// `ignore`; `flow_table`: `ignore` where the master switch says `pass-flow`, as a packet
    /// without a flow has no flow to pass).
    pub fn policy(&self, cap: ExceptionCap) -> ExceptionPolicyName {
        let own = match cap {
            ExceptionCap::StreamMemcap => self.stream_memcap,
            ExceptionCap::FlowMemcap => self.flow_memcap,
            ExceptionCap::MaxQueuedSegments => self.max_queued_segments,
            ExceptionCap::Depth => self.depth,
            ExceptionCap::Midstream => return self.midstream.unwrap_or_default(),
            ExceptionCap::AppLayerError => self.app_layer_error,
            ExceptionCap::HttpHeaderMemcap => self.http_header_memcap,
            ExceptionCap::MailMemcap => self.mail_memcap,
            ExceptionCap::FlowTable => {
                return match self.flow_table.unwrap_or(self.default) {
                    ExceptionPolicyName::PassFlow => ExceptionPolicyName::Ignore,
                    policy => policy,
                };
            }
        };
        own.unwrap_or(self.default)
    }
}

/// Per-protocol switches and limits.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AppLayerSection {
    pub http: HttpSection,
    pub smtp: MailSection,
    pub pop3: MailSection,
    pub imap: MailSection,
    pub ftp: ProtocolSection,
    pub dns: ProtocolSection,
    pub tls: ProtocolSection,
    pub smb: ProtocolSection,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ProtocolSection {
    pub enabled: bool,
}

impl Default for ProtocolSection {
    fn default() -> Self {
        ProtocolSection { enabled: true }
    }
}

/// SMTP, POP3 and IMAP.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct MailSection {
    pub enabled: bool,
    /// Bytes of unfinished messages all flows of this protocol on one worker hold at once. A
    /// message that needs more is stored truncated and marked (`[exception_policy] mail_memcap`).
    pub message_memcap: ByteSize,
}

impl Default for MailSection {
    fn default() -> Self {
        MailSection { enabled: true, message_memcap: ByteSize(weir_extract::mime::DEFAULT_MAX_HELD_MESSAGE_BYTES as u64) }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub enabled: bool,
    /// Request body bytes kept for inspection (files are extracted whole regardless).
    pub request_body_limit: ByteSize,
    pub response_body_limit: ByteSize,
    /// Decompressed bytes per body at most (gzip/deflate/brotli bombs stop here, truncated).
    pub decompress_limit: ByteSize,
    /// Header bytes all HTTP flows of a worker hold at once (unfinished header blocks and those
    /// of open transactions). A block past it is cut: later lines dropped, an anomaly logged.
    pub header_memcap: ByteSize,
    /// Log every request and response header in `http` records.
    pub log_headers: bool,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            enabled: true,
            // Suricata's defaults: rules see the first 100 KiB of a body.
            request_body_limit: ByteSize(100 * 1024),
            response_body_limit: ByteSize(100 * 1024),
            decompress_limit: ByteSize::mib(64),
            header_memcap: ByteSize(weir_extract::http::DEFAULT_MAX_HELD_HEADER_BYTES as u64),
            log_headers: false,
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    UrlhausCsv,
    ZeekIntel,
    Domains,
    Urls,
    Ips,
    Hashes,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeedSection {
    /// Shown in alerts.
    pub name: String,
    pub path: PathBuf,
    pub format: FeedFormat,
    #[serde(default = "default_category")]
    pub category: String,
}

fn default_category() -> String {
    "malware".into()
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSection {
    /// Rule files; `--rules` replaces this list.
    pub rules: Vec<PathBuf>,
    /// Suricata's classification.config format; Weir's built-in table when absent.
    pub classification: Option<PathBuf>,
    pub feeds: Vec<FeedSection>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// Output directory when `--out` is not given.
    pub dir: PathBuf,
    /// EVE event types written; empty means all.
    pub eve_types: Vec<String>,
    /// Store extracted files under `filestore/`.
    pub filestore: bool,
    /// Store email messages under `mail/`.
    pub mail_store: bool,
    /// Write `payload`/`payload_printable` (base64 and printable) in alerts.
    pub alert_payload: bool,
    /// Write `packet` (base64 of the frame) in packet alerts.
    pub alert_packet: bool,
    /// Seconds of packet time between EVE `stats` records; 0 writes only the final one.
    pub stats_interval: u64,
    /// Address of the Prometheus text endpoint (`weir live`); absent: none. Loopback unless the
    /// operator names another address.
    pub prometheus: Option<String>,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            dir: PathBuf::from("weir-out"),
            eve_types: Vec::new(),
            filestore: true,
            mail_store: true,
            alert_payload: true,
            alert_packet: true,
            stats_interval: 0,
            prometheus: None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SandboxApi {
    #[default]
    Cape,
    Cuckoo,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxSection {
    pub enabled: bool,
    pub api: SandboxApi,
    /// The API root; Weir appends `apiv2/...` for CAPE.
    pub url: Option<String>,
    pub token: Option<String>,
    /// CA certificate (PEM) for an HTTPS sandbox with a private CA.
    pub ca: Option<PathBuf>,
    pub spool_dir: PathBuf,
    /// Files outside these bounds are not submitted.
    pub min_file_size: ByteSize,
    pub max_file_size: ByteSize,
    /// File types submitted (by magic: "pe", "pdf", "office", "zip", "script", ...); empty: all.
    pub file_types: Vec<String>,
    /// Where URLs to submit come from: "email", "http".
    pub url_sources: Vec<String>,
    pub concurrency: usize,
    /// Submissions per minute at most (CAPE's default API limit is 2 per minute per endpoint).
    pub rate_per_minute: u32,
    pub retention_days: u32,
    /// How long `weir replay` waits for pending submissions before exiting, seconds.
    pub replay_wait: u64,
    /// Between two status polls of a submitted task, milliseconds.
    pub poll_interval_ms: u64,
}

impl Default for SandboxSection {
    fn default() -> Self {
        SandboxSection {
            enabled: false,
            api: SandboxApi::Cape,
            url: None,
            token: None,
            ca: None,
            spool_dir: PathBuf::from("/var/lib/weir/sandbox"),
            min_file_size: ByteSize(1),
            max_file_size: ByteSize::mib(32),
            file_types: Vec::new(),
            url_sources: vec!["email".into()],
            concurrency: 2,
            rate_per_minute: 60,
            retention_days: 21,
            replay_wait: 60,
            poll_interval_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct CentralSection {
    pub enabled: bool,
    pub url: Option<String>,
    pub sensor_id: Option<String>,
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub token: Option<String>,
    pub spool_dir: PathBuf,
    pub retention_days: u32,
    /// Largest spool on disk; past it intake stops with a loud error, never silent loss.
    pub spool_max: ByteSize,
    /// Events per upload batch at most, and seconds an event waits for its batch at most.
    pub batch_events: usize,
    pub batch_age: u64,
    /// Seconds between two polls of the Central Node's policy and updates.
    pub poll_interval: u64,
    /// How long `weir replay` waits at the end for the Central Node to take what is spooled,
    /// seconds; what is left stays in the spool for the next run.
    pub replay_wait: u64,
}

impl Default for CentralSection {
    fn default() -> Self {
        CentralSection {
            enabled: false,
            url: None,
            sensor_id: None,
            ca: None,
            cert: None,
            key: None,
            token: None,
            spool_dir: PathBuf::from("/var/lib/weir/central"),
            retention_days: 21,
            spool_max: ByteSize(16 << 30),
            batch_events: 500,
            batch_age: 5,
            poll_interval: 300,
            replay_wait: 60,
        }
    }
}

/// What must not be extracted, dispatched or alerted on (SPEC.md section 7), merged with the
/// Central Node's list.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ExclusionsSection {
    /// Addresses or CIDRs, matched against source and destination.
    pub ips: Vec<String>,
    /// Host masks with `*` wildcards (`*.windowsupdate.com`).
    pub hosts: Vec<String>,
    /// URL masks with `*` wildcards.
    pub urls: Vec<String>,
    pub file_md5: Vec<String>,
    pub file_sha256: Vec<String>,
    pub file_types: Vec<String>,
    pub email_senders: Vec<String>,
    pub email_recipients: Vec<String>,
    pub user_agents: Vec<String>,
}

/// `weir icap`: the ICAP server a web proxy hands its HTTP exchanges to (SPEC.md section 8).
/// Sizes and counts bound what one proxy can make Weir hold; times are wall-clock seconds.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IcapSection {
    /// `weir live` serves ICAP beside the capture (same outputs, one eve.json).
    pub enabled: bool,
    /// Address served; `--listen` overrides it.
    pub listen: std::net::SocketAddr,
    /// Proxy connections served at once (advertised as `Max-Connections`); more get `503`.
    pub max_connections: usize,
    /// Body bytes kept per ICAP message; the rest is counted and the file logged TRUNCATED.
    pub max_body: ByteSize,
    /// `Preview` advertised in OPTIONS: bodies this small arrive in one round trip (at most 1mb).
    pub preview: ByteSize,
    /// ICAP request line and headers, at most; past it `413` and the connection is closed.
    pub max_icap_head: ByteSize,
    /// Encapsulated HTTP request and response heads together, at most.
    pub max_http_heads: ByteSize,
    /// `Options-TTL` advertised in OPTIONS, seconds.
    pub options_ttl: u64,
    /// An idle kept-alive proxy connection is closed after this many seconds.
    pub idle_timeout: u64,
    /// A request's heads must arrive within this many seconds of its first byte.
    pub head_timeout: u64,
    /// Longest wait for the next body bytes, seconds.
    pub read_timeout: u64,
    /// Longest a write to the proxy may block, seconds.
    pub write_timeout: u64,
    /// Answered messages waiting for extraction and detection; past it (after `queue_wait_ms`)
    /// a message is dropped and counted: the proxy already has its answer.
    pub queue: usize,
    pub queue_wait_ms: u64,
    /// Seconds a REQMOD waits for the RESPMOD of the same exchange, so that the exchange is
    /// logged once with both sides; unanswered, it is logged on its own.
    pub pair_wait: u64,
}

impl Default for IcapSection {
    fn default() -> Self {
        IcapSection {
            enabled: false,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 1344)),
            max_connections: 256,
            max_body: ByteSize::mib(10),
            preview: ByteSize(4096),
            max_icap_head: ByteSize(16 * 1024),
            max_http_heads: ByteSize(128 * 1024),
            options_ttl: 3600,
            idle_timeout: 120,
            head_timeout: 30,
            read_timeout: 30,
            write_timeout: 30,
            queue: 64,
            queue_wait_ms: 50,
            pair_wait: 60,
        }
    }
}

impl Config {
    /// The `[stream.host_os_policy]` table as reassembly resolves it.
    pub fn host_os_policy(&self) -> Result<weir_reassembly::HostOsPolicy, weir_reassembly::HostPolicyError> {
        weir_reassembly::HostOsPolicy::new(
            self.stream.host_os_policy.iter().map(|(policy, nets)| (policy.to_reassembly(), nets.as_slice())),
        )
    }

    /// Checks that need more than one key; returns (section, message) pairs.
    pub(super) fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errs = Vec::new();
        if !(1..=MAX_WORKERS).contains(&self.capture.workers) {
            errs.push(("capture", format!("workers = {}: give 1 to {MAX_WORKERS}", self.capture.workers)));
        }
        if let Some(addr) = &self.output.prometheus {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                errs.push(("output", format!("prometheus = {addr:?}: not an address such as \"127.0.0.1:9717\"")));
            }
        }
        if self.capture.snaplen < 64 {
            errs.push(("capture", "snaplen below 64 bytes cannot hold the headers".into()));
        }
        if self.stream.max_flows == 0 {
            errs.push(("stream", "max_flows must be at least 1".into()));
        }
        // 0 would cut every message to nothing, not lift the cap.
        for (name, mail) in [("app_layer.smtp", &self.app_layer.smtp), ("app_layer.pop3", &self.app_layer.pop3), ("app_layer.imap", &self.app_layer.imap)] {
            if mail.message_memcap.0 < 64 * 1024 {
                errs.push((name, "message_memcap must be at least 64kb".into()));
            }
        }
        if self.app_layer.http.header_memcap.0 < 1024 {
            errs.push(("app_layer.http", "header_memcap must be at least 1kb".into()));
        }
        if self.exception_policy.flow_table == Some(ExceptionPolicyName::PassFlow) {
            errs.push(("exception_policy", "flow_table takes \"ignore\" or \"bypass\": a packet without a flow has no flow to pass".into()));
        }
        if let Err(e) = self.host_os_policy() {
            errs.push(("stream", format!("host_os_policy: {e}")));
        }
        for name in self.vars.0.keys() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                errs.push(("vars", format!("`{name}` is not a group name (upper case, digits, _)")));
            }
        }
        let mut feed_names = std::collections::HashSet::new();
        for feed in &self.detect.feeds {
            if !feed_names.insert(feed.name.as_str()) {
                errs.push(("detect", format!("two feeds are named `{}`", feed.name)));
            }
        }
        if self.sandbox.enabled && self.sandbox.url.is_none() {
            errs.push(("sandbox", "enabled without a url".into()));
        }
        if self.sandbox.min_file_size > self.sandbox.max_file_size {
            errs.push(("sandbox", "min_file_size is larger than max_file_size".into()));
        }
        if self.central.enabled {
            for (key, missing) in [
                ("url", self.central.url.is_none()),
                ("sensor_id", self.central.sensor_id.is_none()),
                ("ca", self.central.ca.is_none()),
                ("cert", self.central.cert.is_none()),
                ("key", self.central.key.is_none()),
            ] {
                if missing {
                    errs.push(("central", format!("enabled without `{key}`")));
                }
            }
        }
        if self.central.poll_interval == 0 {
            errs.push(("central", "poll_interval must be at least 1 second".into()));
        }
        if self.central.retention_days == 0 || self.sandbox.retention_days == 0 {
            errs.push(("central", "retention_days must be at least 1".into()));
        }
        errs
    }

    /// Relative paths in a config file are relative to the file, as a user reading it expects.
    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.detect.rules.iter_mut().for_each(fix);
        self.detect.classification.iter_mut().for_each(fix);
        self.detect.feeds.iter_mut().for_each(|f| fix(&mut f.path));
        for p in [&mut self.sandbox.ca, &mut self.central.ca, &mut self.central.cert, &mut self.central.key] {
            p.iter_mut().for_each(fix);
        }
        fix(&mut self.sandbox.spool_dir);
        fix(&mut self.central.spool_dir);
    }
}
