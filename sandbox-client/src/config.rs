//! The `[sandbox]` section.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Which REST API the sandbox speaks (SPEC section 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKind {
    /// CAPEv2 `/apiv2/`, `Authorization: Token <token>`.
    #[default]
    Cape,
    /// Cuckoo 2, `Authorization: Bearer <token>`.
    Cuckoo,
}

impl ApiKind {
    pub fn name(self) -> &'static str {
        match self {
            ApiKind::Cape => "cape",
            ApiKind::Cuckoo => "cuckoo",
        }
    }
}

/// `[sandbox]`: every key optional; the defaults are documented on each field.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Off unless set.
    pub enabled: bool,
    pub api: ApiKind,
    /// The API root; `apiv2/...` is appended for CAPE. Default `http://127.0.0.1:8000/`.
    pub url: String,
    pub token: String,
    /// PEM file of CA certificates trusted for an `https` URL, besides the system's.
    pub ca: Option<PathBuf>,
    /// Where the spool and the verdict cache live. Default `/var/lib/weir/sandbox`.
    pub spool_dir: PathBuf,

    /// File types to submit, by magic bytes: `pe`, `elf`, `macho`, `pdf`, `ole` (legacy Office),
    /// `ooxml`, `zip`, `rar`, `7z`, `gzip`, `rtf`, `script`. Default: executables, documents and
    /// archives (all but `gzip` and `script`).
    pub types: Vec<String>,
    /// File name extensions (lower case, no dot) submitted whatever their content. Default: `exe`,
    /// `dll`, `scr`, `js`, `jse`, `vbs`, `vbe`, `ps1`, `hta`, `bat`, `cmd`, `lnk`, `msi`, `jar`.
    pub extensions: Vec<String>,
    /// Smallest file submitted, bytes. Default 64.
    pub min_size: u64,
    /// Largest file submitted, bytes; also bounds the memory one upload takes. Default 32 MiB.
    pub max_size: u64,
    /// Submit truncated files (missing bytes)? Default false: a sandbox cannot run half a file.
    pub submit_truncated: bool,
    /// Where URLs are taken from: `http` (request URLs and redirects), `email` (links in
    /// messages). Default `["email"]`.
    pub urls_from: Vec<String>,
    /// App-layer protocols whose artifacts are considered (`http`, `smtp`, `ftp`, ...); empty: all.
    pub protocols: Vec<String>,

    /// Requests in flight at once. Default 2.
    pub concurrency: usize,
    /// Submissions per minute. Default 60 (CAPE's own per-user limits answer 429, which backs off).
    pub submissions_per_minute: u32,
    /// Whole-request timeout, seconds. Default 60.
    pub timeout_secs: u64,
    /// Between two status polls of a task, milliseconds. Default 10 000.
    pub poll_interval_ms: u64,
    /// A task not reported after this long is given up with a `timeout` record. Default 3600.
    pub analysis_timeout_secs: u64,
    /// First retry delay, milliseconds; doubles per failure, with jitter. Default 1000.
    pub backoff_base_ms: u64,
    /// Longest retry delay, seconds. Default 300.
    pub backoff_max_secs: u64,
    /// Consecutive failures that open the circuit. Default 5.
    pub circuit_failures: u32,
    /// How long an open circuit stops all requests, milliseconds. Default 30 000.
    pub circuit_cooldown_ms: u64,
    /// Largest report read, bytes; larger ones fall back to the task view. Default 64 MiB.
    pub max_report_bytes: u64,
    /// A score at or above this is `malicious` (CAPE malscore and Cuckoo score are 0..10). Default 7.
    pub malicious_score: f64,
    /// A score at or above this is `suspicious`. Default 4.
    pub suspicious_score: f64,

    /// Artifacts waiting for the dispatcher in memory before the capture side spills to the spool.
    /// Default 1024.
    pub queue_capacity: usize,
    /// Undelivered items older than this are dropped with a record. Default 21.
    pub retention_days: u64,
    /// Spool size cap, bytes. Default 1 GiB.
    pub spool_max_bytes: u64,
    /// Verdicts are reused for this long. Default 7 days.
    pub verdict_ttl_days: u64,
    /// Verdicts kept in memory. Default 10 000.
    pub verdict_cache_entries: usize,
    /// How long `weir replay` waits for in-flight submissions before it exits. Default 300.
    pub replay_wait_secs: u64,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            enabled: false,
            api: ApiKind::Cape,
            url: "http://127.0.0.1:8000/".into(),
            token: String::new(),
            ca: None,
            spool_dir: PathBuf::from("/var/lib/weir/sandbox"),
            types: [
                "pe", "elf", "macho", "pdf", "ole", "ooxml", "zip", "rar", "7z", "rtf",
            ]
            .map(String::from)
            .to_vec(),
            extensions: [
                "exe", "dll", "scr", "js", "jse", "vbs", "vbe", "ps1", "hta", "bat", "cmd", "lnk",
                "msi", "jar",
            ]
            .map(String::from)
            .to_vec(),
            min_size: 64,
            max_size: 32 << 20,
            submit_truncated: false,
            urls_from: vec!["email".into()],
            protocols: Vec::new(),
            concurrency: 2,
            submissions_per_minute: 60,
            timeout_secs: 60,
            poll_interval_ms: 10_000,
            analysis_timeout_secs: 3600,
            backoff_base_ms: 1000,
            backoff_max_secs: 300,
            circuit_failures: 5,
            circuit_cooldown_ms: 30_000,
            max_report_bytes: 64 << 20,
            malicious_score: 7.0,
            suspicious_score: 4.0,
            queue_capacity: 1024,
            retention_days: 21,
            spool_max_bytes: 1 << 30,
            verdict_ttl_days: 7,
            verdict_cache_entries: 10_000,
            replay_wait_secs: 300,
        }
    }
}

