//! Splits one rule's text into its header tokens and its `keyword[:value]` options.
//!
//! Suricata ends an option at the first `;` that is not escaped with a backslash; quotes do not
//! protect a `;` (a `;` inside a string must be written `\;` or `|3b|`). We follow that, so a
//! rule that only loads here because of a more forgiving tokenizer cannot exist.

use super::RuleError;

/// Longest rule text accepted, continuation lines joined. Suricata's own limit is 8 KiB per
/// line for rule files (`DETECT_MAX_RULE_SIZE`) but it reads longer rules from multi-line
/// input; we allow more, yet keep a bound so a file with no newline cannot grow one rule
/// without end.
pub const MAX_RULE_LEN: usize = 64 * 1024;

/// Most options one rule may carry; ET's largest rules use under 100.
pub const MAX_OPTIONS: usize = 1024;

/// One `keyword` or `keyword:value` option, value still raw (escapes and quotes intact),
/// surrounding whitespace removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOption<'a> {
    pub keyword: &'a str,
    pub value: Option<&'a str>,
}

/// The header tokens (action, protocol, addresses, ports, direction) and the options.
#[derive(Debug)]
pub struct RawRule<'a> {
    pub header: Vec<&'a str>,
    pub options: Vec<RawOption<'a>>,
}

pub fn split_rule(text: &str) -> Result<RawRule<'_>, RuleError> {
    if text.len() > MAX_RULE_LEN {
        return Err(RuleError::TooLong {
            len: text.len(),
            limit: MAX_RULE_LEN,
        });
    }
    let open = text.find('(').ok_or(RuleError::MissingOptions)?;
    let header = split_header(&text[..open])?;
    let body = text[open + 1..].trim_end();
    let body = body.strip_suffix(')').ok_or(RuleError::UnclosedOptions)?;
    let options = split_options(body)?;
    Ok(RawRule { header, options })
}

