//! Protocol v1 vocabulary shared by the sensor side ([`crate::Link`]) and the reference receiver
//! ([`crate::receiver`]): paths, headers, limits, and the policy and manifest documents.
//! `docs/protocol-v1.md` is the prose contract; this module is its code.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Every v1 path starts with this, followed by `/{sensor_id}/...`.
pub const API_PREFIX: &str = "/api/v1/sensors";
/// Header carrying a batch's idempotency key (IETF draft "The Idempotency-Key HTTP Header Field").
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Header naming the protocol version of the sender; a receiver answers with its own.
pub const PROTOCOL_HEADER: &str = "weir-protocol";
pub const PROTOCOL_VERSION: &str = "1";
/// Longest sensor id; ids are also directory names on the Central Node.
pub const MAX_SENSOR_ID: usize = 64;
/// Longest idempotency key.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Largest event batch body a receiver accepts (413 beyond).
pub const MAX_EVENT_BATCH_BYTES: usize = 16 << 20;
/// Largest file or email a receiver accepts and a sensor uploads (413 beyond).
pub const MAX_UPLOAD_BYTES: u64 = 256 << 20;
/// Largest health, policy or manifest document.
pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Most files one update manifest may list.
pub const MAX_MANIFEST_FILES: usize = 64;
/// Largest single update file (a full ET ruleset is ~40 MiB; reputation feeds are larger).
pub const MAX_UPDATE_FILE_BYTES: u64 = 512 << 20;
/// Sensor ids that would collide with the receiver's configuration folders in `DIR`.
pub const RESERVED_SENSOR_IDS: [&str; 2] = ["policy", "updates"];

/// A sensor id: 1..=64 bytes of `[A-Za-z0-9._-]`, not starting with `.`, not reserved.
pub fn valid_sensor_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SENSOR_ID
        && !id.starts_with('.')
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !RESERVED_SENSOR_IDS.contains(&id)
}

/// An idempotency key: 1..=128 bytes of `[A-Za-z0-9._:-]`.
pub fn valid_idempotency_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_IDEMPOTENCY_KEY
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// An update or file name: same alphabet as a sensor id, so it is a safe single path component.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What kind of database an update carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpdateKind {
    Rules,
    Reputation,
    Ioc,
}

impl UpdateKind {
    pub const ALL: [UpdateKind; 3] = [UpdateKind::Rules, UpdateKind::Reputation, UpdateKind::Ioc];

    /// The path segment and folder name.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Rules => "rules",
            UpdateKind::Reputation => "reputation",
            UpdateKind::Ioc => "ioc",
        }
    }

    pub fn parse(s: &str) -> Option<UpdateKind> {
        UpdateKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// `GET .../policy`: what the Central Node tells a sensor. Unknown fields are ignored (and logged
/// by the sensor) so a newer CN can add fields within v1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    #[serde(default)]
    pub license: Option<License>,
    #[serde(default)]
    pub exclusions: Exclusions,
}

impl Policy {
    /// Top-level and nested field names this version understands, for warning about the rest.
    pub(crate) fn unknown_fields(value: &serde_json::Value) -> Vec<String> {
        let mut unknown = Vec::new();
        let Some(top) = value.as_object() else { return unknown };
        for (k, v) in top {
            match k.as_str() {
                "license" => {
                    if let Some(o) = v.as_object() {
                        unknown.extend(o.keys().filter(|k| !License::FIELDS.contains(&k.as_str())).map(|k| format!("license.{k}")));
                    }
                }
                "exclusions" => {
                    if let Some(o) = v.as_object() {
                        unknown.extend(
                            o.keys().filter(|k| !Exclusions::FIELDS.contains(&k.as_str())).map(|k| format!("exclusions.{k}")),
                        );
                    }
                }
                other => unknown.push(other.to_string()),
            }
        }
        unknown
    }
}

/// The license a policy carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct License {
    #[serde(default)]
    pub id: String,
    /// UTC expiry, RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`.
    pub expires: String,
    /// Functions the license enables: `sandbox`, `reputation`, `central`, ... (open list).
    #[serde(default)]
    pub features: Vec<String>,
}

impl License {
    const FIELDS: [&'static str; 3] = ["id", "expires", "features"];
}

/// Scan exclusions (SPEC section 7): what must not be extracted, dispatched or alerted on. Each
/// list is matched by the binary; this crate carries and merges them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusions {
    /// Source or destination IP or CIDR.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub hosts: Vec<String>,
    /// URL masks (`*` wildcard).
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub md5: Vec<String>,
    #[serde(default)]
    pub sha256: Vec<String>,
    #[serde(default)]
    pub file_types: Vec<String>,
    #[serde(default)]
    pub email_senders: Vec<String>,
    #[serde(default)]
    pub email_recipients: Vec<String>,
    #[serde(default)]
    pub user_agents: Vec<String>,
}

