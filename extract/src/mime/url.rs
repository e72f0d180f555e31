//! URLs in message bodies, found as Suricata's `email.url` finds them but with the scheme kept.

/// URLs kept per message; further ones are counted but not listed.
pub const MAX_URLS_PER_MESSAGE: usize = 256;

/// Longest URL kept; longer ones are cut (they are almost certainly junk or an attack).
pub const MAX_URL_BYTES: usize = 4096;

const SCHEMES: &[&str] = &["http://", "https://", "ftp://"];

/// Appends the URLs found in `text` to `urls` (normalised, without duplicates, at most
/// [`MAX_URLS_PER_MESSAGE`]). `html` undoes the character references HTML attributes use.
pub fn find_urls(text: &str, html: bool, urls: &mut Vec<String>) {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while from < lower.len() {
        let next = SCHEMES.iter().filter_map(|s| lower[from..].find(s).map(|i| from + i)).min();
        let Some(start) = next else { break };
        let rest = &text[start..];
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                c.is_whitespace()
                    || c.is_control()
                    || matches!(c, '"' | '\'' | '<' | '>' | '`' | '{' | '}' | '|' | '\\' | '^')
            })
            .map_or(rest.len(), |(i, _)| i);
        let mut raw = &rest[..end];
        // Sentence punctuation after a URL in prose is not part of it.
        while let Some(last) = raw.chars().last() {
            if matches!(last, '.' | ',' | ';' | ':' | '!' | '?' | ')' | ']') {
                raw = &raw[..raw.len() - last.len_utf8()];
            } else {
                break;
            }
        }
        from = start + end.max(1);
        let decoded = if html { raw.replace("&amp;", "&") } else { raw.to_owned() };
        if let Some(url) = normalise(&decoded)
            && !urls.contains(&url)
            && urls.len() < MAX_URLS_PER_MESSAGE
        {
            urls.push(url);
        }
    }
}

/// `scheme://host[:port]/path?query`, with scheme and host lower-cased, a `/` path when there
/// is none, and the fragment dropped. None when there is no host.
pub fn normalise(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split('#').next().unwrap_or("");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    // Credentials before '@' are not part of where the URL leads.
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() || host.starts_with(':') {
        return None;
    }
    let mut out = format!("{}://{}", scheme.to_ascii_lowercase(), host.to_ascii_lowercase());
    if !path.starts_with('/') {
        out.push('/');
    }
    out.push_str(path);
    if out.len() > MAX_URL_BYTES {
        let mut cut = MAX_URL_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_html_and_prose() {
        let mut urls = Vec::new();
        find_urls(
            "<div>http://codashop-free01.duckdns.org/</div><a href=\"HTTPS://Ex.COM/A?b=1&amp;c=2#top\">",
            true,
            &mut urls,
        );
        find_urls("see ftp://files.example.org. or (http://x.test/p).", false, &mut urls);
        find_urls("again http://codashop-free01.duckdns.org/ and http:// nothing", false, &mut urls);
        assert_eq!(
            urls,
            [
                "http://codashop-free01.duckdns.org/",
                "https://ex.com/A?b=1&c=2",
                "ftp://files.example.org/",
                "http://x.test/p",
            ]
        );
    }

    #[test]
    fn url_count_is_capped() {
        let text: String = (0..MAX_URLS_PER_MESSAGE + 50).map(|i| format!("http://h{i}.test/ ")).collect();
        let mut urls = Vec::new();
        find_urls(&text, false, &mut urls);
        assert_eq!(urls.len(), MAX_URLS_PER_MESSAGE);
    }
}
