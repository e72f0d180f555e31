//! Property tests: loaders keep their invariants on any bytes, normalisation is idempotent, and
//! domain and CIDR matching agree with naive models.

use super::*;
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn spec(format: FeedFormat) -> FeedSpec {
    FeedSpec {
        name: "p".into(),
        category: "malware".into(),
        format,
        path: PathBuf::from("p"),
    }
}

/// Bytes that look enough like feeds to reach the parsers' inner paths.
fn feed_bytes() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        any::<Vec<u8>>(),
        "[a-z0-9.*-]{0,30}".prop_map(String::into_bytes),
        "(https?://)?[a-zA-Z0-9.:\\[\\]-]{0,25}(/[ -~]{0,30})?".prop_map(String::into_bytes),
        "[0-9a-f:./]{0,40}".prop_map(String::into_bytes),
        "#fields\tindicator\tindicator_type".prop_map(String::into_bytes),
        "[ -~]{0,20}\tIntel::(ADDR|URL|DOMAIN|FILE_HASH|EMAIL|SUBNET|X)"
            .prop_map(String::into_bytes),
        "\"[ -~]{0,20}\",\"[ -~]{0,20}\",\"[ -~]{0,10}\"".prop_map(String::into_bytes),
        Just(b"\"host\",\"path\"".to_vec()),
    ];
    prop::collection::vec(line, 0..40).prop_map(|lines| lines.join(&b"\n"[..]))
}

proptest! {
    #[test]
    fn loaders_count_every_line_once(format in prop::sample::select(&FeedFormat::ALL[..]), bytes in feed_bytes()) {
        let mut b = ReputationBuilder::new();
        let report = b.add_feed(&spec(format), &bytes[..]);
        let set = b.build();
        let lines = bytes.split(|&c| c == b'\n').count() as u64 - u64::from(bytes.last() == Some(&b'\n') || bytes.is_empty());
        prop_assert!(report.loaded + report.skipped <= lines, "{report:?} for {lines} lines");
        prop_assert!(report.duplicates <= report.loaded);
        prop_assert!(set.entry_count() as u64 <= report.loaded);
        prop_assert_eq!(report.issues.len() as u64, report.skipped.min(MAX_REPORTED_ISSUES as u64));
        prop_assert!(report.issues.windows(2).all(|w| w[0].line < w[1].line));
        prop_assert!(report.issues.iter().all(|i| i.line >= 1 && i.line <= lines));
    }

    #[test]
    fn url_normalisation_is_idempotent(
        s in "(HTTPS?://|https?://|//)?([a-zA-Z0-9-]{1,8}\\.){0,3}[a-zA-Z0-9-]{1,8}\\.?(:[0-9]{0,5})?(/[a-zA-Z0-9%._~/!$&'()*+,;=:@ü-]{0,30})?(\\?[a-zA-Z0-9=&%./]{0,12})?(#[a-z]{0,4})?"
    ) {
        if let Ok(first) = normalize::normalize_url(&s) {
            let again = normalize::normalize_url(&first.with_scheme());
            prop_assert_eq!(again.as_ref().map(|u| u.key()), Ok(first.key()), "{} -> {}", s, first.with_scheme());
            prop_assert!(first.key().is_ascii());
        }
    }

    #[test]
    fn domain_matching_agrees_with_a_label_suffix_model(
        entries in prop::collection::vec("[ab]{1,2}(\\.[ab]{1,2}){0,2}", 1..12),
        query in "[ab]{1,2}(\\.[ab]{1,2}){0,4}",
    ) {
        let text = entries.join("\n");
        let mut b = ReputationBuilder::new();
        b.add_feed(&spec(FeedFormat::Domains), text.as_bytes());
        let set = b.build();
        let mut expected: Vec<&str> =
            entries.iter().map(String::as_str).filter(|e| query == *e || query.ends_with(&format!(".{e}"))).collect();
        expected.sort_unstable();
        expected.dedup();
        let hits = set.lookup(&UrlArtifact { url: query.clone(), seen_in: SeenIn::DnsQuery });
        let mut got: Vec<&str> = hits.iter().map(|h| h.indicator.as_str()).collect();
        got.sort_unstable();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn cidr_matching_agrees_with_bit_arithmetic(
        nets in prop::collection::vec((any::<u32>(), 0u8..=32), 1..20),
        probe in any::<u32>(),
        near in any::<bool>(),
    ) {
        // Half the probes land inside the first block, so hits are common.
        let probe = if near { (nets[0].0 & !(u32::MAX.checked_shr(u32::from(nets[0].1)).unwrap_or(0))) | (probe & u32::MAX.checked_shr(u32::from(nets[0].1)).unwrap_or(0)) } else { probe };
        let text: Vec<String> = nets.iter().map(|(a, l)| format!("{}/{l}", Ipv4Addr::from(*a))).collect();
        let mut b = ReputationBuilder::new();
        b.add_feed(&spec(FeedFormat::Ips), text.join("\n").as_bytes());
        let set = b.build();
        let inside = |(a, l): &(u32, u8)| *l == 0 || (a ^ probe) >> (32 - u32::from(*l)) == 0;
        let mut expected: Vec<(u32, u8)> = nets.iter().filter(|n| inside(n)).map(|(a, l)| {
            let mask = if *l == 0 { 0 } else { u32::MAX << (32 - u32::from(*l)) };
            (a & mask, *l)
        }).collect();
        expected.sort_unstable();
        expected.dedup();
        let mut got: Vec<(u32, u8)> = set
            .lookup_ip(std::net::IpAddr::V4(Ipv4Addr::from(probe)), Seen::SrcIp)
            .iter()
            .filter_map(|h| h.indicator.parse::<IpNet>().ok())
            .filter_map(|n| match n.addr() { IpAddr::V4(a) => Some((u32::from(a), n.prefix_len())), IpAddr::V6(_) => None })
            .collect();
        got.sort_unstable();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn traffic_values_never_panic_and_hits_stay_bounded(
        value in prop_oneof![any::<String>(), "(https?://)?[%a-zA-Z0-9.:@\\[\\]\\\\/?#-]{0,40}"],
        seen_in in prop::sample::select(&[SeenIn::HttpUrl, SeenIn::HttpHost, SeenIn::HttpRedirect, SeenIn::EmailUrl, SeenIn::DnsQuery, SeenIn::TlsSni][..]),
    ) {
        let mut b = ReputationBuilder::new();
        b.add_feed(&spec(FeedFormat::Domains), &b"a.example\n1.2.3.4\n"[..]);
        let set = b.build();
        let hits = set.lookup(&UrlArtifact { url: value.clone(), seen_in });
        prop_assert!(hits.len() <= MAX_HITS_PER_LOOKUP);
        prop_assert!(hits.iter().all(|h| h.indicator == "a.example" || h.indicator == "1.2.3.4"));
        let exclusions = crate::exclusions::ExclusionSet::build(&crate::exclusions::ExclusionLists {
            hosts: vec!["*.a.example".into()],
            urls: vec!["*a*b*".into()],
            user_agents: vec!["*x*".into()],
            ..Default::default()
        });
        prop_assert!(exclusions.is_ok());
        if let Ok(exclusions) = exclusions {
            let _ = (exclusions.excludes_url(&value), exclusions.excludes_host(&value), exclusions.excludes_user_agent(&value));
        }
    }
}
