//! Artifacts: what extraction hands the outbound stages (reputation, sandbox, Central Node).
//! Each carries the context of the flow and transaction it was seen in.

use crate::flow::{AppProto, FlowKey};
use crate::time::Timestamp;

/// Where an artifact was seen, as written in the EVE `reputation.seen_in` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeenIn {
    HttpUrl,
    HttpHost,
    HttpRedirect,
    EmailUrl,
    DnsQuery,
    TlsSni,
    FileSha256,
    FileMd5,
}

impl SeenIn {
    pub fn eve(self) -> &'static str {
        match self {
            SeenIn::HttpUrl => "http.url",
            SeenIn::HttpHost => "http.host",
            SeenIn::HttpRedirect => "http.redirect",
            SeenIn::EmailUrl => "email.url",
            SeenIn::DnsQuery => "dns.query",
            SeenIn::TlsSni => "tls.sni",
            SeenIn::FileSha256 => "file.sha256",
            SeenIn::FileMd5 => "file.md5",
        }
    }

    /// Mail traffic and web traffic alerts are kept apart, as the Central Node reports them apart.
    pub fn is_mail(self) -> bool {
        matches!(self, SeenIn::EmailUrl)
    }
}

/// The flow and transaction an artifact came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactContext {
    pub ts: Timestamp,
    pub flow_id: u64,
    /// Oriented client to server.
    pub key: FlowKey,
    pub app_proto: Option<AppProto>,
    pub tx_id: Option<u64>,
}

/// A URL (absolute, `scheme://host[:port]/path?query`) or a bare domain name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlArtifact {
    pub url: String,
    pub seen_in: SeenIn,
}

/// How a file ended, as EVE `fileinfo.state` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    Open,
    Closed,
    Truncated,
    Error,
}

impl FileState {
    pub fn eve(self) -> &'static str {
        match self {
            FileState::Open => "OPEN",
            FileState::Closed => "CLOSED",
            FileState::Truncated => "TRUNCATED",
            FileState::Error => "ERROR",
        }
    }
}

/// A file extracted unchanged (transfer and content encodings undone) and already in the filestore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileArtifact {
    pub sha256: [u8; 32],
    pub sha1: [u8; 20],
    pub md5: [u8; 16],
    pub size: u64,
    /// The name on the wire (Content-Disposition, URI path, FTP argument, attachment name). Never
    /// used as a path on disk.
    pub name: String,
    /// A short description of the content from its magic bytes, when recognised.
    pub magic: Option<String>,
    pub state: FileState,
    pub gaps: bool,
}

/// An RFC 5322 message exactly as it crossed the wire, already in the mail store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailArtifact {
    pub sha256: [u8; 32],
    pub size: u64,
    pub from: Option<String>,
    pub to: Vec<String>,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Artifact {
    Url(UrlArtifact),
    File(FileArtifact),
    Email(EmailArtifact),
}

/// An artifact and where it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub ctx: ArtifactContext,
    pub artifact: Artifact,
}

/// Lower-case hex, as EVE writes hashes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(super::hex(&[0x00, 0x0f, 0xab]), "000fab");
    }
}
