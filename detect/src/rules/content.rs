//! The byte string of a `content` value: text with `|hex|` runs and Suricata's escapes.

/// Most bytes one content pattern may hold (Suricata caps content at 64 KiB too).
pub const MAX_CONTENT_LEN: usize = 65535;

/// Decodes the text between a content's quotes (escapes still in place):
/// `abc|0d 0a|\"x\"` is `abc\r\n"x"`. Only `\\ \" \; \:` are valid escapes, as in Suricata.
pub fn parse_content_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut in_hex = false;
    let mut escaped = false;
    let mut nibble: Option<u8> = None;
    for &b in text.as_bytes() {
        if in_hex {
            match b {
                b'|' => {
                    if nibble.is_some() {
                        return Err("odd number of hex digits".into());
                    }
                    in_hex = false;
                }
                // Suricata skips whitespace anywhere in a hex run, even between two nibbles.
                b' ' | b'\t' => {}
                _ => {
                    let v = hex_value(b)
                        .ok_or_else(|| format!("invalid hex character {:?}", b as char))?;
                    match nibble.take() {
                        Some(high) => out.push(high << 4 | v),
                        None => nibble = Some(v),
                    }
                }
            }
        } else if escaped {
            match b {
                b'\\' | b'"' | b';' | b':' => out.push(b),
                other => return Err(format!("invalid escape \\{}", other as char)),
            }
            escaped = false;
        } else {
            match b {
                b'\\' => escaped = true,
                b'|' => in_hex = true,
                other => out.push(other),
            }
        }
        if out.len() > MAX_CONTENT_LEN {
            return Err(format!("longer than {MAX_CONTENT_LEN} bytes"));
        }
    }
    if in_hex {
        return Err("unterminated |hex| run".into());
    }
    if escaped {
        return Err("trailing backslash".into());
    }
    if out.is_empty() {
        return Err("empty pattern".into());
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_hex_and_escapes_mix() {
        assert_eq!(
            parse_content_bytes(r#"GET |20 2f|x\"\;\\\:"#).unwrap(),
            b"GET  /x\";\\:".to_vec()
        );
        assert_eq!(parse_content_bytes("|0D0a|").unwrap(), vec![0x0d, 0x0a]);
        assert_eq!(parse_content_bytes("a|00|").unwrap(), vec![b'a', 0]);
    }

    #[test]
    fn malformed_contents_are_errors() {
        assert!(parse_content_bytes("|0|").is_err());
        assert!(parse_content_bytes("|zz|").is_err());
        assert!(parse_content_bytes("|00").is_err());
        assert!(parse_content_bytes(r"\x").is_err());
        assert!(parse_content_bytes("").is_err());
        assert_eq!(parse_content_bytes("|3 a20|").unwrap(), vec![0x3a, 0x20]);
    }
}
