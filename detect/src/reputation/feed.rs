//! Feed formats: each line becomes an [`Indicator`], is ignored (comments, headers, blank lines)
//! or is refused with its line number and reason.
//!
//! | format | lines | indicators |
//! | --- | --- | --- |
//! | `urlhaus-csv` | URLhaus's CSV dump (`id,dateadded,url,url_status,...`, quoted, `#` comments) or the urlhaus-filter Splunk lookup (`"host","path","message","updated"`), told apart by the header | a URL row is an exact URL; a row with a host and an empty path is the domain |
//! | `zeek-intel` | Zeek intel TSV: a `#fields` header naming `indicator` and `indicator_type`, tab-separated rows | `Intel::ADDR`, `SUBNET`, `URL`, `DOMAIN`, `FILE_HASH` (MD5, SHA-1 or SHA-256 by length), `EMAIL`; other types are skipped |
//! | `domains` | one domain per line; also `*.domain`, hosts-file lines (`0.0.0.0 domain`), and IP addresses | domains (with their subdomains); IPs |
//! | `urls` | one URL per line, with or without scheme; a trailing `*` makes it a prefix | exact URLs, URL prefixes |
//! | `ips` | one IP address or CIDR block per line, v4 or v6 | addresses and blocks |
//! | `hashes` | one hex MD5, SHA-1 or SHA-256 per line, optionally followed by a name (`hash,name` or `hash  name`) | file hashes |
//!
//! In every format, blank lines and lines starting with `#` are ignored; plain lists also ignore
//! `!` and `;` comment lines (adblock and RPZ exports), and text after ` #` on a line.
//!
//! Matching follows from the kind: a domain matches itself and every name below it on a label
//! boundary (`evil.example` matches `a.b.evil.example`, not `notevil.example`); a URL matches
//! exactly after normalisation; a URL prefix only when the list says so with a trailing `*`
//! (URLhaus and OpenPhish list pages, not directories, so their URLs are exact).

use std::fmt;
use std::str::FromStr;

use super::ipset::IpNet;
use super::normalize::{Host, NormalizeError, normalize_host, normalize_url};

/// The formats of `[[detect.feeds]] format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeedFormat {
    UrlhausCsv,
    ZeekIntel,
    Domains,
    Urls,
    Ips,
    Hashes,
}

impl FeedFormat {
    /// Every format, in the order the config documents them.
    pub const ALL: [FeedFormat; 6] = [
        FeedFormat::UrlhausCsv,
        FeedFormat::ZeekIntel,
        FeedFormat::Domains,
        FeedFormat::Urls,
        FeedFormat::Ips,
        FeedFormat::Hashes,
    ];

    /// The configuration spelling.
    pub fn name(self) -> &'static str {
        match self {
            FeedFormat::UrlhausCsv => "urlhaus-csv",
            FeedFormat::ZeekIntel => "zeek-intel",
            FeedFormat::Domains => "domains",
            FeedFormat::Urls => "urls",
            FeedFormat::Ips => "ips",
            FeedFormat::Hashes => "hashes",
        }
    }
}

impl fmt::Display for FeedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FeedFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<FeedFormat, String> {
        FeedFormat::ALL.into_iter().find(|f| f.name() == s)
        .ok_or_else(|| format!("unknown feed format `{s}`"))
    }
}

/// One listed item, normalised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Indicator {
    /// A URL key (see [`super::normalize`]): matched exactly.
    Url(String),
    /// A URL key prefix: `authority` must be equal and the path must start with `path`.
    UrlPrefix {
        authority: String,
        path: String,
    },
    /// A DNS name: matches itself and every name below it.
    Domain(String),
    Ip(IpNet),
    Md5([u8; 16]),
    Sha1([u8; 20]),
    Sha256([u8; 32]),
    /// A lower-case email address.
    Email(String),
}

