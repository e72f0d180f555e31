//! Loading rule files: comments, continuation lines, duplicates, and the report that
//! `weir rules check` and startup print.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::classification::Classification;
use super::lexer::split_rule;
use super::options::parse_rule;
use super::vars::{ResolvedVars, Vars};
use super::{Rule, RuleError};

/// Largest rule file read. ET Open's biggest file is under 4 MiB; all of it is under 40 MiB.
pub const MAX_RULE_FILE_BYTES: u64 = 512 * 1024 * 1024;

/// Something worth telling the user about a rule that still loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// Suricata loads such a rule at priority 3 and warns; so do we.
    UnknownClasstype(String),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownClasstype(name) => {
                write!(f, "unknown classtype `{name}`, using priority 3")
            }
        }
    }
}

/// Where a rule starts: its file and the line its text begins on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: Arc<PathBuf>,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A rule that did not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub file: Arc<PathBuf>,
    pub line: usize,
    /// The sid, when one could be read from the text.
    pub sid: Option<u32>,
    pub reason: RejectReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    Invalid(RuleError),
    /// Same gid:sid as a loaded rule with an equal or higher rev (Suricata keeps that one).
    Duplicate {
        kept_at: String,
        kept_rev: u32,
    },
    /// Replaced by a later rule with the same gid:sid and a higher rev (Suricata does the same).
    Superseded {
        by_at: String,
        by_rev: u32,
    },
    /// Rule text is not UTF-8.
    NotUtf8,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::Invalid(e) => write!(f, "{e}"),
            RejectReason::Duplicate { kept_at, kept_rev } => {
                write!(f, "duplicate sid: rev {kept_rev} at {kept_at} is kept")
            }
            RejectReason::Superseded { by_at, by_rev } => {
                write!(f, "superseded by rev {by_rev} at {by_at}")
            }
            RejectReason::NotUtf8 => write!(f, "rule text is not valid UTF-8"),
        }
    }
}

impl RejectReason {
    /// The keyword this rejection counts against.
    pub fn keyword(&self) -> &str {
        match self {
            RejectReason::Invalid(e) => e.keyword(),
            RejectReason::Duplicate { .. } | RejectReason::Superseded { .. } => "sid (duplicate)",
            RejectReason::NotUtf8 => "syntax",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        match self.sid {
            Some(sid) => write!(f, "sid {sid}: ")?,
            None => write!(f, "sid ?: ")?,
        }
        write!(f, "{}", self.reason)
    }
}

/// Two rules with one gid:sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateSid {
    pub gid: u32,
    pub sid: u32,
    pub kept: Location,
    pub dropped: Location,
}

/// A rule file that could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub reason: String,
}

/// How often a keyword appears in loaded and in rejected rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeywordUse {
    pub loaded: usize,
    pub rejected: usize,
}

/// Everything a load produced.
#[derive(Debug, Default)]
pub struct RuleSetReport {
    pub rules: Vec<Rule>,
    /// Where each of `rules` came from (same index).
    pub locations: Vec<Location>,
    pub rejected: Vec<Rejection>,
    /// Rejections per keyword they are attributed to ([`RuleError::keyword`]).
    pub rejected_by_keyword: BTreeMap<String, usize>,
    /// Keyword use in loaded and rejected rules, for measuring language coverage.
    pub keyword_use: BTreeMap<String, KeywordUse>,
    pub duplicates: Vec<DuplicateSid>,
    pub file_errors: Vec<FileError>,
    pub warnings: Vec<(Location, Warning)>,
}

impl RuleSetReport {
    /// `rules: N loaded, M rejected`
    pub fn summary_line(&self) -> String {
        format!(
            "rules: {} loaded, {} rejected",
            self.rules.len(),
            self.rejected.len()
        )
    }

