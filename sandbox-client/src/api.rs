//! The sandbox REST APIs (SPEC section 6): CAPEv2 `/apiv2/` and Cuckoo 2.
//!
//! Every answer is read with a byte limit and parsed leniently (numbers may come as strings, fields
//! may be missing); anything else is a typed [`ApiError`] that says whether a retry can help.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode, multipart};
use serde_json::Value;

use crate::config::{ApiKind, SandboxConfig};

/// Largest small answer read (task creation, status, view, search).
pub const MAX_SMALL_RESPONSE: usize = 1 << 20;
/// Redirects followed before a request fails: a sandbox behind a proxy may redirect once or twice;
/// more is a loop.
pub const MAX_REDIRECTS: usize = 3;
/// Longest `Retry-After` honoured; a larger value is clamped so a bad header cannot park the queue.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("sandbox unreachable: {0}")]
    Unreachable(String),
    #[error("sandbox request timed out")]
    Timeout,
    #[error("sandbox redirected more than {MAX_REDIRECTS} times (a redirect loop?)")]
    Redirects,
    #[error("sandbox rate limit (HTTP 429)")]
    RateLimited { retry_after: Option<Duration> },
    #[error("sandbox server error HTTP {status}")]
    Server { status: u16 },
    #[error("sandbox refused the token (HTTP {status}): check [sandbox] token")]
    Auth { status: u16 },
    #[error("sandbox rejected the request (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("sandbox answer is not the JSON expected: {0}")]
    Garbage(String),
    #[error("sandbox answer is larger than the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("sandbox has no task {0}")]
    NoSuchTask(u64),
}

impl ApiError {
    /// Whether the sandbox looks down or overloaded, which feeds the circuit breaker.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            ApiError::Unreachable(_)
                | ApiError::Timeout
                | ApiError::Server { .. }
                | ApiError::RateLimited { .. }
        )
    }
}

/// A task's state as the sandbox reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskStatus {
    /// Queued, running, or finished but not yet reported.
    InProgress(String),
    Reported,
    /// `failed_analysis`, `failed_processing`, `failed_reporting`, ...
    Failed(String),
}

/// What the report says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub score: Option<f64>,
    pub family: Option<String>,
    /// Set when the report could not be read whole (too large) and only the task view was used.
    pub partial: Option<String>,
}

/// One sandbox endpoint.
pub struct SandboxApi {
    client: Client,
    kind: ApiKind,
    /// The API root with a trailing slash, plus `apiv2/` for CAPE.
    base: String,
    max_report: u64,
}