/// Why a line was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("bad URL: {0}")]
    BadUrl(NormalizeError),
    #[error("bad domain: {0}")]
    BadDomain(NormalizeError),
    #[error("bad IP address or CIDR")]
    BadAddress,
    #[error("not a hex MD5, SHA-1 or SHA-256")]
    BadHash,
    #[error("bad email address")]
    BadEmail,
    #[error("{found} fields where the header names {expected}")]
    FieldCount { found: usize, expected: usize },
    #[error("unterminated quoted field")]
    Unterminated,
    #[error("indicator type `{0}` is not matched by Weir")]
    UnsupportedType(String),
    #[error("a data line before the `#fields` header")]
    NoHeader,
    #[error("longer than {limit} bytes")]
    TooLong { limit: usize },
    #[error("not UTF-8")]
    NotUtf8,
    #[error("the set already holds {limit} entries")]
    SetFull { limit: usize },
}

/// Which columns a CSV or TSV feed uses, learnt from its header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Columns {
    /// No header seen yet: URLhaus's own column order is assumed for CSV; Zeek requires one.
    Unknown,
    /// URLhaus dump: the `url` column.
    Url(usize),
    /// urlhaus-filter: `host` and `path` columns.
    HostPath { host: usize, path: usize },
    /// Zeek: `indicator`, `indicator_type` and the number of fields.
    Zeek {
        indicator: usize,
        kind: usize,
        fields: usize,
    },
}

/// URLhaus's dump: `id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter`.
const URLHAUS_URL_COLUMN: usize = 2;

/// Per-feed parsing state: the header learnt so far.
pub(super) struct LineParser {
    format: FeedFormat,
    columns: Columns,
}

/// What one line gave.
pub(super) type LineResult = Result<Option<Indicator>, LineError>;

impl LineParser {
    pub(super) fn new(format: FeedFormat) -> Self {
        LineParser {
            format,
            columns: Columns::Unknown,
        }
    }

    /// A header problem that makes the whole feed unusable (a `#fields` line without the
    /// columns Weir needs), once seen.
    pub(super) fn parse(&mut self, line: &str) -> Result<LineResult, String> {
        let line = line.trim_end_matches(['\r', '\n']);
        match self.format {
            FeedFormat::UrlhausCsv => Ok(self.urlhaus_line(line)),
            FeedFormat::ZeekIntel => self.zeek_line(line),
            FeedFormat::Domains => Ok(plain(line).map_or(Ok(None), domain_line)),
            FeedFormat::Urls => Ok(plain(line).map_or(Ok(None), |l| url_line(l).map(Some))),
            FeedFormat::Ips => Ok(plain(line).map_or(Ok(None), |l| {
                l.parse::<IpNet>()
                    .map(|n| Some(Indicator::Ip(n)))
                    .map_err(|_| LineError::BadAddress)
            })),
            FeedFormat::Hashes => Ok(plain(line).map_or(Ok(None), |l| {
                let hash = l.split([',', ' ', '\t', ';']).next().unwrap_or(l);
                parse_hash(hash).map(Some)
            })),
        }
    }

    fn urlhaus_line(&mut self, line: &str) -> LineResult {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        // URLhaus writes its header as a comment (`# id,dateadded,url,...`); urlhaus-filter as
        // a quoted first row.
        if let Some(comment) = trimmed.strip_prefix('#') {
            if let Ok(names) = split_csv(comment.trim()) {
                self.learn_columns(&names);
            }
            return Ok(None);
        }
        let fields = split_csv(trimmed)?;
        if self.columns == Columns::Unknown {
            if self.learn_columns(&fields) {
                return Ok(None);
            }
            self.columns = Columns::Url(URLHAUS_URL_COLUMN);
        }
        match self.columns {
            Columns::HostPath { host, path } => {
                let host = fields.get(host).map(String::as_str).unwrap_or("");
                let path = fields.get(path).map(String::as_str).unwrap_or("");
                if path.is_empty() {
                    domain_line(host)
                } else {
                    normalize_url(&format!("{host}{path}"))
                        .map(|u| Some(Indicator::Url(u.key())))
                        .map_err(LineError::BadUrl)
                }
            }
            Columns::Url(column) => url_field(&fields, column),
            _ => url_field(&fields, URLHAUS_URL_COLUMN),
        }
    }