    /// What `weir rules check` prints: one line per unreadable file and per rejected rule,
    /// then the summary line.
    pub fn write_report(&self, out: &mut dyn io::Write) -> io::Result<()> {
        for e in &self.file_errors {
            writeln!(out, "{}: {}", e.path.display(), e.reason)?;
        }
        for r in &self.rejected {
            writeln!(out, "{r}")?;
        }
        writeln!(out, "{}", self.summary_line())
    }

    /// Rejection counts by keyword, largest first.
    pub fn top_rejection_reasons(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = self
            .rejected_by_keyword
            .iter()
            .map(|(k, n)| (k.as_str(), *n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

struct Loader<'a> {
    vars: ResolvedVars,
    classification: &'a Classification,
    report: RuleSetReport,
    /// gid:sid to index in `slots`.
    by_sid: HashMap<(u32, u32), usize>,
    /// Loaded rules; `None` once superseded.
    slots: Vec<Option<(Rule, Location)>>,
}

/// Loads rule files in order. A bad rule rejects only itself; an unreadable file is listed in
/// [`RuleSetReport::file_errors`]. List files (`filemd5:...`) are found relative to the rule
/// file's directory.
pub fn load_rule_files<P: AsRef<Path>>(
    paths: &[P],
    vars: &Vars,
    classification: &Classification,
) -> RuleSetReport {
    let mut loader = Loader::new(vars, classification);
    for path in paths {
        let path = path.as_ref();
        match read_limited(path) {
            Ok(bytes) => loader.load_text(&bytes, path),
            Err(reason) => loader.report.file_errors.push(FileError {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }
    loader.finish()
}

/// Loads rules from text, reported as coming from `origin` (list files resolve next to it).
pub fn load_rules_from_str(
    text: &str,
    origin: &Path,
    vars: &Vars,
    classification: &Classification,
) -> RuleSetReport {
    let mut loader = Loader::new(vars, classification);
    loader.load_text(text.as_bytes(), origin);
    loader.finish()
}

fn read_limited(path: &Path) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_RULE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_RULE_FILE_BYTES {
        return Err(format!("larger than {MAX_RULE_FILE_BYTES} bytes"));
    }
    Ok(bytes)
}

impl<'a> Loader<'a> {
    fn new(vars: &Vars, classification: &'a Classification) -> Self {
        Loader {
            vars: vars.resolve(),
            classification,
            report: RuleSetReport::default(),
            by_sid: HashMap::new(),
            slots: Vec::new(),
        }
    }

    fn load_text(&mut self, bytes: &[u8], path: &Path) {
        let file = Arc::new(path.to_path_buf());
        let base_dir = path.parent();
        let mut pending: Vec<u8> = Vec::new();
        let mut pending_line = 0;
        for (index, raw_line) in bytes.split(|&b| b == b'\n').enumerate() {
            let line_no = index + 1;
            let line = trim_end_bytes(raw_line);
            if pending.is_empty() {
                let start = trim_start_bytes(line);
                if start.is_empty() || start[0] == b'#' {
                    continue;
                }
                pending_line = line_no;
            }
            // A trailing backslash continues the rule on the next line.
            if let Some(without) = line.strip_suffix(b"\\") {
                pending.extend_from_slice(without);
                if pending.len() <= super::lexer::MAX_RULE_LEN {
                    continue;
                }
            } else {
                pending.extend_from_slice(line);
            }
            let text = std::mem::take(&mut pending);
            self.load_one(
                &text,
                Location {
                    file: file.clone(),
                    line: pending_line,
                },
                base_dir,
            );
        }
        if !pending.is_empty() {
            let text = std::mem::take(&mut pending);
            self.load_one(
                &text,
                Location {
                    file,
                    line: pending_line,
                },
                base_dir,
            );
        }
    }

    fn load_one(&mut self, bytes: &[u8], at: Location, base_dir: Option<&Path>) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            let sid = sniff_sid(&String::from_utf8_lossy(bytes));
            self.reject(at, sid, RejectReason::NotUtf8);
            return;
        };
        let keywords = keywords_of(text);
        match parse_rule(text, &self.vars, self.classification, base_dir) {
            Ok((rule, warnings)) => {
                for w in warnings {
                    self.report.warnings.push((at.clone(), w));
                }
                if self.insert(rule, at) {
                    self.count_keywords(&keywords, true);
                } else {
                    self.count_keywords(&keywords, false);
                }
            }
            Err(e) => {
                self.count_keywords(&keywords, false);
                self.reject(at, sniff_sid(text), RejectReason::Invalid(e));
            }
        }
    }

    fn count_keywords(&mut self, keywords: &[String], loaded: bool) {
        for k in keywords {
            let entry = self.report.keyword_use.entry(k.clone()).or_default();
            if loaded {
                entry.loaded += 1;
            } else {
                entry.rejected += 1;
            }
        }
    }

    fn reject(&mut self, at: Location, sid: Option<u32>, reason: RejectReason) {
        *self
            .report
            .rejected_by_keyword
            .entry(reason.keyword().to_string())
            .or_default() += 1;
        self.report.rejected.push(Rejection {
            file: at.file,
            line: at.line,
            sid,
            reason,
        });
    }

    /// Adds a parsed rule, applying Suricata's duplicate policy: of two rules with one gid:sid
    /// the higher rev wins, and on equal revs the first loaded stays. Returns whether `rule`
    /// was kept.
    fn insert(&mut self, rule: Rule, at: Location) -> bool {
        let key = (rule.gid, rule.sid);
        let Some(&index) = self.by_sid.get(&key) else {
            self.by_sid.insert(key, self.slots.len());
            self.slots.push(Some((rule, at)));
            return true;
        };
        let Some((old, old_at)) = self.slots.get(index).and_then(|s| s.as_ref()) else {
            return false;
        };
        let (old_rev, old_at) = (old.rev, old_at.clone());
        if rule.rev <= old_rev {
            self.report.duplicates.push(DuplicateSid {
                gid: key.0,
                sid: key.1,
                kept: old_at.clone(),
                dropped: at.clone(),
            });
            self.reject(
                at,
                Some(key.1),
                RejectReason::Duplicate {
                    kept_at: old_at.to_string(),
                    kept_rev: old_rev,
                },
            );
            return false;
        }
        self.report.duplicates.push(DuplicateSid {
            gid: key.0,
            sid: key.1,
            kept: at.clone(),
            dropped: old_at.clone(),
        });
        self.reject(
            old_at,
            Some(key.1),
            RejectReason::Superseded {
                by_at: at.to_string(),
                by_rev: rule.rev,
            },
        );
        self.by_sid.insert(key, self.slots.len());
        if let Some(slot) = self.slots.get_mut(index) {
            *slot = None;
        }
        self.slots.push(Some((rule, at)));
        true
    }

    fn finish(mut self) -> RuleSetReport {
        for (rule, at) in self.slots.into_iter().flatten() {
            self.report.rules.push(rule);
            self.report.locations.push(at);
        }
        self.report
    }
}

fn trim_end_bytes(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn trim_start_bytes(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// The option keywords of a rule's text, lower case, for coverage counts (empty when the
/// text does not split).
fn keywords_of(text: &str) -> Vec<String> {
    match split_rule(text.trim()) {
        Ok(raw) => raw
            .options
            .iter()
            .map(|o| o.keyword.to_ascii_lowercase())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Best-effort sid of a rule that failed to parse, for the rejection line.
fn sniff_sid(text: &str) -> Option<u32> {
    let mut rest = text;
    while let Some(pos) = rest.find("sid") {
        let before_ok = pos == 0
            || !rest.as_bytes()[pos - 1].is_ascii_alphanumeric()
                && rest.as_bytes()[pos - 1] != b'_';
        let after = rest[pos + 3..].trim_start();
        if let (true, Some(value)) = (before_ok, after.strip_prefix(':')) {
            let digits: String = value
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(sid) = digits.parse() {
                return Some(sid);
            }
        }
        rest = &rest[pos + 3..];
    }
    None
}