/// Whitespace-separated, but a `[...]` group may contain spaces (`[1.2.3.4, 5.6.7.8]`).
fn split_header(header: &str) -> Result<Vec<&str>, RuleError> {
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut start: Option<usize> = None;
    for (i, c) in header.char_indices() {
        match c {
            '[' => {
                depth += 1;
                start.get_or_insert(i);
            }
            ']' => {
                depth = depth.checked_sub(1).ok_or(RuleError::UnbalancedBrackets)?;
            }
            c if c.is_whitespace() && depth == 0 => {
                if let Some(s) = start.take() {
                    tokens.push(&header[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if depth != 0 {
        return Err(RuleError::UnbalancedBrackets);
    }
    if let Some(s) = start {
        tokens.push(&header[s..]);
    }
    Ok(tokens)
}

fn split_options(body: &str) -> Result<Vec<RawOption<'_>>, RuleError> {
    let mut options = Vec::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Skip separators and whitespace between options.
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b';') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let start = i;
        let mut escaped = false;
        while i < bytes.len() {
            let b = bytes[i];
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b';' {
                break;
            }
            i += 1;
        }
        if i >= bytes.len() {
            // Suricata requires every option, the last included, to end with `;`.
            return Err(RuleError::UnterminatedOption(truncate(
                body[start..].trim(),
            )));
        }
        let text = body[start..i].trim();
        i += 1;
        let (keyword, value) = match text.find(':') {
            Some(colon) => (text[..colon].trim(), Some(text[colon + 1..].trim())),
            None => (text, None),
        };
        if keyword.is_empty() {
            return Err(RuleError::EmptyKeyword);
        }
        if options.len() >= MAX_OPTIONS {
            return Err(RuleError::TooManyOptions { limit: MAX_OPTIONS });
        }
        options.push(RawOption { keyword, value });
    }
    Ok(options)
}

/// Keeps rejection reasons to one readable line.
pub fn truncate(s: &str) -> String {
    const SHOWN: usize = 60;
    if s.len() <= SHOWN {
        return s.to_string();
    }
    let mut end = SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Removes the surrounding quotes of a string value and undoes Suricata's escapes
/// (`\"`, `\;`, `\\`, `\:`; any other escaped character stands for itself).
pub fn unquote(value: &str) -> Result<String, RuleError> {
    let inner = strip_quotes(value)?;
    Ok(unescape(inner))
}

/// The text between the quotes, escapes intact. A value that opens a quote must close it
/// with an unescaped quote at its very end.
pub fn strip_quotes(value: &str) -> Result<&str, RuleError> {
    let value = value.trim();
    let Some(rest) = value.strip_prefix('"') else {
        return Ok(value);
    };
    if !ends_with_unescaped_quote(rest) {
        return Err(RuleError::UnbalancedQuotes);
    }
    let inner = &rest[..rest.len() - 1];
    if has_unescaped_quote(inner) {
        return Err(RuleError::UnbalancedQuotes);
    }
    Ok(inner)
}

/// Like [`strip_quotes`] but allows unescaped quotes inside (used for `pcre`).
pub fn strip_outer_quotes(value: &str) -> Result<&str, RuleError> {
    let value = value.trim();
    let Some(rest) = value.strip_prefix('"') else {
        return Ok(value);
    };
    if !ends_with_unescaped_quote(rest) {
        return Err(RuleError::UnbalancedQuotes);
    }
    Ok(&rest[..rest.len() - 1])
}

fn ends_with_unescaped_quote(s: &str) -> bool {
    if !s.ends_with('"') {
        return false;
    }
    let backslashes = s[..s.len() - 1]
        .bytes()
        .rev()
        .take_while(|&b| b == b'\\')
        .count();
    backslashes % 2 == 0
}

fn has_unescaped_quote(s: &str) -> bool {
    let mut escaped = false;
    for b in s.bytes() {
        if escaped {
            escaped = false;
        } else if b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            return true;
        }
    }
    false
}

pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_groups_keep_their_spaces() {
        let raw = split_rule("alert tcp [1.2.3.4, 5.6.7.8] any -> $HOME_NET 80 (sid:1;)").unwrap();
        assert_eq!(
            raw.header,
            vec![
                "alert",
                "tcp",
                "[1.2.3.4, 5.6.7.8]",
                "any",
                "->",
                "$HOME_NET",
                "80"
            ]
        );
    }

    #[test]
    fn options_end_at_unescaped_semicolons_only() {
        let raw = split_rule(
            r#"alert ip any any -> any any (msg:"a\;b"; content:"x\\"; nocase; sid:1;)"#,
        )
        .unwrap();
        assert_eq!(
            raw.options,
            vec![
                RawOption {
                    keyword: "msg",
                    value: Some(r#""a\;b""#)
                },
                RawOption {
                    keyword: "content",
                    value: Some(r#""x\\""#)
                },
                RawOption {
                    keyword: "nocase",
                    value: None
                },
                RawOption {
                    keyword: "sid",
                    value: Some("1")
                },
            ]
        );
    }

    #[test]
    fn a_quoted_semicolon_still_ends_the_option_as_in_suricata() {
        let raw = split_rule(r#"alert ip any any -> any any (msg:"a;b"; sid:1;)"#).unwrap();
        assert_eq!(
            raw.options[0],
            RawOption {
                keyword: "msg",
                value: Some("\"a")
            }
        );
        assert_eq!(strip_quotes("\"a"), Err(RuleError::UnbalancedQuotes));
    }

    #[test]
    fn last_option_needs_its_semicolon() {
        assert!(matches!(
            split_rule("alert ip any any -> any any (sid:1)"),
            Err(RuleError::UnterminatedOption(_))
        ));
        assert!(matches!(
            split_rule("alert ip any any -> any any (sid:1;"),
            Err(RuleError::UnclosedOptions)
        ));
        assert!(matches!(
            split_rule("alert ip any any -> any any"),
            Err(RuleError::MissingOptions)
        ));
    }

    #[test]
    fn unquote_undoes_suricata_escapes() {
        assert_eq!(unquote(r#""a\"b\;c\\d\:e""#).unwrap(), r#"a"b;c\d:e"#);
        assert_eq!(
            unquote(r#""ends with backslash\\""#).unwrap(),
            r"ends with backslash\"
        );
        assert_eq!(unquote(r#""open"#), Err(RuleError::UnbalancedQuotes));
        assert_eq!(unquote(r#""a"b""#), Err(RuleError::UnbalancedQuotes));
        assert_eq!(unquote("bare").unwrap(), "bare");
    }
}