    /// Whether `names` is a header row this format knows; if so, its columns are used from now.
    fn learn_columns(&mut self, names: &[String]) -> bool {
        let names: Vec<String> = names
            .iter()
            .map(|f| f.trim().to_ascii_lowercase())
            .collect();
        let position = |name: &str| names.iter().position(|n| n == name);
        if let (Some(host), Some(path)) = (position("host"), position("path")) {
            self.columns = Columns::HostPath { host, path };
            return true;
        }
        if let (Some(url), true) = (
            position("url"),
            position("id").is_some() || position("dateadded").is_some(),
        ) {
            self.columns = Columns::Url(url);
            return true;
        }
        false
    }

    fn zeek_line(&mut self, line: &str) -> Result<LineResult, String> {
        if line.trim().is_empty() {
            return Ok(Ok(None));
        }
        if let Some(header) = line.strip_prefix("#fields") {
            let names: Vec<&str> = header.trim_start_matches(['\t', ' ']).split('\t').collect();
            let indicator = names.iter().position(|n| *n == "indicator");
            let kind = names.iter().position(|n| *n == "indicator_type");
            return match (indicator, kind) {
                (Some(indicator), Some(kind)) => {
                    self.columns = Columns::Zeek {
                        indicator,
                        kind,
                        fields: names.len(),
                    };
                    Ok(Ok(None))
                }
                _ => Err("the #fields header lacks `indicator` or `indicator_type`".into()),
            };
        }
        if let Some(sep) = line.strip_prefix("#separator") {
            let sep = sep.trim();
            return if sep == "\\x09" || sep.is_empty() {
                Ok(Ok(None))
            } else {
                Err(format!(
                    "separator `{sep}` is not supported (only tab, \\x09)"
                ))
            };
        }
        if line.starts_with('#') {
            return Ok(Ok(None));
        }
        let Columns::Zeek {
            indicator,
            kind,
            fields,
        } = self.columns
        else {
            return Ok(Err(LineError::NoHeader));
        };
        let values: Vec<&str> = line.split('\t').collect();
        if values.len() < fields.max(indicator + 1).max(kind + 1) {
            return Ok(Err(LineError::FieldCount {
                found: values.len(),
                expected: fields,
            }));
        }
        let value = values[indicator].trim();
        let kind = values[kind].trim();
        Ok(zeek_indicator(
            value,
            kind.strip_prefix("Intel::").unwrap_or(kind),
        ))
    }
}

fn zeek_indicator(value: &str, kind: &str) -> LineResult {
    match kind {
        "ADDR" | "SUBNET" => value
            .parse::<IpNet>()
            .map(|n| Some(Indicator::Ip(n)))
            .map_err(|_| LineError::BadAddress),
        // Zeek's intel framework writes URLs without the scheme; a scheme, when present, is fine.
        "URL" => url_line(value).map(Some),
        "DOMAIN" => domain_line(value),
        "FILE_HASH" => parse_hash(value).map(Some),
        "EMAIL" => parse_email(value).map(Some),
        other => Err(LineError::UnsupportedType(format!("Intel::{other}"))),
    }
}

fn url_field(fields: &[String], column: usize) -> LineResult {
    let url = fields.get(column).ok_or(LineError::FieldCount {
        found: fields.len(),
        expected: column + 1,
    })?;
    url_line(url).map(Some)
}

/// A plain-list line without comments and surrounding blanks; `None` when nothing is left.
fn plain(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with(['#', '!', ';']) {
        return None;
    }
    let line = line
        .split_once(" #")
        .map_or(line, |(before, _)| before)
        .trim_end();
    Some(line)
}

/// A URL line; a trailing `*` asks for a prefix match.
fn url_line(line: &str) -> Result<Indicator, LineError> {
    match line.strip_suffix('*') {
        Some(prefix) => {
            let url = normalize_url(prefix).map_err(LineError::BadUrl)?;
            Ok(Indicator::UrlPrefix {
                authority: url.authority(),
                path: url.path,
            })
        }
        None => normalize_url(line)
            .map(|u| Indicator::Url(u.key()))
            .map_err(LineError::BadUrl),
    }
}

