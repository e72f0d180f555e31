//! Every reputation feed format on feed text from the input.
//!
//! Invariant: entries loaded plus lines skipped equals the lines the format considers (every
//! line that is not blank, a comment or a header), counted here independently of the loader;
//! duplicates never exceed loaded entries; the built set holds no more entries than were loaded.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use weir_detect::reputation::{FeedFormat, FeedSpec, ReputationBuilder, MAX_LINE_LEN};

/// Lines as the loader splits them: on `\n`, the last one counted if not empty.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|&b| b == b'\n').map(|l| l.strip_suffix(b"\n").unwrap_or(l))
}

/// Whether a line is data the format must either load or skip (count it), or is ignored.
fn considered(format: FeedFormat, line: &[u8]) -> bool {
    if line.len() > MAX_LINE_LEN {
        return true;
    }
    let Ok(line) = std::str::from_utf8(line) else { return true };
    let line = line.trim_end_matches(['\r', '\n']);
    match format {
        FeedFormat::UrlhausCsv => {
            let t = line.trim();
            !t.is_empty() && !t.starts_with('#')
        }
        FeedFormat::ZeekIntel => !line.trim().is_empty() && !line.starts_with('#'),
        _ => {
            let t = line.trim();
            !t.is_empty() && !t.starts_with(['#', '!', ';'])
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, text)) = data.split_first() else { return };
    let format = FeedFormat::ALL[usize::from(selector) % FeedFormat::ALL.len()];
    let spec = FeedSpec { name: "fuzz".into(), category: "test".into(), format, path: PathBuf::from("fuzz.feed") };
    let mut builder = ReputationBuilder::new();
    let report = builder.add_feed(&spec, text);
    let set = builder.build();

    let mut expected = 0u64;
    for (i, line) in lines(text).enumerate() {
        // A fatal header problem (Zeek) stops the loader at that line.
        if let Some(err) = &report.error {
            if err.starts_with(&format!("line {}:", i + 1)) {
                break;
            }
        }
        expected += u64::from(considered(format, line));
    }
    let counted = report.loaded + report.skipped;
    match format {
        // A URLhaus-style header row without `#` is learnt, not loaded: at most one.
        FeedFormat::UrlhausCsv => assert!(
            counted == expected || counted + 1 == expected,
            "{format}: {} loaded + {} skipped, {expected} data lines",
            report.loaded,
            report.skipped
        ),
        _ => assert_eq!(counted, expected, "{format}: {} loaded + {} skipped", report.loaded, report.skipped),
    }
    assert!(report.duplicates <= report.loaded);
    assert!(set.entry_count() as u64 <= report.loaded - report.duplicates);
    assert!(report.issues.len() as u64 <= report.skipped);
});