/// Known values of `types`.
pub const FILE_TYPES: &[&str] = &[
    "pe", "elf", "macho", "pdf", "ole", "ooxml", "zip", "rar", "7z", "gzip", "rtf", "script",
];

impl SandboxConfig {
    /// Every problem at once, one line each.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            errors.push(format!(
                "sandbox.url {:?}: must start with http:// or https://",
                self.url
            ));
        }
        for t in &self.types {
            if !FILE_TYPES.contains(&t.as_str()) {
                errors.push(format!(
                    "sandbox.types: unknown type {t:?} (known: {})",
                    FILE_TYPES.join(", ")
                ));
            }
        }
        for u in &self.urls_from {
            if u != "http" && u != "email" {
                errors.push(format!(
                    "sandbox.urls_from: unknown source {u:?} (http, email)"
                ));
            }
        }
        if self.concurrency == 0 {
            errors.push("sandbox.concurrency must be at least 1".into());
        }
        if self.submissions_per_minute == 0 {
            errors.push("sandbox.submissions_per_minute must be at least 1".into());
        }
        if self.queue_capacity == 0 {
            errors.push("sandbox.queue_capacity must be at least 1".into());
        }
        if self.min_size > self.max_size {
            errors.push("sandbox.min_size is larger than sandbox.max_size".into());
        }
        if self.suspicious_score > self.malicious_score {
            errors.push("sandbox.suspicious_score is above sandbox.malicious_score".into());
        }
        errors
    }

    pub(crate) fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spec_example_and_rejects_unknown_keys() {
        let c: SandboxConfig = toml_like(
            r#"{"enabled": true, "api": "cuckoo", "url": "http://127.0.0.1:8090/", "token": "secret", "spool_dir": "/tmp/x"}"#,
        );
        assert!(c.enabled);
        assert_eq!(c.api, ApiKind::Cuckoo);
        assert_eq!(c.concurrency, 2);
        assert!(c.validate().is_empty());
        let err = serde_json::from_str::<SandboxConfig>(r#"{"enabeld": true}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `enabeld`"), "{err}");
    }

    #[test]
    fn validation_reports_every_error() {
        let c = SandboxConfig {
            url: "ftp://x".into(),
            types: vec!["pe".into(), "exe".into()],
            concurrency: 0,
            ..SandboxConfig::default()
        };
        assert_eq!(c.validate().len(), 3, "{:?}", c.validate());
    }

    fn toml_like(json: &str) -> SandboxConfig {
        serde_json::from_str(json).unwrap()
    }
}