impl Exclusions {
    const FIELDS: [&'static str; 9] =
        ["ips", "hosts", "urls", "md5", "sha256", "file_types", "email_senders", "email_recipients", "user_agents"];

    /// The union of two sets (local `[exclusions]` and the CN's), each list in first-seen order
    /// without repeats.
    pub fn merged(&self, other: &Exclusions) -> Exclusions {
        fn union(a: &[String], b: &[String]) -> Vec<String> {
            let mut out: Vec<String> = Vec::with_capacity(a.len() + b.len());
            for s in a.iter().chain(b) {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
            out
        }
        Exclusions {
            ips: union(&self.ips, &other.ips),
            hosts: union(&self.hosts, &other.hosts),
            urls: union(&self.urls, &other.urls),
            md5: union(&self.md5, &other.md5),
            sha256: union(&self.sha256, &other.sha256),
            file_types: union(&self.file_types, &other.file_types),
            email_senders: union(&self.email_senders, &other.email_senders),
            email_recipients: union(&self.email_recipients, &other.email_recipients),
            user_agents: union(&self.user_agents, &other.user_agents),
        }
    }
}

/// The license as the sensor sees it at a moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LicenseState {
    /// No policy, or a policy without a license, has been received.
    Unknown,
    /// The expiry could not be read: treated as expired, so nothing is silently enabled.
    Invalid { reason: String },
    Valid { expires: String, features: Vec<String> },
    /// Valid, and expiring within the warning window.
    Expiring { expires: String, features: Vec<String>, seconds_left: u64 },
    /// Past its expiry: the features it listed are to be disabled by the binary.
    Expired { expires: String, disabled: Vec<String> },
}

impl LicenseState {
    /// Evaluates `license` at `now`, warning `warn_before` the expiry.
    pub fn evaluate(license: Option<&License>, now: SystemTime, warn_before: Duration) -> LicenseState {
        let Some(l) = license else { return LicenseState::Unknown };
        let Some(expiry) = parse_rfc3339_utc(&l.expires) else {
            return LicenseState::Invalid { reason: format!("expiry {:?} is not YYYY-MM-DDTHH:MM:SSZ", l.expires) };
        };
        let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if now_secs >= expiry {
            LicenseState::Expired { expires: l.expires.clone(), disabled: l.features.clone() }
        } else if expiry - now_secs <= warn_before.as_secs() {
            LicenseState::Expiring { expires: l.expires.clone(), features: l.features.clone(), seconds_left: expiry - now_secs }
        } else {
            LicenseState::Valid { expires: l.expires.clone(), features: l.features.clone() }
        }
    }

    /// Whether `feature` may be used in this state.
    pub fn allows(&self, feature: &str) -> bool {
        match self {
            LicenseState::Valid { features, .. } | LicenseState::Expiring { features, .. } => {
                features.iter().any(|f| f == feature)
            }
            _ => false,
        }
    }
}

/// `GET .../updates/{kind}`: the files of one update and their hashes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub kind: UpdateKind,
    /// Opaque version chosen by the CN; shown in reports.
    pub version: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub name: String,
    /// Lower-case hex SHA-256 of the file.
    pub sha256: String,
    pub size: u64,
}

impl Manifest {
    /// Checks the limits and names a sensor relies on before downloading anything.
    pub fn check(&self, expected: UpdateKind) -> Result<(), String> {
        if self.kind != expected {
            return Err(format!("manifest is for {} not {}", self.kind.as_str(), expected.as_str()));
        }
        if self.files.is_empty() || self.files.len() > MAX_MANIFEST_FILES {
            return Err(format!("manifest lists {} files (1..={MAX_MANIFEST_FILES})", self.files.len()));
        }
        if self.version.is_empty() || self.version.len() > 128 {
            return Err("manifest version is empty or longer than 128 bytes".into());
        }
        for (i, f) in self.files.iter().enumerate() {
            if !valid_file_name(&f.name) {
                return Err(format!("manifest file {i} has an unsafe name"));
            }
            if self.files[..i].iter().any(|g| g.name == f.name) {
                return Err(format!("manifest names {} twice", f.name));
            }
            if weir_spool::unhex32(&f.sha256).is_none() {
                return Err(format!("manifest sha256 of {} is not 64 hex digits", f.name));
            }
            if f.size > MAX_UPDATE_FILE_BYTES {
                return Err(format!("{} is {} bytes, over the {MAX_UPDATE_FILE_BYTES}-byte limit", f.name, f.size));
            }
        }
        Ok(())
    }
}