impl SandboxApi {
    pub fn new(c: &SandboxConfig) -> Result<SandboxApi, String> {
        // reqwest is built without a default crypto provider; installing ring twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut headers = HeaderMap::new();
        let scheme = match c.api {
            ApiKind::Cape => "Token",
            ApiKind::Cuckoo => "Bearer",
        };
        if !c.token.is_empty() {
            let mut v = HeaderValue::from_str(&format!("{scheme} {}", c.token)).map_err(|_| {
                "sandbox.token has characters not allowed in an HTTP header".to_string()
            })?;
            v.set_sensitive(true);
            headers.insert(AUTHORIZATION, v);
        }
        let mut builder = Client::builder()
            .default_headers(headers)
            .user_agent(concat!("weir/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(c.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(c.timeout_secs.clamp(1, 10)))
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS));
        if let Some(ca) = &c.ca {
            let pem = std::fs::read(ca).map_err(|e| format!("sandbox.ca {}: {e}", ca.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("sandbox.ca {}: {e}", ca.display()))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| format!("sandbox HTTP client: {e}"))?;
        let mut base = c.url.clone();
        if !base.ends_with('/') {
            base.push('/');
        }
        if c.api == ApiKind::Cape {
            base.push_str("apiv2/");
        }
        Ok(SandboxApi {
            client,
            kind: c.api,
            base,
            max_report: c.max_report_bytes,
        })
    }

    pub fn kind(&self) -> ApiKind {
        self.kind
    }

    /// Submits a file; returns the task id.
    pub async fn submit_file(&self, name: &str, bytes: Vec<u8>) -> Result<u64, ApiError> {
        let part = multipart::Part::bytes(bytes).file_name(safe_file_name(name));
        let form = multipart::Form::new().part("file", part);
        let path = match self.kind {
            ApiKind::Cape => "tasks/create/file/",
            ApiKind::Cuckoo => "tasks/create/file",
        };
        let v = self
            .send_json(
                self.client.post(self.url(path)).multipart(form),
                MAX_SMALL_RESPONSE as u64,
            )
            .await?;
        self.task_id(&v)
    }

    /// Submits a URL; returns the task id.
    pub async fn submit_url(&self, url: &str) -> Result<u64, ApiError> {
        let path = match self.kind {
            ApiKind::Cape => "tasks/create/url/",
            ApiKind::Cuckoo => "tasks/create/url",
        };
        let req = self.client.post(self.url(path)).form(&[("url", url)]);
        let v = self.send_json(req, MAX_SMALL_RESPONSE as u64).await?;
        self.task_id(&v)
    }

    pub async fn status(&self, task: u64) -> Result<TaskStatus, ApiError> {
        let status = match self.kind {
            ApiKind::Cape => {
                let v = self
                    .get_json(&format!("tasks/status/{task}/"), MAX_SMALL_RESPONSE as u64)
                    .await?;
                cape_ok(&v, task)?;
                v.get("data").and_then(Value::as_str).map(str::to_string)
            }
            ApiKind::Cuckoo => {
                let v = self
                    .get_json(&format!("tasks/view/{task}"), MAX_SMALL_RESPONSE as u64)
                    .await
                    .map_err(|e| match e {
                        ApiError::Rejected { status: 404, .. } => ApiError::NoSuchTask(task),
                        e => e,
                    })?;
                v.pointer("/task/status")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }
        };
        let status = status.ok_or_else(|| ApiError::Garbage("no task status".into()))?;
        Ok(match status.as_str() {
            "reported" => TaskStatus::Reported,
            s if s.starts_with("failed") => TaskStatus::Failed(status),
            _ => TaskStatus::InProgress(status),
        })
    }

    /// The verdict of a reported task. A report over the size limit is abandoned for the task
    /// view, which has no score: the result says so in `partial`.
    pub async fn report(&self, task: u64) -> Result<Report, ApiError> {
        let path = match self.kind {
            ApiKind::Cape => format!("tasks/get/report/{task}/"),
            ApiKind::Cuckoo => format!("tasks/report/{task}"),
        };
        match self.get_json(&path, self.max_report).await {
            Ok(v) => {
                if self.kind == ApiKind::Cape
                    && v.get("error").and_then(Value::as_bool) == Some(true)
                {
                    cape_ok(&v, task)?;
                }
                Ok(parse_report(&v))
            }
            Err(ApiError::TooLarge { limit }) => {
                tracing::error!(
                    task,
                    limit,
                    "sandbox report is over the size limit; using the task view without a score"
                );
                let view = match self.kind {
                    ApiKind::Cape => format!("tasks/view/{task}/"),
                    ApiKind::Cuckoo => format!("tasks/view/{task}"),
                };
                let v = self.get_json(&view, MAX_SMALL_RESPONSE as u64).await?;
                let mut r = Report {
                    partial: Some(format!("report over {limit} bytes")),
                    ..Report::default()
                };
                // CAPE's task view may carry the detections the report would.
                if let Some(f) = family_of(v.get("data").unwrap_or(&v)) {
                    r.family = Some(f);
                }
                Ok(r)
            }
            Err(e) => Err(e),
        }
    }

    /// The newest task for a file's SHA-256, when the API can search (CAPE); lets a restart after a
    /// crash adopt a submission whose answer it never saw instead of submitting again.
    pub async fn find_file_task(&self, sha256_hex: &str) -> Result<Option<u64>, ApiError> {
        if self.kind != ApiKind::Cape {
            return Ok(None);
        }
        let v = self
            .get_json(
                &format!("tasks/search/sha256/{sha256_hex}/"),
                MAX_SMALL_RESPONSE as u64,
            )
            .await?;
        let Some(list) = v.get("data").and_then(Value::as_array) else {
            return Ok(None);
        };
        Ok(list
            .iter()
            .filter_map(|t| t.get("id").and_then(as_u64))
            .max())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get_json(&self, path: &str, limit: u64) -> Result<Value, ApiError> {
        self.send_json(self.client.get(self.url(path)), limit).await
    }

    async fn send_json(&self, req: reqwest::RequestBuilder, limit: u64) -> Result<Value, ApiError> {
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = resp
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
            return Err(ApiError::RateLimited { retry_after });
        }
        if status.is_server_error() {
            return Err(ApiError::Server {
                status: status.as_u16(),
            });
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ApiError::Auth {
                status: status.as_u16(),
            });
        }
        if status.is_redirection() {
            return Err(ApiError::Redirects);
        }
        if resp.content_length().is_some_and(|n| n > limit) {
            return Err(ApiError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(ApiError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        if status == StatusCode::NOT_FOUND || !status.is_success() {
            let message = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(ApiError::Rejected {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&body).map_err(|e| ApiError::Garbage(e.to_string()))
    }

    fn task_id(&self, v: &Value) -> Result<u64, ApiError> {
        let id = match self.kind {
            ApiKind::Cape => {
                if v.get("error").and_then(Value::as_bool) == Some(true) {
                    return Err(ApiError::Rejected {
                        status: 200,
                        message: error_message(v),
                    });
                }
                v.pointer("/data/task_ids/0")
                    .and_then(as_u64)
                    .or_else(|| v.pointer("/data/task_id").and_then(as_u64))
            }
            ApiKind::Cuckoo => v
                .get("task_id")
                .and_then(as_u64)
                .or_else(|| v.pointer("/task_ids/0").and_then(as_u64)),
        };
        id.ok_or_else(|| ApiError::Garbage("no task id in the answer".into()))
    }
}

fn cape_ok(v: &Value, task: u64) -> Result<(), ApiError> {
    if v.get("error").and_then(Value::as_bool) == Some(true) {
        let message = error_message(v);
        if message.to_ascii_lowercase().contains("does not exist")
            || message.to_ascii_lowercase().contains("not found")
        {
            return Err(ApiError::NoSuchTask(task));
        }
        return Err(ApiError::Rejected {
            status: 200,
            message,
        });
    }
    Ok(())
}

fn error_message(v: &Value) -> String {
    let m = v
        .get("error_value")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("errors"))
        .cloned()
        .unwrap_or(Value::Null);
    let s = match m {
        Value::String(s) => s,
        other => other.to_string(),
    };
    s.chars().take(200).collect()
}

/// CAPE reports carry `malscore` and `detections` (or the older `malfamily`); Cuckoo's
/// `info.score`.
fn parse_report(v: &Value) -> Report {
    let score = v
        .get("malscore")
        .and_then(as_f64)
        .or_else(|| v.pointer("/info/score").and_then(as_f64))
        .or_else(|| v.pointer("/data/malscore").and_then(as_f64));
    Report {
        score,
        family: family_of(v),
        partial: None,
    }
}

fn family_of(v: &Value) -> Option<String> {
    let from_detections = match v.get("detections") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Array(a)) => a.iter().find_map(|d| match d {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Object(o) => o.get("family").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }),
        _ => None,
    };
    from_detections
        .or_else(|| {
            v.get("malfamily")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
        .map(|s| s.chars().take(128).collect())
}

fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|f: &f64| f.is_finite())
}

/// The wire name is attacker-chosen: keep the base name's visible characters only.
fn safe_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '\\' | '/'))
        .take(128)
        .collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        "sample.bin".into()
    } else {
        clean
    }
}

