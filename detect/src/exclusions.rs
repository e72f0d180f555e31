//! Scan exclusions (SPEC section 7): traffic that must not be extracted, dispatched or alerted on,
//! named by address, host or URL mask, file hash or type, email sender or recipient, or HTTP
//! User-Agent.
//!
//! [`ExclusionSet::excludes_sighting`] answers for a whole artifact sighting (flow addresses,
//! then the artifact), which is what sandbox dispatch and the Central Node link need; the
//! `excludes_*` checks serve the stages that see one field (a `Host`, a `User-Agent`).
//!
//! [`ExclusionLists`] is the `[exclusions]` config section (and what the Central Node sends, with
//! the same keys); lists from both are merged with [`ExclusionLists::merge`] and built into an
//! immutable [`ExclusionSet`], shared as `Arc<ExclusionSet>` and swapped whole when either source
//! changes. Its counters live in an [`ExclusionCounters`] that a rebuilt set can share, so the
//! counts survive a swap.
//!
//! Mask syntax: `*` matches any run of characters, dots and slashes included; everything else
//! is literal. How each list compares:
//! - `ips`: addresses or CIDR blocks (v4, v6), against a flow's source and destination and a
//!   host's IP literal;
//! - `hosts`: host masks, compared with the host normalised as reputation does (lower case,
//!   trailing dot gone, punycode, port dropped). `*.example.com` matches names below
//!   `example.com` but not `example.com` itself: list both when both are meant;
//! - `urls`: URL masks, compared with the URL normalised as reputation does (lower case, default
//!   port, user information and fragment dropped, dot segments resolved); a mask with a scheme
//!   is compared with `scheme://...` (`http` when the URL had none), one without with the
//!   scheme-less form. A URL is also excluded when its host is (by `hosts` or `ips`);
//! - `file_md5`, `file_sha256`: hex, either case;
//! - `file_types`: a file is excluded when an entry equals its name's extension (`exe`, `.exe`),
//!   the first word of its magic description (`pdf` for `PDF document, version 1.4`), the short
//!   type name sandbox policies use (`pe`, `ole`, `7z`, `rtf`, `macho`), or as a mask matches the
//!   whole magic description (`PE32 executable*`), all case-insensitively;
//! - `email_senders`, `email_recipients`: masks over the bare address (`*@partner.example`),
//!   case-insensitively; a message is excluded when its sender or any recipient is;
//! - `user_agents`: masks over the whole header value, case-insensitively.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use weir_core::{Artifact, EmailArtifact, FileArtifact, FlowKey, SeenIn, Sighting};

use crate::reputation::normalize::{Host, normalize_host, normalize_url};
use crate::reputation::{Indicator, IpNet, PrefixMap, normalize_email, parse_hash};

/// Entries per list. The set is built from configuration and the Central Node, not from traffic,
/// but a runaway policy must not take the sensor's memory.
pub const MAX_ENTRIES_PER_LIST: usize = 100_000;

/// Longest mask or entry accepted. Masks are compared piece by piece, so a check costs at most
/// the masks' total length times the checked value's length.
pub const MAX_MASK_LEN: usize = 1024;

/// The `[exclusions]` section and the Central Node's exclusion policy: every key a list of
/// strings, every key optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExclusionLists {
    pub ips: Vec<String>,
    pub hosts: Vec<String>,
    pub urls: Vec<String>,
    pub file_md5: Vec<String>,
    pub file_sha256: Vec<String>,
    pub file_types: Vec<String>,
    pub email_senders: Vec<String>,
    pub email_recipients: Vec<String>,
    pub user_agents: Vec<String>,
}

impl ExclusionLists {
    /// Adds `other`'s entries not already listed (local and Central Node lists are a union).
    pub fn merge(&mut self, other: &ExclusionLists) {
        fn union(mine: &mut Vec<String>, theirs: &[String]) {
            for entry in theirs {
                if !mine.contains(entry) {
                    mine.push(entry.clone());
                }
            }
        }
        union(&mut self.ips, &other.ips);
        union(&mut self.hosts, &other.hosts);
        union(&mut self.urls, &other.urls);
        union(&mut self.file_md5, &other.file_md5);
        union(&mut self.file_sha256, &other.file_sha256);
        union(&mut self.file_types, &other.file_types);
        union(&mut self.email_senders, &other.email_senders);
        union(&mut self.email_recipients, &other.email_recipients);
        union(&mut self.user_agents, &other.user_agents);
    }
}