/// A domain line: `domain`, `*.domain`, `.domain`, or a hosts-file line (`0.0.0.0 domain`). An
/// IP address becomes an IP indicator: domain lists mix them in (urlhaus-filter does).
fn domain_line(line: &str) -> LineResult {
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or("");
    let name = match (words.next(), first.parse::<std::net::IpAddr>()) {
        (Some(second), Ok(_)) => second,
        (Some(_), Err(_)) => return Err(LineError::BadDomain(NormalizeError::BadHost)),
        (None, _) => first,
    };
    let name = name
        .strip_prefix("*.")
        .or_else(|| name.strip_prefix('.'))
        .unwrap_or(name);
    match normalize_host(name) {
        Ok(Host::Name(n)) => Ok(Some(Indicator::Domain(n))),
        Ok(Host::Ip(ip)) => Ok(Some(Indicator::Ip(IpNet::host(ip)))),
        Err(e) => Err(LineError::BadDomain(e)),
    }
}

/// A hex MD5 (32 digits), SHA-1 (40) or SHA-256 (64), either case.
pub fn parse_hash(s: &str) -> Result<Indicator, LineError> {
    let s = s.trim();
    fn fill<const N: usize>(s: &str) -> Result<[u8; N], LineError> {
        let mut out = [0u8; N];
        let bytes = s.as_bytes();
        for (i, byte) in out.iter_mut().enumerate() {
            let digit = |at: usize| {
                bytes
                    .get(at)
                    .and_then(|b| char::from(*b).to_digit(16))
                    .ok_or(LineError::BadHash)
            };
            // to_digit(16) is below 16, so the narrowing keeps every bit.
            *byte = (digit(2 * i)? as u8) << 4 | digit(2 * i + 1)? as u8;
        }
        Ok(out)
    }
    match s.len() {
        32 => fill::<16>(s).map(Indicator::Md5),
        40 => fill::<20>(s).map(Indicator::Sha1),
        64 => fill::<32>(s).map(Indicator::Sha256),
        _ => Err(LineError::BadHash),
    }
}

/// `local@domain`, lower-cased; the domain part goes through host normalisation (IDNA).
pub fn parse_email(s: &str) -> Result<Indicator, LineError> {
    normalize_email(s)
        .map(Indicator::Email)
        .ok_or(LineError::BadEmail)
}