fn transport(e: reqwest::Error) -> ApiError {
    if e.is_timeout() {
        ApiError::Timeout
    } else if e.is_redirect() {
        ApiError::Redirects
    } else {
        // The error chain, never a URL with credentials: reqwest's URL has no token (it is a header).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        ApiError::Unreachable(msg)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reports_of_both_apis_parse() {
        let cape = json!({"malscore": 8.5, "detections": [{"family": "Emotet", "details": []}], "info": {"id": 3}});
        assert_eq!(
            parse_report(&cape),
            Report {
                score: Some(8.5),
                family: Some("Emotet".into()),
                partial: None
            }
        );
        let old_cape = json!({"malscore": "2.0", "malfamily": "AgentTesla"});
        assert_eq!(
            parse_report(&old_cape),
            Report {
                score: Some(2.0),
                family: Some("AgentTesla".into()),
                partial: None
            }
        );
        let cuckoo = json!({"info": {"score": 5.6, "id": 9}, "signatures": []});
        assert_eq!(
            parse_report(&cuckoo),
            Report {
                score: Some(5.6),
                family: None,
                partial: None
            }
        );
        assert_eq!(parse_report(&json!({"malscore": "NaN"})).score, None);
        assert_eq!(parse_report(&json!([1, 2])), Report::default());
    }

    #[test]
    fn wire_names_are_made_safe() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("C:\\x\\in\"voice\r\n.exe"), "invoice.exe");
        assert_eq!(safe_file_name(".."), "sample.bin");
        assert_eq!(safe_file_name(""), "sample.bin");
    }
}
