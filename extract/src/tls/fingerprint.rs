//! Client and server fingerprints: JA3 / JA3S (Salesforce) and JA4 (FoxIO, TLS over TCP only).

use md5::Md5;
use sha2::{Digest, Sha256};

use super::handshake::{is_grease, ClientHello, ServerHello, EXT_ALPN, EXT_SERVER_NAME};

fn dash_joined<T: ToString>(values: impl Iterator<Item = T>) -> String {
    values.map(|v| v.to_string()).collect::<Vec<_>>().join("-")
}

/// `version,ciphers,extensions,groups,point_formats`, GREASE left out, decimal.
pub fn ja3_string(hello: &ClientHello) -> String {
    format!(
        "{},{},{},{},{}",
        hello.legacy_version,
        dash_joined(hello.cipher_suites.iter().filter(|c| !is_grease(**c))),
        dash_joined(hello.extensions.iter().filter(|e| !is_grease(**e))),
        dash_joined(hello.supported_groups.iter().filter(|g| !is_grease(**g))),
        dash_joined(hello.ec_point_formats.iter()),
    )
}

/// `version,cipher,extensions`.
pub fn ja3s_string(hello: &ServerHello) -> String {
    format!(
        "{},{},{}",
        hello.legacy_version,
        hello.cipher_suite,
        dash_joined(hello.extensions.iter().filter(|e| !is_grease(**e)))
    )
}

pub fn md5_hex(s: &str) -> String {
    weir_core::hex(&Md5::digest(s.as_bytes()))
}

fn sha256_12(s: &str) -> String {
    let mut h = weir_core::hex(&Sha256::digest(s.as_bytes()));
    h.truncate(12);
    h
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 | 0x0200 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

fn ja4_alpn(hello: &ClientHello) -> String {
    let Some(first) = hello.alpn.first().filter(|a| !a.is_empty()) else { return "00".into() };
    let (a, z) = (first[0], first[first.len() - 1]);
    if a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric() {
        format!("{}{}", char::from(a), char::from(z))
    } else {
        // Non-alphanumeric ends: the first and last characters of the value's hex form.
        let hex = weir_core::hex(first);
        let mut chars = hex.chars();
        match (chars.next(), hex.chars().last()) {
            (Some(x), Some(y)) => format!("{x}{y}"),
            _ => "00".into(),
        }
    }
}

/// The JA4 parts before hashing: (`t13d1516h2`, sorted ciphers, sorted extensions `_`
/// signature algorithms). Exposed so tests can check the inputs, not only the hashes.
pub fn ja4_parts(hello: &ClientHello) -> (String, String, String) {
    let ciphers: Vec<u16> = hello.cipher_suites.iter().copied().filter(|c| !is_grease(*c)).collect();
    let exts: Vec<u16> = hello.extensions.iter().copied().filter(|e| !is_grease(*e)).collect();
    let version = hello
        .supported_versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(hello.legacy_version);
    let sni = if hello.extensions.contains(&EXT_SERVER_NAME) { 'd' } else { 'i' };
    let a = format!(
        "t{}{}{:02}{:02}{}",
        ja4_version(version),
        sni,
        ciphers.len().min(99),
        exts.len().min(99),
        ja4_alpn(hello)
    );
    let hex4 = |v: &u16| format!("{v:04x}");
    let mut sorted_ciphers = ciphers.clone();
    sorted_ciphers.sort_unstable();
    let b = sorted_ciphers.iter().map(hex4).collect::<Vec<_>>().join(",");
    let mut sorted_exts: Vec<u16> = exts.into_iter().filter(|e| *e != EXT_SERVER_NAME && *e != EXT_ALPN).collect();
    sorted_exts.sort_unstable();
    let mut c = sorted_exts.iter().map(hex4).collect::<Vec<_>>().join(",");
    if !hello.signature_algorithms.is_empty() {
        c.push('_');
        c.push_str(&hello.signature_algorithms.iter().map(hex4).collect::<Vec<_>>().join(","));
    }
    (a, b, c)
}

/// `t13d1516h2_8daaf6152771_e5627efa2ab1`.
pub fn ja4(hello: &ClientHello) -> String {
    let (a, b, c) = ja4_parts(hello);
    let hash_or_zero = |s: &str| if s.is_empty() { "000000000000".to_string() } else { sha256_12(s) };
    // An extension list that is empty but for signature algorithms still hashes.
    format!("{a}_{}_{}", hash_or_zero(&b), hash_or_zero(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_known_string() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn ja4_alpn_ends() {
        let mut hello = ClientHello::default();
        assert_eq!(ja4_alpn(&hello), "00");
        hello.alpn = vec![b"h2".to_vec()];
        assert_eq!(ja4_alpn(&hello), "h2");
        hello.alpn = vec![b"http/1.1".to_vec()];
        assert_eq!(ja4_alpn(&hello), "h1");
        hello.alpn = vec![vec![0xab, b'x', 0xcd]];
        assert_eq!(ja4_alpn(&hello), "ad");
    }

    #[test]
    fn ja4_counts_leave_out_grease_and_hash_empty_lists_as_zeros() {
        let hello = ClientHello {
            legacy_version: 0x0303,
            cipher_suites: vec![0x1a1a, 0x1301],
            extensions: vec![0x2a2a, 0x0000, 0x0010, 0x002b],
            supported_versions: vec![0x3a3a, 0x0304, 0x0303],
            alpn: vec![b"h2".to_vec()],
            ..ClientHello::default()
        };
        assert_eq!(
            ja4_parts(&hello),
            ("t13d0103h2".to_string(), "1301".to_string(), "002b".to_string())
        );
        let bare = ClientHello { legacy_version: 0x0301, ..ClientHello::default() };
        assert_eq!(ja4(&bare), "t10i000000_000000000000_000000000000");
    }
}
