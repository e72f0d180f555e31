//! The submission policy: which artifacts go to the sandbox.

use weir_core::{Artifact, SeenIn, Sighting};

use crate::config::SandboxConfig;

/// Bytes read from the start of a file to recognise its type.
pub const SNIFF_BYTES: usize = 64;

/// A file type recognised by its leading bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Pe,
    Elf,
    MachO,
    Pdf,
    /// OLE2 compound file: legacy Office documents, MSI.
    Ole,
    /// A zip whose first entry marks an Office Open XML document.
    Ooxml,
    Zip,
    Rar,
    SevenZip,
    Gzip,
    Rtf,
    /// Text starting with a `#!` line.
    Script,
    Unknown,
}

impl FileType {
    /// The name used in `[sandbox] types`.
    pub fn name(self) -> &'static str {
        match self {
            FileType::Pe => "pe",
            FileType::Elf => "elf",
            FileType::MachO => "macho",
            FileType::Pdf => "pdf",
            FileType::Ole => "ole",
            FileType::Ooxml => "ooxml",
            FileType::Zip => "zip",
            FileType::Rar => "rar",
            FileType::SevenZip => "7z",
            FileType::Gzip => "gzip",
            FileType::Rtf => "rtf",
            FileType::Script => "script",
            FileType::Unknown => "unknown",
        }
    }

    pub fn sniff(head: &[u8]) -> FileType {
        let starts = |m: &[u8]| head.starts_with(m);
        if starts(b"MZ") {
            FileType::Pe
        } else if starts(b"\x7fELF") {
            FileType::Elf
        } else if starts(&[0xcf, 0xfa, 0xed, 0xfe])
            || starts(&[0xce, 0xfa, 0xed, 0xfe])
            || starts(&[0xca, 0xfe, 0xba, 0xbe])
        {
            FileType::MachO
        } else if find(head, b"%PDF-").is_some_and(|at| at < 16) {
            // Readers accept a PDF header a little after the start; so do droppers.
            FileType::Pdf
        } else if starts(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
            FileType::Ole
        } else if starts(b"PK\x03\x04") {
            // The first local header's name: `[Content_Types].xml` opens OOXML packages.
            if find(head, b"[Content_Types].xml").is_some() {
                FileType::Ooxml
            } else {
                FileType::Zip
            }
        } else if starts(b"Rar!\x1a\x07") {
            FileType::Rar
        } else if starts(&[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c]) {
            FileType::SevenZip
        } else if starts(&[0x1f, 0x8b]) {
            FileType::Gzip
        } else if starts(b"{\\rt") {
            FileType::Rtf
        } else if starts(b"#!") {
            FileType::Script
        } else {
            FileType::Unknown
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Why an artifact was not submitted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Submit,
    /// Not wanted by the policy; the reason names the rule.
    Skip(&'static str),
    /// Named by a scan exclusion; the reason is the exclusion's.
    Excluded(String),
}

/// Scan exclusions (SPEC section 7), supplied by the binary from `[exclusions]` and the Central
/// Node. `Some(reason)` keeps the artifact from the sandbox.
pub trait Exclusions: Send + Sync {
    fn excludes(&self, sighting: &Sighting) -> Option<String>;
}

/// No exclusions.
pub struct NoExclusions;

impl Exclusions for NoExclusions {
    fn excludes(&self, _: &Sighting) -> Option<String> {
        None
    }
}

/// The policy half of `[sandbox]`.
#[derive(Clone, Debug)]
pub struct Policy {
    types: Vec<String>,
    extensions: Vec<String>,
    min_size: u64,
    max_size: u64,
    submit_truncated: bool,
    urls_http: bool,
    urls_email: bool,
    protocols: Vec<String>,
}

impl Policy {
    pub fn new(c: &SandboxConfig) -> Policy {
        Policy {
            types: c.types.iter().map(|t| t.to_ascii_lowercase()).collect(),
            extensions: c
                .extensions
                .iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect(),
            min_size: c.min_size,
            max_size: c.max_size,
            submit_truncated: c.submit_truncated,
            urls_http: c.urls_from.iter().any(|u| u == "http"),
            urls_email: c.urls_from.iter().any(|u| u == "email"),
            protocols: c.protocols.iter().map(|p| p.to_ascii_lowercase()).collect(),
        }
    }

    /// Decides for one sighting; `head` is the file's first [`SNIFF_BYTES`] when it is a file.
    /// Exclusions are asked last, so only wanted artifacts count as excluded.
    pub fn decide(
        &self,
        s: &Sighting,
        head: Option<&[u8]>,
        exclusions: &dyn Exclusions,
    ) -> Decision {
        if !self.protocols.is_empty() {
            let proto = s.ctx.app_proto.map(|p| p.eve_name().to_ascii_lowercase());
            if !proto.is_some_and(|p| self.protocols.contains(&p)) {
                return Decision::Skip("protocol");
            }
        }
        let wanted = match &s.artifact {
            Artifact::Email(_) => Decision::Skip("email"),
            Artifact::Url(u) => match u.seen_in {
                SeenIn::HttpUrl | SeenIn::HttpRedirect if self.urls_http => url_decision(&u.url),
                SeenIn::EmailUrl if self.urls_email => url_decision(&u.url),
                SeenIn::HttpUrl | SeenIn::HttpRedirect | SeenIn::EmailUrl => {
                    Decision::Skip("url source")
                }
                _ => Decision::Skip("not a url"),
            },
            Artifact::File(f) => {
                if (f.gaps || f.state != weir_core::FileState::Closed) && !self.submit_truncated {
                    return Decision::Skip("truncated");
                }
                if f.size < self.min_size {
                    return Decision::Skip("too small");
                }
                if f.size > self.max_size {
                    return Decision::Skip("too large");
                }
                let kind = FileType::sniff(head.unwrap_or_default());
                let ext = extension(&f.name);
                let by_type = self.types.iter().any(|t| t == kind.name());
                let by_ext = ext.is_some_and(|e| self.extensions.contains(&e));
                if by_type || by_ext {
                    Decision::Submit
                } else {
                    Decision::Skip("file type")
                }
            }
        };
        if wanted != Decision::Submit {
            return wanted;
        }
        match exclusions.excludes(s) {
            Some(reason) => Decision::Excluded(reason),
            None => Decision::Submit,
        }
    }
}

fn url_decision(url: &str) -> Decision {
    if normalise_url(url).is_some() {
        Decision::Submit
    } else {
        Decision::Skip("not an http(s) url")
    }
}

/// Lower-case extension of a wire name (the part after the last `/` or `\`).
fn extension(name: &str) -> Option<String> {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let base = base.split(['?', '#']).next().unwrap_or(base);
    let (stem, ext) = base.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

/// The URL dedup key: scheme and host lower-cased, default port and fragment dropped, an empty
/// path made `/`; path and query kept as they are (servers may treat case as meaningful).
/// `None` for anything but an absolute `http`/`https` URL.
pub fn normalise_url(url: &str) -> Option<String> {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let host = authority
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let host = host
        .strip_suffix(default_port)
        .unwrap_or(&host)
        .trim_end_matches('.');
    if host.is_empty()
        || host
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let tail = if tail.starts_with('?') || tail.is_empty() {
        format!("/{tail}")
    } else {
        tail.to_string()
    };
    Some(format!("{scheme}://{host}{tail}"))
}

/// A flow context for tests across the crate.
#[cfg(test)]
pub(crate) fn test_ctx() -> weir_core::ArtifactContext {
    use std::net::{IpAddr, Ipv4Addr};
    use weir_core::{ArtifactContext, FlowKey, IpProto, Timestamp, Vlans};
    ArtifactContext {
        ts: Timestamp::from_secs_nanos(1_706_702_400, 0),
        flow_id: 1,
        key: FlowKey {
            src_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst_ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            src_port: 40000,
            dst_port: 80,
            proto: IpProto::TCP,
            vlans: Vlans::default(),
            tunnel_depth: 0,
        },
        app_proto: None,
        tx_id: Some(0),
    }
}

#[cfg(test)]
mod tests {
    use weir_core::{ArtifactContext, FileArtifact, FileState, UrlArtifact};

    use super::*;

    pub(crate) fn ctx() -> ArtifactContext {
        super::test_ctx()
    }

    fn file(name: &str, size: u64, state: FileState) -> Sighting {
        Sighting {
            ctx: ctx(),
            artifact: Artifact::File(FileArtifact {
                sha256: [1; 32],
                sha1: [0; 20],
                md5: [0; 16],
                size,
                name: name.into(),
                magic: None,
                state,
                gaps: false,
            }),
        }
    }

    fn url(u: &str, seen_in: SeenIn) -> Sighting {
        Sighting {
            ctx: ctx(),
            artifact: Artifact::Url(UrlArtifact {
                url: u.into(),
                seen_in,
            }),
        }
    }

    struct ExcludeHost;
    impl Exclusions for ExcludeHost {
        fn excludes(&self, s: &Sighting) -> Option<String> {
            match &s.artifact {
                Artifact::Url(u) if u.url.contains("trusted.example") => {
                    Some("host trusted.example".into())
                }
                _ => None,
            }
        }
    }

    #[test]
    fn sniffs_types_by_magic() {
        let cases: &[(&[u8], FileType)] = &[
            (b"MZ\x90\x00\x03", FileType::Pe),
            (b"\x7fELF\x02\x01", FileType::Elf),
            (b"\xcf\xfa\xed\xfe\x07", FileType::MachO),
            (b"%PDF-1.7\n", FileType::Pdf),
            (b"\r\n%PDF-1.4", FileType::Pdf),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", FileType::Ole),
            (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x13\x00\x00\x00[Content_Types].xml", FileType::Ooxml),
            (b"PK\x03\x04\x14\x00\x00\x00\x08\x00", FileType::Zip),
            (b"Rar!\x1a\x07\x01\x00", FileType::Rar),
            (b"7z\xbc\xaf\x27\x1c\x00\x04", FileType::SevenZip),
            (b"\x1f\x8b\x08\x00", FileType::Gzip),
            (b"{\\rtf1\\ansi", FileType::Rtf),
            (b"#!/bin/sh\n", FileType::Script),
            (b"<html>", FileType::Unknown),
            (b"", FileType::Unknown),
        ];
        for (head, want) in cases {
            assert_eq!(FileType::sniff(head), *want, "{head:?}");
        }
    }

    #[test]
    fn files_go_by_type_or_extension_within_size_bounds() {
        let p = Policy::new(&SandboxConfig::default());
        let none = NoExclusions;
        assert_eq!(
            p.decide(
                &file("a.bin", 1000, FileState::Closed),
                Some(b"MZ\x90"),
                &none
            ),
            Decision::Submit
        );
        assert_eq!(
            p.decide(
                &file("/dl/run.JS?x=1", 1000, FileState::Closed),
                Some(b"var a"),
                &none
            ),
            Decision::Submit
        );
        assert_eq!(
            p.decide(
                &file("page.html", 1000, FileState::Closed),
                Some(b"<html>"),
                &none
            ),
            Decision::Skip("file type")
        );
        assert_eq!(
            p.decide(&file("a.exe", 10, FileState::Closed), Some(b"MZ"), &none),
            Decision::Skip("too small")
        );
        assert_eq!(
            p.decide(
                &file("a.exe", 33 << 20, FileState::Closed),
                Some(b"MZ"),
                &none
            ),
            Decision::Skip("too large")
        );
        assert_eq!(
            p.decide(
                &file("a.exe", 1000, FileState::Truncated),
                Some(b"MZ"),
                &none
            ),
            Decision::Skip("truncated")
        );
        assert_eq!(
            p.decide(&file("a.exe", 1000, FileState::Closed), None, &none),
            Decision::Submit,
            "by extension"
        );
    }

    #[test]
    fn urls_go_by_source_and_exclusions_come_last() {
        let p = Policy::new(&SandboxConfig::default());
        let ex = ExcludeHost;
        assert_eq!(
            p.decide(&url("http://evil.example/x", SeenIn::EmailUrl), None, &ex),
            Decision::Submit
        );
        assert_eq!(
            p.decide(&url("http://evil.example/x", SeenIn::HttpUrl), None, &ex),
            Decision::Skip("url source")
        );
        assert_eq!(
            p.decide(&url("evil.example", SeenIn::DnsQuery), None, &ex),
            Decision::Skip("not a url")
        );
        assert_eq!(
            p.decide(&url("mailto:a@b", SeenIn::EmailUrl), None, &ex),
            Decision::Skip("not an http(s) url")
        );
        assert_eq!(
            p.decide(
                &url("https://trusted.example/", SeenIn::EmailUrl),
                None,
                &ex
            ),
            Decision::Excluded("host trusted.example".into())
        );
        let both = Policy::new(&SandboxConfig {
            urls_from: vec!["http".into(), "email".into()],
            ..SandboxConfig::default()
        });
        assert_eq!(
            both.decide(
                &url("http://evil.example/x", SeenIn::HttpRedirect),
                None,
                &ex
            ),
            Decision::Submit
        );
    }

    #[test]
    fn url_normalisation() {
        assert_eq!(
            normalise_url("HTTP://Evil.Example:80/A?b=C#frag").as_deref(),
            Some("http://evil.example/A?b=C")
        );
        assert_eq!(
            normalise_url("https://evil.example:443").as_deref(),
            Some("https://evil.example/")
        );
        assert_eq!(
            normalise_url("https://evil.example:8443?q").as_deref(),
            Some("https://evil.example:8443/?q")
        );
        assert_eq!(
            normalise_url("http://user:pw@Host.example./p").as_deref(),
            Some("http://host.example/p")
        );
        assert_eq!(normalise_url("ftp://host/p"), None);
        assert_eq!(normalise_url("http:///p"), None);
        assert_eq!(normalise_url("evil.example"), None);
    }
}