/// Which list excluded something.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExclusionKind {
    Ip,
    Host,
    Url,
    FileMd5,
    FileSha256,
    FileType,
    EmailSender,
    EmailRecipient,
    UserAgent,
}

impl ExclusionKind {
    /// The config key of the list.
    pub fn key(self) -> &'static str {
        match self {
            ExclusionKind::Ip => "ips",
            ExclusionKind::Host => "hosts",
            ExclusionKind::Url => "urls",
            ExclusionKind::FileMd5 => "file_md5",
            ExclusionKind::FileSha256 => "file_sha256",
            ExclusionKind::FileType => "file_types",
            ExclusionKind::EmailSender => "email_senders",
            ExclusionKind::EmailRecipient => "email_recipients",
            ExclusionKind::UserAgent => "user_agents",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A refused entry: `exclusions.hosts[2] "a b": ...`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("exclusions.{}[{index}] `{value}`: {reason}", kind.key())]
pub struct ExclusionError {
    pub kind: ExclusionKind,
    /// 0-based position in the list.
    pub index: usize,
    pub value: String,
    pub reason: String,
}

/// How many checks answered "excluded", per list. Shared by successive sets.
#[derive(Debug, Default)]
pub struct ExclusionCounters {
    counts: [AtomicU64; 9],
}

/// A snapshot of [`ExclusionCounters`], for stats records and the health report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExclusionCounts {
    pub ips: u64,
    pub hosts: u64,
    pub urls: u64,
    pub file_md5: u64,
    pub file_sha256: u64,
    pub file_types: u64,
    pub email_senders: u64,
    pub email_recipients: u64,
    pub user_agents: u64,
}

impl ExclusionCounters {
    fn bump(&self, kind: ExclusionKind) {
        self.counts[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> ExclusionCounts {
        let c = |k: ExclusionKind| self.counts[k.index()].load(Ordering::Relaxed);
        ExclusionCounts {
            ips: c(ExclusionKind::Ip),
            hosts: c(ExclusionKind::Host),
            urls: c(ExclusionKind::Url),
            file_md5: c(ExclusionKind::FileMd5),
            file_sha256: c(ExclusionKind::FileSha256),
            file_types: c(ExclusionKind::FileType),
            email_senders: c(ExclusionKind::EmailSender),
            email_recipients: c(ExclusionKind::EmailRecipient),
            user_agents: c(ExclusionKind::UserAgent),
        }
    }
}

/// A `*` mask cut at its stars: the first piece must start the value, the last end it, the
/// middle ones appear in order between. Leftmost matching of each middle piece is enough for
/// `*`-only masks, so no backtracking is needed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mask {
    pieces: Vec<String>,
}

impl Mask {
    fn new(mask: &str) -> Mask {
        Mask {
            pieces: mask.split('*').map(str::to_string).collect(),
        }
    }