/// An address as compared: the addr-spec of `Name <local@domain>` or `local@domain`, lower case,
/// domain in punycode.
pub fn normalize_email(s: &str) -> Option<String> {
    let s = s.trim();
    let s = match (s.rfind('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => &s[open + 1..close],
        _ => s,
    };
    let (local, domain) = s.trim().rsplit_once('@')?;
    if local.is_empty() || local.contains(char::is_whitespace) || local.contains(['<', '>']) {
        return None;
    }
    let domain = match normalize_host(domain).ok()? {
        Host::Name(n) => n,
        Host::Ip(_) => return None,
    };
    Some(format!("{}@{domain}", local.to_lowercase()))
}

/// Splits one CSV line (RFC 4180 quoting, `""` for a quote inside a quoted field).
fn split_csv(line: &str) -> Result<Vec<String>, LineError> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            (_, c) => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err(LineError::Unterminated);
    }
    fields.push(field);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(format: FeedFormat, text: &str) -> Vec<LineResult> {
        let mut p = LineParser::new(format);
        text.lines()
            .map(|l| p.parse(l).unwrap_or_else(|e| panic!("feed error {e}")))
            .collect()
    }

    fn url(s: &str) -> LineResult {
        Ok(Some(Indicator::Url(s.into())))
    }

    fn domain(s: &str) -> LineResult {
        Ok(Some(Indicator::Domain(s.into())))
    }

    fn ip(s: &str) -> LineResult {
        Ok(Some(Indicator::Ip(
            s.parse().unwrap_or_else(|e| panic!("{s}: {e:?}")),
        )))
    }

    #[test]
    fn urlhaus_dump_rows_with_commented_header_and_quoted_tags() {
        let text = "################################\n\
# abuse.ch URLhaus Database Dump (CSV)\n\
# id,dateadded,url,url_status,last_online,threat,tags,urlhaus_link,reporter\n\
\"3582131\",\"2025-07-19 12:00:07\",\"http://192.0.2.9:46081/i\",\"online\",\"2025-07-19 12:00:07\",\"malware_download\",\"32-bit,elf,mips,Mozi\",\"https://urlhaus.abuse.ch/url/3582131/\",\"geenensp\"\n\
\"3582130\",\"2025-07-19 11:59:07\",\"https://Evil.Example/a/../Payload.EXE\",\"offline\",\"\",\"malware_download\",\"exe\",\"https://urlhaus.abuse.ch/url/3582130/\",\"abuse_ch\"\n\
\"3582129\",\"2025-07-19 11:58:07\",\"http://bad host/x\",\"online\",\"\",\"malware_download\",\"\",\"\",\"\"\n\
\"3582128\",\"2025-07-19 11:58:07\",\"http://a.example/\"\"q\"\"\n";
        assert_eq!(
            parse_all(FeedFormat::UrlhausCsv, text),
            [
                Ok(None),
                Ok(None),
                Ok(None),
                url("192.0.2.9:46081/i"),
                url("evil.example/payload.exe"),
                Err(LineError::BadUrl(NormalizeError::BadHost)),
                Err(LineError::Unterminated),
            ]
        );
    }

    #[test]
    fn urlhaus_without_header_assumes_the_dump_columns() {
        assert_eq!(
            parse_all(
                FeedFormat::UrlhausCsv,
                "\"1\",\"2025-07-19\",\"http://a.example/x\",\"online\"\n\"2\"\n"
            ),
            [
                url("a.example/x"),
                Err(LineError::FieldCount {
                    found: 1,
                    expected: 3
                })
            ]
        );
    }

    #[test]
    fn urlhaus_filter_splunk_rows_are_hosts_or_urls() {
        let text = "# Title: Online Malicious URL Splunk Lookup\n\
\"host\",\"path\",\"message\",\"updated\"\n\
\"0022a601.pphost.net\",\"\",\"urlhaus-filter malicious website detected\",\"2025-07-19T12:11:28Z\"\n\
\"1.1.109.99\",\"\",\"m\",\"u\"\n\
\"cfs5.tistory.com\",\"/upload?f=ymx%3d%3d&filename=crack.exe\",\"m\",\"u\"\n";
        assert_eq!(
            parse_all(FeedFormat::UrlhausCsv, text),
            [
                Ok(None),
                Ok(None),
                domain("0022a601.pphost.net"),
                ip("1.1.109.99"),
                url("cfs5.tistory.com/upload?f=ymx%3d%3d&filename=crack.exe"),
            ]
        );
    }

    #[test]
    fn zeek_intel_types_and_errors() {
        let text = "#fields\tindicator\tindicator_type\tmeta.source\tmeta.do_notice\tmeta.desc\n\
https://api.msuto.com/\tIntel::URL\tOPENPHISH\tF\tPhishing-URLS\n\
evil.example/a/b.php\tIntel::URL\tS\tF\t-\n\
Sub.Evil.Example.\tIntel::DOMAIN\tS\tF\t-\n\
192.0.2.1\tIntel::ADDR\tS\tF\t-\n\
2001:db8::/32\tIntel::SUBNET\tS\tF\t-\n\
392c59924103a45553b1e4bd1f5845e42d4f1c9b\tIntel::FILE_HASH\tABUSE-CH\tF\tMALWARE\n\
Bad@Evil.Example\tIntel::EMAIL\tS\tF\t-\n\
Mozilla/4.0\tIntel::SOFTWARE\tS\tF\t-\n\
not an ip\tIntel::ADDR\tS\tF\t-\n\
only-one-field\n\
\n\
#close\t2026-08-22\n";
        let got = parse_all(FeedFormat::ZeekIntel, text);
        let Ok(Some(Indicator::Sha1(parsed))) = &got[6] else {
            panic!("line 7: {:?}", got[6])
        };
        assert_eq!(
            weir_core::hex(parsed),
            "392c59924103a45553b1e4bd1f5845e42d4f1c9b"
        );
        assert_eq!(
            got,
            [
                Ok(None),
                url("api.msuto.com/"),
                url("evil.example/a/b.php"),
                domain("sub.evil.example"),
                ip("192.0.2.1"),
                ip("2001:db8::/32"),
                Ok(Some(Indicator::Sha1(*parsed))),
                Ok(Some(Indicator::Email("bad@evil.example".into()))),
                Err(LineError::UnsupportedType("Intel::SOFTWARE".into())),
                Err(LineError::BadAddress),
                Err(LineError::FieldCount {
                    found: 1,
                    expected: 5
                }),
                Ok(None),
                Ok(None),
            ]
        );
    }

    #[test]
    fn zeek_needs_its_header() {
        assert_eq!(
            parse_all(FeedFormat::ZeekIntel, "evil.example\tIntel::DOMAIN\n"),
            [Err(LineError::NoHeader)]
        );
        let mut p = LineParser::new(FeedFormat::ZeekIntel);
        assert!(p.parse("#fields\tvalue\ttype").is_err());
        assert!(p.parse("#separator ,").is_err());
        assert_eq!(p.parse("#separator \\x09"), Ok(Ok(None)));
    }

    #[test]
    fn domain_lists_take_wildcards_hosts_files_ips_and_idns() {
        let text = "# comment\n! adblock comment\n\nEvil.Example\n*.wild.example\n0.0.0.0 hosts.example\n\
1.1.109.99\nbücher.example  # trailing comment\n[2001:db8::7]\nbad_label!.example\nx..example\n";
        assert_eq!(
            parse_all(FeedFormat::Domains, text),
            [
                Ok(None),
                Ok(None),
                Ok(None),
                domain("evil.example"),
                domain("wild.example"),
                domain("hosts.example"),
                ip("1.1.109.99"),
                domain("xn--bcher-kva.example"),
                ip("2001:db8::7"),
                Err(LineError::BadDomain(NormalizeError::BadHost)),
                Err(LineError::BadDomain(NormalizeError::BadHost)),
            ]
        );
    }

    #[test]
    fn url_lists_exact_and_prefix() {
        let text = "http://Evil.Example/dl/payload.exe\nevil.example/kit/*\nhttps://[2001:db8::1]:8443/x\nhttp://\n";
        assert_eq!(
            parse_all(FeedFormat::Urls, text),
            [
                url("evil.example/dl/payload.exe"),
                Ok(Some(Indicator::UrlPrefix {
                    authority: "evil.example".into(),
                    path: "/kit/".into()
                })),
                url("[2001:db8::1]:8443/x"),
                Err(LineError::BadUrl(NormalizeError::Empty)),
            ]
        );
    }

    #[test]
    fn ip_lists_with_cidrs_and_garbage() {
        assert_eq!(
            parse_all(
                FeedFormat::Ips,
                "10.0.0.0/8\n10.1.0.0/16\n2001:db8::1\n300.1.1.1\n10.0.0.0/40\n"
            ),
            [
                ip("10.0.0.0/8"),
                ip("10.1.0.0/16"),
                ip("2001:db8::1"),
                Err(LineError::BadAddress),
                Err(LineError::BadAddress)
            ]
        );
    }

    #[test]
    fn hash_lists_all_lengths_and_names() {
        let md5 = "D41D8CD98F00B204E9800998ECF8427E";
        let sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let text = format!("{md5},empty.bin\n{sha256}  empty\nxyz\n{}\n", &sha256[..63]);
        let got = parse_all(FeedFormat::Hashes, &text);
        let Ok(Some(Indicator::Md5(m))) = &got[0] else {
            panic!("{:?}", got[0])
        };
        assert_eq!(weir_core::hex(m), md5.to_ascii_lowercase());
        let Ok(Some(Indicator::Sha256(s))) = &got[1] else {
            panic!("{:?}", got[1])
        };
        assert_eq!(weir_core::hex(s), sha256);
        assert_eq!(got[2..], [Err(LineError::BadHash), Err(LineError::BadHash)]);
    }

    #[test]
    fn emails_keep_addr_spec_only() {
        assert_eq!(
            normalize_email("Boss <CEO@Evil.Example>").as_deref(),
            Some("ceo@evil.example")
        );
        assert_eq!(
            normalize_email("a@bücher.example").as_deref(),
            Some("a@xn--bcher-kva.example")
        );
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("@evil.example"), None);
    }

    #[test]
    fn format_names_round_trip() {
        for f in [
            "urlhaus-csv",
            "zeek-intel",
            "domains",
            "urls",
            "ips",
            "hashes",
        ] {
            assert_eq!(f.parse::<FeedFormat>().map(|f| f.name()), Ok(f));
        }
        assert!("csv".parse::<FeedFormat>().is_err());
    }
}