/// Seconds since the UNIX epoch of `YYYY-MM-DDTHH:MM:SS[.fraction]Z`; `None` for anything else.
pub fn parse_rfc3339_utc(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &s[19..];
    let rest = match rest.strip_prefix('.') {
        Some(frac) => {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            &frac[digits..]
        }
        None => rest,
    };
    if !(rest == "Z" || rest == "z") {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if year < 1970 || !(1..=12).contains(&month) || day == 0 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm, proleptic Gregorian).
    let y = if month <= 2 { year - 1 } else { year } as i64;
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days).ok().map(|d| d * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_parses_utc_and_refuses_the_rest() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_utc("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        assert_eq!(parse_rfc3339_utc("2027-01-01T00:00:00.5Z"), Some(1_798_761_600));
        assert_eq!(parse_rfc3339_utc("2023-02-29T12:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2024-01-01T00:00:00+01:00"), None);
        assert_eq!(parse_rfc3339_utc("2024-01-01 00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("2024-1-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339_utc("soon"), None);
    }

    #[test]
    fn license_states_follow_the_clock() {
        let lic = License { id: "L1".into(), expires: "2027-01-01T00:00:00Z".into(), features: vec!["sandbox".into()] };
        let at = |s: &str| UNIX_EPOCH + Duration::from_secs(parse_rfc3339_utc(s).unwrap());
        let week = Duration::from_secs(7 * 86_400);
        let valid = LicenseState::evaluate(Some(&lic), at("2026-12-01T00:00:00Z"), week);
        assert!(matches!(valid, LicenseState::Valid { .. }));
        assert!(valid.allows("sandbox") && !valid.allows("reputation"));
        assert_eq!(
            LicenseState::evaluate(Some(&lic), at("2026-12-31T00:00:00Z"), week),
            LicenseState::Expiring { expires: lic.expires.clone(), features: vec!["sandbox".into()], seconds_left: 86_400 }
        );
        let expired = LicenseState::evaluate(Some(&lic), at("2027-01-01T00:00:00Z"), week);
        assert_eq!(expired, LicenseState::Expired { expires: lic.expires.clone(), disabled: vec!["sandbox".into()] });
        assert!(!expired.allows("sandbox"));
        assert_eq!(LicenseState::evaluate(None, at("2026-01-01T00:00:00Z"), week), LicenseState::Unknown);
        let bad = License { expires: "next year".into(), ..lic };
        assert!(matches!(LicenseState::evaluate(Some(&bad), at("2026-01-01T00:00:00Z"), week), LicenseState::Invalid { .. }));
    }

    #[test]
    fn policy_with_unknown_fields_parses_and_names_them() {
        let text = r#"{"license":{"expires":"2027-01-01T00:00:00Z","features":["sandbox"],"seats":4},
            "exclusions":{"ips":["10.0.0.0/8"],"colours":["red"]},"v2_thing":1}"#;
        let value: serde_json::Value = serde_json::from_str(text).unwrap();
        let policy: Policy = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(policy.exclusions.ips, vec!["10.0.0.0/8"]);
        assert_eq!(Policy::unknown_fields(&value), vec!["license.seats", "exclusions.colours", "v2_thing"]);
    }

    #[test]
    fn exclusions_merge_without_repeats() {
        let local = Exclusions { ips: vec!["10.0.0.1".into()], md5: vec!["aa".into()], ..Exclusions::default() };
        let cn = Exclusions { ips: vec!["10.0.0.1".into(), "192.0.2.0/24".into()], ..Exclusions::default() };
        let m = local.merged(&cn);
        assert_eq!(m.ips, vec!["10.0.0.1", "192.0.2.0/24"]);
        assert_eq!(m.md5, vec!["aa"]);
    }

    #[test]
    fn names_and_keys_are_single_safe_components() {
        assert!(valid_sensor_id("sensor-1"));
        for bad in ["", ".hidden", "a/b", "..", "policy", "updates", &"x".repeat(65)] {
            assert!(!valid_sensor_id(bad), "{bad}");
        }
        assert!(valid_idempotency_key("sensor-1:17:9f3a"));
        assert!(!valid_idempotency_key("a b"));
        let m = Manifest {
            kind: UpdateKind::Rules,
            version: "v1".into(),
            files: vec![ManifestFile { name: "../x".into(), sha256: "00".repeat(32), size: 1 }],
        };
        assert!(m.check(UpdateKind::Rules).unwrap_err().contains("unsafe name"));
        assert!(m.check(UpdateKind::Ioc).unwrap_err().contains("not ioc"));
    }
}
