//! Content-Transfer-Encoding decoders that forgive what mail clients forgive.
//!
//! Both decode a whole part body (already bounded by the message cap) and never fail: junk is
//! skipped or passed through, and [`Decoded::damaged`] says so.

/// A decoded body and whether the decoder had to skip or guess anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub bytes: Vec<u8>,
    pub damaged: bool,
}

fn b64_value(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Base64 as mail clients read it: characters outside the alphabet are skipped (line breaks,
/// spaces, junk); `=` ends the current quantum wherever it appears, even split across lines
/// (`NA=` newline `=Mg` newline `==` is `42`); a trailing partial quantum yields the bytes it
/// holds.
pub fn base64(input: &[u8]) -> Decoded {
    let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
    let mut quad = [0u8; 4];
    let mut n = 0usize;
    let mut damaged = false;
    let flush = |quad: &[u8; 4], n: usize, out: &mut Vec<u8>| {
        let v =
            (u32::from(quad[0]) << 18) | (u32::from(quad[1]) << 12) | (u32::from(quad[2]) << 6) | u32::from(quad[3]);
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        // n sextets carry n*6 bits: 2 -> 1 byte, 3 -> 2 bytes, 4 -> 3 bytes.
        let keep = match n {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => 0,
        };
        out.extend_from_slice(&bytes[..keep]);
    };
    for &b in input {
        if let Some(v) = b64_value(b) {
            quad[n] = v;
            n += 1;
            if n == 4 {
                flush(&quad, 4, &mut out);
                quad = [0; 4];
                n = 0;
            }
        } else if b == b'=' {
            if n == 1 {
                damaged = true;
            }
            if n > 0 {
                flush(&quad, n, &mut out);
                quad = [0; 4];
                n = 0;
            }
        } else if !matches!(b, b'\r' | b'\n' | b' ' | b'\t') {
            damaged = true;
        }
    }
    if n > 0 {
        if n == 1 {
            damaged = true;
        }
        flush(&quad, n, &mut out);
        damaged |= n != 0;
    }
    Decoded { bytes: out, damaged }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Quoted-printable (RFC 2045 6.7), tolerant: `=` followed by two hex digits is that byte, `=`
/// at the end of a line joins it with the next (trailing blanks after it allowed), and any
/// other `=` is kept as it is. Line breaks are kept as they came.
pub fn quoted_printable(input: &[u8]) -> Decoded {
    let mut out = Vec::with_capacity(input.len());
    let mut damaged = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b != b'=' {
            out.push(b);
            i += 1;
            continue;
        }
        // A soft line break: '=' then optional blanks then CRLF, LF or the end.
        let mut j = i + 1;
        while j < input.len() && matches!(input[j], b' ' | b'\t') {
            j += 1;
        }
        if j >= input.len() {
            i = j;
            continue;
        }
        if input[j] == b'\n' {
            i = j + 1;
            continue;
        }
        if input[j] == b'\r' && input.get(j + 1) == Some(&b'\n') {
            i = j + 2;
            continue;
        }
        match (input.get(i + 1).copied().and_then(hex_value), input.get(i + 2).copied().and_then(hex_value)) {
            (Some(hi), Some(lo)) => {
                out.push(hi << 4 | lo);
                i += 3;
            }
            _ => {
                damaged = true;
                out.push(b'=');
                i += 1;
            }
        }
    }
    Decoded { bytes: out, damaged }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_decodes_clean_input() {
        assert_eq!(base64(b"aGVsbG8g\r\nd29ybGQ=\r\n").bytes, b"hello world");
        assert!(!base64(b"aGVsbG8g\r\nd29ybGQ=\r\n").damaged);
    }

    #[test]
    fn base64_padding_split_across_lines_ends_each_quantum() {
        // The bug-6207-2 corpus body: "NA=" "=Mg" "==" is "4" then "2".
        assert_eq!(base64(b"NA=\r\n=Mg\r\n==\r\n").bytes, b"42");
    }

    #[test]
    fn base64_skips_junk_and_keeps_a_partial_tail() {
        // 8 valid sextets then junk holding "bc": 6 bytes plus 1 from the 2-sextet tail.
        let d = base64(b"aGVsbG8h\r\nb c ;* #$%^@%)(*-  \r\n");
        assert_eq!(d.bytes, b"hello!m");
        assert!(d.damaged);
    }

    #[test]
    fn quoted_printable_soft_breaks_hex_and_stray_equals() {
        let d = quoted_printable(b"caf=C3=A9 =\r\nlong=20line\r\n5 =3D 5 =zz\r\n");
        assert_eq!(d.bytes, "café long line\r\n5 = 5 =zz\r\n".as_bytes());
        assert!(d.damaged);
        assert_eq!(quoted_printable(b"end=  \r\nx").bytes, b"endx");
        assert_eq!(quoted_printable(b"lf=\nx=").bytes, b"lfx");
    }
}