    fn matches(&self, value: &str) -> bool {
        let [first, middle @ .., last] = self.pieces.as_slice() else {
            // No star: a single piece, compared whole.
            return self.pieces.first().is_some_and(|p| p == value);
        };
        let Some(rest) = value.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some(mut rest) = rest.strip_suffix(last.as_str()) else {
            return false;
        };
        for piece in middle {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

/// Masks with fast paths for the common shapes: whole values and `*.suffix` host masks.
#[derive(Clone, Debug, Default)]
struct MaskSet {
    exact: HashSet<String>,
    /// `*.suffix` host masks, stored as `suffix`.
    below: HashSet<String>,
    others: Vec<Mask>,
}

impl MaskSet {
    fn add(&mut self, mask: String, host_like: bool) {
        if !mask.contains('*') {
            self.exact.insert(mask);
        } else if let Some(suffix) = mask
            .strip_prefix("*.")
            .filter(|s| host_like && !s.contains('*'))
        {
            self.below.insert(suffix.to_string());
        } else {
            self.others.push(Mask::new(&mask));
        }
    }

    fn matches(&self, value: &str) -> bool {
        if self.exact.contains(value) {
            return true;
        }
        if !self.below.is_empty() {
            let mut rest = value;
            while let Some((_, parent)) = rest.split_once('.') {
                if self.below.contains(parent) {
                    return true;
                }
                rest = parent;
            }
        }
        self.others.iter().any(|m| m.matches(value))
    }

    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.below.is_empty() && self.others.is_empty()
    }
}

/// Built exclusions; immutable apart from its counters. Share as `Arc<ExclusionSet>`.
#[derive(Debug, Default)]
pub struct ExclusionSet {
    ips: PrefixMap<()>,
    hosts: MaskSet,
    urls_with_scheme: MaskSet,
    urls_without_scheme: MaskSet,
    md5: HashSet<[u8; 16]>,
    sha256: HashSet<[u8; 32]>,
    file_types: Vec<(String, Mask)>,
    senders: MaskSet,
    recipients: MaskSet,
    user_agents: MaskSet,
    counters: Arc<ExclusionCounters>,
}

impl ExclusionSet {
    /// Excludes nothing.
    pub fn empty() -> ExclusionSet {
        ExclusionSet::default()
    }

    /// Builds a set with fresh counters; every bad entry is reported, none is half-applied.
    pub fn build(lists: &ExclusionLists) -> Result<ExclusionSet, Vec<ExclusionError>> {
        ExclusionSet::build_with_counters(lists, Arc::default())
    }

    /// Builds a set that counts into `counters` (pass the running set's [`ExclusionSet::counters`]
    /// when replacing it, so the counts go on).
    pub fn build_with_counters(
        lists: &ExclusionLists,
        counters: Arc<ExclusionCounters>,
    ) -> Result<ExclusionSet, Vec<ExclusionError>> {
        let mut set = ExclusionSet {
            counters,
            ..ExclusionSet::default()
        };
        let mut errors = Vec::new();
        let mut each = |kind: ExclusionKind,
                        list: &[String],
                        add: &mut dyn FnMut(&str) -> Result<(), String>| {
            for (index, value) in list.iter().enumerate() {
                let reason = if index >= MAX_ENTRIES_PER_LIST {
                    Err(format!("more than {MAX_ENTRIES_PER_LIST} entries"))
                } else if value.len() > MAX_MASK_LEN {
                    Err(format!("longer than {MAX_MASK_LEN} bytes"))
                } else if value.trim().is_empty() {
                    Err("empty".to_string())
                } else {
                    add(value.trim())
                };
                if let Err(reason) = reason {
                    errors.push(ExclusionError {
                        kind,
                        index,
                        value: value.clone(),
                        reason,
                    });
                }
            }
        };
        each(ExclusionKind::Ip, &lists.ips, &mut |v| {
            let net: IpNet = v.parse().map_err(|e| format!("{e}"))?;
            set.ips.entry(net);
            Ok(())
        });
        each(ExclusionKind::Host, &lists.hosts, &mut |v| {
            set.hosts.add(host_mask(v)?, true);
            Ok(())
        });
        each(ExclusionKind::Url, &lists.urls, &mut |v| {
            let mask = v.to_lowercase();
            if mask.contains("://") {
                set.urls_with_scheme.add(mask, false);
            } else {
                set.urls_without_scheme.add(mask, false);
            }
            Ok(())
        });
        each(
            ExclusionKind::FileMd5,
            &lists.file_md5,
            &mut |v| match parse_hash(v) {
                Ok(Indicator::Md5(h)) => {
                    set.md5.insert(h);
                    Ok(())
                }
                _ => Err("not a hex MD5".into()),
            },
        );
        each(
            ExclusionKind::FileSha256,
            &lists.file_sha256,
            &mut |v| match parse_hash(v) {
                Ok(Indicator::Sha256(h)) => {
                    set.sha256.insert(h);
                    Ok(())
                }
                _ => Err("not a hex SHA-256".into()),
            },
        );
        each(ExclusionKind::FileType, &lists.file_types, &mut |v| {
            let t = v.trim_start_matches('.').to_lowercase();
            set.file_types.push((t.clone(), Mask::new(&t)));
            Ok(())
        });
        each(ExclusionKind::EmailSender, &lists.email_senders, &mut |v| {
            set.senders.add(email_mask(v), false);
            Ok(())
        });
        each(
            ExclusionKind::EmailRecipient,
            &lists.email_recipients,
            &mut |v| {
                set.recipients.add(email_mask(v), false);
                Ok(())
            },
        );
        each(ExclusionKind::UserAgent, &lists.user_agents, &mut |v| {
            set.user_agents.add(v.to_lowercase(), false);
            Ok(())
        });
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// The counters this set adds to.
    pub fn counters(&self) -> &Arc<ExclusionCounters> {
        &self.counters
    }

    /// Whether the set excludes nothing at all (checks can then be skipped).
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.hosts.is_empty()
            && self.urls_with_scheme.is_empty()
            && self.urls_without_scheme.is_empty()
            && self.md5.is_empty()
            && self.sha256.is_empty()
            && self.file_types.is_empty()
            && self.senders.is_empty()
            && self.recipients.is_empty()
            && self.user_agents.is_empty()
    }

    fn hit(&self, kind: ExclusionKind) -> bool {
        self.counters.bump(kind);
        true
    }

    pub fn excludes_ip(&self, ip: IpAddr) -> bool {
        self.ips.contains(ip) && self.hit(ExclusionKind::Ip)
    }

    /// A flow whose source or destination is excluded.
    pub fn excludes_flow(&self, key: &FlowKey) -> bool {
        (self.ips.contains(key.src_ip) || self.ips.contains(key.dst_ip))
            && self.hit(ExclusionKind::Ip)
    }

    /// A host from a `Host` header, SNI or DNS query (a port, trailing dot or IDN is fine).
    pub fn excludes_host(&self, host: &str) -> bool {
        match normalize_host(host) {
            Ok(h) => self.host_kind(&h).is_some_and(|k| self.hit(k)),
            Err(_) => false,
        }
    }

    fn host_kind(&self, host: &Host) -> Option<ExclusionKind> {
        match host {
            Host::Ip(ip) if self.ips.contains(*ip) => Some(ExclusionKind::Ip),
            Host::Ip(ip) => self
                .hosts
                .matches(&ip.to_string())
                .then_some(ExclusionKind::Host),
            Host::Name(name) => self.hosts.matches(name).then_some(ExclusionKind::Host),
        }
    }

    /// A URL (with or without scheme) matched by a URL mask, or on an excluded host.
    pub fn excludes_url(&self, url: &str) -> bool {
        self.url_kind(url).is_some_and(|k| self.hit(k))
    }

    fn url_kind(&self, url: &str) -> Option<ExclusionKind> {
        let url = normalize_url(url).ok()?;
        if let Some(kind) = self.host_kind(&url.host) {
            return Some(kind);
        }
        let matched = (!self.urls_with_scheme.is_empty()
            && self.urls_with_scheme.matches(&url.with_scheme()))
            || (!self.urls_without_scheme.is_empty()
                && self.urls_without_scheme.matches(&url.key()));
        matched.then_some(ExclusionKind::Url)
    }

    /// A file by MD5, SHA-256 or type (extension of its wire name, magic description).
    pub fn excludes_file(&self, file: &FileArtifact) -> bool {
        self.file_kind(file).is_some_and(|k| self.hit(k))
    }

    fn file_kind(&self, file: &FileArtifact) -> Option<ExclusionKind> {
        if self.sha256.contains(&file.sha256) {
            Some(ExclusionKind::FileSha256)
        } else if self.md5.contains(&file.md5) {
            Some(ExclusionKind::FileMd5)
        } else {
            self.file_type_matches(file.magic.as_deref(), &file.name)
                .then_some(ExclusionKind::FileType)
        }
    }

    /// A file type: see the module documentation for what an entry is compared with.
    pub fn excludes_file_type(&self, magic: Option<&str>, name: &str) -> bool {
        self.file_type_matches(magic, name) && self.hit(ExclusionKind::FileType)
    }

    fn file_type_matches(&self, magic: Option<&str>, name: &str) -> bool {
        if self.file_types.is_empty() {
            return false;
        }
        let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_lowercase());
        let magic = magic.map(str::to_lowercase);
        let first_word = magic.as_deref().and_then(|m| {
            m.split(|c: char| !c.is_alphanumeric())
                .find(|w| !w.is_empty())
        });
        let short_name = first_word.map(type_name);
        self.file_types.iter().any(|(entry, mask)| {
            extension.as_deref() == Some(entry.as_str())
                || first_word == Some(entry.as_str())
                || short_name == Some(entry.as_str())
                || magic.as_deref().is_some_and(|m| mask.matches(m))
        })
    }

    pub fn excludes_sender(&self, address: &str) -> bool {
        self.senders.matches(&email_value(address)) && self.hit(ExclusionKind::EmailSender)
    }

    pub fn excludes_recipient(&self, address: &str) -> bool {
        self.recipients.matches(&email_value(address)) && self.hit(ExclusionKind::EmailRecipient)
    }

    /// A message whose sender or any recipient is excluded.
    pub fn excludes_email(&self, email: &EmailArtifact) -> bool {
        self.email_kind(email).is_some_and(|k| self.hit(k))
    }

    fn email_kind(&self, email: &EmailArtifact) -> Option<ExclusionKind> {
        if email
            .from
            .as_deref()
            .is_some_and(|f| self.senders.matches(&email_value(f)))
        {
            Some(ExclusionKind::EmailSender)
        } else if email
            .to
            .iter()
            .any(|t| self.recipients.matches(&email_value(t)))
        {
            Some(ExclusionKind::EmailRecipient)
        } else {
            None
        }
    }

    /// A whole sighting: its flow's addresses, then its artifact (a URL or host by how it was
    /// seen, a file, an email). Returns the list that excluded it, counted, for the caller's log
    /// (`kind.key()` names the config key); this is what sandbox dispatch and the Central Node
    /// link ask before sending anything.
    pub fn excludes_sighting(&self, sighting: &Sighting) -> Option<ExclusionKind> {
        let key = &sighting.ctx.key;
        let kind = if self.ips.contains(key.src_ip) || self.ips.contains(key.dst_ip) {
            Some(ExclusionKind::Ip)
        } else {
            match &sighting.artifact {
                Artifact::Url(u) => match u.seen_in {
                    SeenIn::HttpHost | SeenIn::DnsQuery | SeenIn::TlsSni => {
                        normalize_host(&u.url).ok().and_then(|h| self.host_kind(&h))
                    }
                    _ => self.url_kind(&u.url),
                },
                Artifact::File(f) => self.file_kind(f),
                Artifact::Email(e) => self.email_kind(e),
            }
        };
        kind.inspect(|k| self.counters.bump(*k))
    }

    pub fn excludes_user_agent(&self, user_agent: &str) -> bool {
        !self.user_agents.is_empty()
            && self.user_agents.matches(&user_agent.trim().to_lowercase())
            && self.hit(ExclusionKind::UserAgent)
    }
}

/// A host mask in the form hosts are compared in: lower case, no trailing dot, punycode. A mask
/// with a star is only lower-cased (IDN masks with stars must be written in punycode).
fn host_mask(v: &str) -> Result<String, String> {
    if !v.contains('*') {
        return normalize_host(v)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string());
    }
    let mask = v.trim_end_matches('.').to_lowercase();
    if mask
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*' | b':'))
    {
        Ok(mask)
    } else {
        Err(
            "a host mask with `*` holds only letters, digits, `-`, `_`, `.` (punycode for IDNs)"
                .into(),
        )
    }
}

/// The short type names sandbox policies use (`pe`, `ole`, `7z`, ...) for magic descriptions
/// whose first word is not already that name.
fn type_name(first_word: &str) -> &str {
    match first_word {
        "pe32" => "pe",
        "composite" => "ole",
        "7" => "7z",
        "rich" => "rtf",
        "mach" => "macho",
        other => other,
    }
}

fn email_mask(v: &str) -> String {
    if v.contains('*') {
        v.to_lowercase()
    } else {
        email_value(v)
    }
}

/// The bare address, lower case; a value that is no address is compared lower-cased as it is.
fn email_value(v: &str) -> String {
    normalize_email(v).unwrap_or_else(|| v.trim().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use weir_core::{FileState, IpProto, Vlans};

    fn lists(f: impl FnOnce(&mut ExclusionLists)) -> ExclusionSet {
        let mut l = ExclusionLists::default();
        f(&mut l);
        ExclusionSet::build(&l).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn masks_match_with_stars_anywhere() {
        let m = Mask::new("a*b*c");
        assert!(m.matches("abc"));
        assert!(m.matches("a-b-c"));
        assert!(m.matches("abbbc"));
        assert!(!m.matches("ab"));
        assert!(!m.matches("acb"));
        assert!(Mask::new("*").matches(""));
        assert!(Mask::new("ab*ab").matches("abab"));
        assert!(!Mask::new("ab*ab").matches("aba"));
        assert!(Mask::new("exact").matches("exact"));
        assert!(!Mask::new("exact").matches("exactly"));
        assert!(Mask::new("*x*").matches("aaxaa"));
    }

    #[test]
    fn ips_and_cidrs_exclude_either_end_of_a_flow() {
        let set = lists(|l| l.ips = strings(&["10.1.2.3", "192.168.0.0/16", "2001:db8::/32"]));
        let key = |src: [u8; 4], dst: [u8; 4]| FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::from(src)),
            dst_ip: IpAddr::V4(Ipv4Addr::from(dst)),
            src_port: 1,
            dst_port: 2,
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        };
        assert!(set.excludes_flow(&key([8, 8, 8, 8], [192, 168, 4, 4])));
        assert!(set.excludes_flow(&key([10, 1, 2, 3], [8, 8, 8, 8])));
        assert!(!set.excludes_flow(&key([10, 1, 2, 4], [8, 8, 8, 8])));
        assert!(
            set.excludes_ip(
                "2001:db8:1::1"
                    .parse()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
            )
        );
        assert_eq!(
            set.counters().snapshot(),
            ExclusionCounts {
                ips: 3,
                ..ExclusionCounts::default()
            }
        );
    }

    #[test]
    fn host_masks() {
        let set = lists(|l| {
            l.hosts = strings(&[
                "*.windowsupdate.com",
                "Intranet.Example.",
                "cdn*.example.net",
                "bücher.example",
            ])
        });
        assert!(set.excludes_host("download.windowsupdate.com"));
        assert!(set.excludes_host("a.b.WINDOWSUPDATE.com.:443"));
        assert!(
            !set.excludes_host("windowsupdate.com"),
            "*.x does not cover x itself"
        );
        assert!(!set.excludes_host("evilwindowsupdate.com"));
        assert!(set.excludes_host("intranet.example"));
        assert!(set.excludes_host("cdn7.example.net"));
        assert!(!set.excludes_host("img.example.net"));
        assert!(set.excludes_host("xn--bcher-kva.example"));
        assert!(!set.excludes_host("not a host"));
        assert_eq!(set.counters().snapshot().hosts, 5);
    }

    #[test]
    fn url_masks_with_and_without_scheme_and_by_host() {
        let set = lists(|l| {
            l.urls = strings(&[
                "http://intranet.example/*",
                "updates.example/*.cab",
                "*/healthcheck",
            ]);
            l.hosts = strings(&["*.trusted.example"]);
        });
        assert!(set.excludes_url("HTTP://Intranet.Example:80/a/b"));
        assert!(
            !set.excludes_url("https://intranet.example/a"),
            "the mask names http"
        );
        assert!(set.excludes_url("https://updates.example/x/y.cab"));
        assert!(set.excludes_url("http://updates.example/x/../y.CAB"));
        assert!(!set.excludes_url("http://updates.example/y.cab.exe"));
        assert!(set.excludes_url("http://10.0.0.1:8080/healthcheck"));
        assert!(set.excludes_url("http://www.trusted.example/anything"));
        assert!(!set.excludes_url("http://evil.example/"));
        assert_eq!(
            set.counters().snapshot(),
            ExclusionCounts {
                urls: 4,
                hosts: 1,
                ..ExclusionCounts::default()
            }
        );
    }

    fn file(name: &str, magic: Option<&str>) -> FileArtifact {
        FileArtifact {
            sha256: [0xab; 32],
            sha1: [0; 20],
            md5: [0xcd; 16],
            size: 1,
            name: name.into(),
            magic: magic.map(str::to_string),
            state: FileState::Closed,
            gaps: false,
        }
    }

    #[test]
    fn files_by_hash_and_type() {
        let set = lists(|l| {
            l.file_sha256 = vec!["AB".repeat(32)];
            l.file_types = strings(&["pdf", ".iso", "PE32 executable*"]);
        });
        assert!(set.excludes_file(&file("a.bin", None)), "by SHA-256");
        let other = |name: &str, magic: Option<&str>| FileArtifact {
            sha256: [0; 32],
            ..file(name, magic)
        };
        assert!(set.excludes_file(&other("x", Some("PDF document, version 1.4"))));
        assert!(set.excludes_file(&other("disk.ISO", None)));
        assert!(set.excludes_file(&other(
            "setup",
            Some("PE32 executable (GUI) Intel 80386, for MS Windows")
        )));
        assert!(!set.excludes_file(&other("setup.exe", Some("PE32+ executable (GUI) x86-64"))));
        assert!(!set.excludes_file(&other("report.docx", Some("Microsoft Word 2007+"))));
        let by_short_name = lists(|l| l.file_types = strings(&["pe", "ole", "7z"]));
        assert!(by_short_name.excludes_file_type(Some("PE32 executable (MS-DOS)"), "a"));
        assert!(by_short_name.excludes_file_type(Some("Composite Document File V2 Document"), "a"));
        assert!(by_short_name.excludes_file_type(Some("7-zip archive data"), "a"));
        assert!(!by_short_name.excludes_file_type(Some("PDF document"), "a.pdf"));
        let by_md5 = lists(|l| l.file_md5 = vec!["cd".repeat(16)]);
        assert!(by_md5.excludes_file(&other("a", None)));
        assert_eq!(
            set.counters().snapshot(),
            ExclusionCounts {
                file_sha256: 1,
                file_types: 3,
                ..ExclusionCounts::default()
            }
        );
        assert_eq!(by_md5.counters().snapshot().file_md5, 1);
    }

    #[test]
    fn email_senders_and_recipients() {
        let set = lists(|l| {
            l.email_senders = strings(&["*@partner.example", "Alerts <noreply@monitor.example>"]);
            l.email_recipients = strings(&["abuse@corp.example"]);
        });
        let mail = |from: &str, to: &[&str]| EmailArtifact {
            sha256: [0; 32],
            size: 1,
            from: Some(from.into()),
            to: strings(to),
            truncated: false,
        };
        assert!(set.excludes_email(&mail("Bob <BOB@Partner.Example>", &["x@corp.example"])));
        assert!(set.excludes_email(&mail("noreply@monitor.example", &[])));
        assert!(set.excludes_email(&mail(
            "eve@evil.example",
            &["x@corp.example", "Abuse <abuse@corp.example>"]
        )));
        assert!(!set.excludes_email(&mail("eve@evil.example", &["x@corp.example"])));
        assert_eq!(
            set.counters().snapshot(),
            ExclusionCounts {
                email_senders: 2,
                email_recipients: 1,
                ..ExclusionCounts::default()
            }
        );
    }

    #[test]
    fn user_agents_case_insensitive() {
        let set = lists(|l| l.user_agents = strings(&["Windows-Update-Agent*", "*Nessus*"]));
        assert!(
            set.excludes_user_agent("windows-update-agent/10.0.10011.16384 Client-Protocol/2.0")
        );
        assert!(set.excludes_user_agent("Mozilla/5.0 (compatible; Nessus)"));
        assert!(!set.excludes_user_agent("curl/8.5.0"));
        assert_eq!(set.counters().snapshot().user_agents, 2);
    }

    #[test]
    fn every_bad_entry_is_reported_at_once() {
        let l = ExclusionLists {
            ips: strings(&["10.0.0.0/8", "10.0.0.0/99", "host.example"]),
            hosts: strings(&["a b", "ok.example", "*.bücher.example"]),
            file_md5: strings(&["xyz"]),
            file_sha256: strings(&["d41d8cd98f00b204e9800998ecf8427e"]),
            user_agents: strings(&["  "]),
            ..ExclusionLists::default()
        };
        let errors = ExclusionSet::build(&l).err().unwrap_or_default();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "exclusions.ips[1] `10.0.0.0/99`: not a valid IP address or CIDR",
                "exclusions.ips[2] `host.example`: not a valid IP address or CIDR",
                "exclusions.hosts[0] `a b`: not a valid host name",
                "exclusions.hosts[2] `*.bücher.example`: a host mask with `*` holds only letters, digits, `-`, `_`, `.` (punycode for IDNs)",
                "exclusions.file_md5[0] `xyz`: not a hex MD5",
                "exclusions.file_sha256[0] `d41d8cd98f00b204e9800998ecf8427e`: not a hex SHA-256",
                "exclusions.user_agents[0] `  `: empty",
            ]
        );
    }

    #[test]
    fn merged_lists_and_shared_counters_survive_a_swap() {
        let mut local = ExclusionLists {
            hosts: strings(&["a.example"]),
            ..ExclusionLists::default()
        };
        let central: ExclusionLists =
            serde_json::from_str(r#"{"hosts": ["a.example", "b.example"], "ips": ["10.0.0.0/8"]}"#)
                .unwrap_or_default();
        local.merge(&central);
        assert_eq!(local.hosts, strings(&["a.example", "b.example"]));
        assert_eq!(local.ips, strings(&["10.0.0.0/8"]));
        assert!(
            serde_json::from_str::<ExclusionLists>(r#"{"domains": []}"#).is_err(),
            "unknown keys are refused"
        );
        let first = ExclusionSet::build(&local).unwrap_or_default();
        assert!(first.excludes_host("b.example"));
        let second = ExclusionSet::build_with_counters(
            &ExclusionLists::default(),
            Arc::clone(first.counters()),
        )
        .unwrap_or_default();
        assert!(second.is_empty());
        assert!(!second.excludes_host("b.example"));
        assert_eq!(second.counters().snapshot().hosts, 1);
        assert!(ExclusionSet::empty().is_empty());
        assert!(!first.is_empty());
    }

    /// The textbook recursive glob, as the model for [`Mask`].
    fn glob_model(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, _) => t.is_empty(),
            (Some(b'*'), _) => glob_model(&p[1..], t) || (!t.is_empty() && glob_model(p, &t[1..])),
            (Some(c), Some(d)) if c == d => glob_model(&p[1..], &t[1..]),
            _ => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn masks_agree_with_the_recursive_model(mask in "[ab*.]{0,8}", value in "[ab.]{0,10}") {
            proptest::prop_assert_eq!(Mask::new(&mask).matches(&value), glob_model(mask.as_bytes(), value.as_bytes()));
        }
    }

    #[test]
    fn sightings_by_flow_then_artifact() {
        use weir_core::{ArtifactContext, Timestamp, UrlArtifact};
        let set = lists(|l| {
            l.ips = strings(&["10.9.0.0/16"]);
            l.hosts = strings(&["*.trusted.example"]);
            l.email_recipients = strings(&["*@corp.example"]);
        });
        let ctx = |dst: [u8; 4]| ArtifactContext {
            ts: Timestamp::ZERO,
            flow_id: 1,
            key: FlowKey {
                src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                dst_ip: IpAddr::V4(Ipv4Addr::from(dst)),
                src_port: 1,
                dst_port: 80,
                proto: IpProto::TCP,
                vlans: Vlans::default(),
                tunnel_depth: 0,
            },
            app_proto: None,
            tx_id: None,
        };
        let url = |u: &str, seen_in| {
            Artifact::Url(UrlArtifact {
                url: u.into(),
                seen_in,
            })
        };
        let check = |dst, artifact| {
            set.excludes_sighting(&Sighting {
                ctx: ctx(dst),
                artifact,
            })
        };
        assert_eq!(
            check([10, 9, 1, 1], url("http://evil.example/", SeenIn::HttpUrl)),
            Some(ExclusionKind::Ip)
        );
        assert_eq!(
            check([8, 8, 8, 8], url("a.trusted.example", SeenIn::TlsSni)),
            Some(ExclusionKind::Host)
        );
        assert_eq!(
            check(
                [8, 8, 8, 8],
                url("http://a.trusted.example/x", SeenIn::EmailUrl)
            ),
            Some(ExclusionKind::Host)
        );
        assert_eq!(
            check([8, 8, 8, 8], url("http://evil.example/", SeenIn::HttpUrl)),
            None
        );
        let mail = Artifact::Email(EmailArtifact {
            sha256: [0; 32],
            size: 1,
            from: Some("x@evil.example".into()),
            to: strings(&["ceo@corp.example"]),
            truncated: false,
        });
        assert_eq!(
            check([8, 8, 8, 8], mail),
            Some(ExclusionKind::EmailRecipient)
        );
        assert_eq!(
            check([8, 8, 8, 8], Artifact::File(file("a.pdf", None))),
            None
        );
        assert_eq!(
            set.counters().snapshot(),
            ExclusionCounts {
                ips: 1,
                hosts: 2,
                email_recipients: 1,
                ..ExclusionCounts::default()
            }
        );
        assert_eq!(ExclusionKind::EmailRecipient.key(), "email_recipients");
    }
}
