//! Reading captures written by other tools: two fixtures made with Wireshark's own writers, and
//! every pcap of the suricata-verify corpus. Expected values come from tshark 4.0 / capinfos
//! (`tshark -r F -T fields -e frame.number -e frame.time_epoch -e frame.len -e frame.cap_len`).

use std::path::{Path, PathBuf};

use weir_capture::{CaptureWarning, FileSource, PacketSource};
use weir_core::LinkType;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// (nanoseconds since the epoch, link type, wire length, captured length) of every packet.
fn summary(source: &mut FileSource) -> Vec<(u64, LinkType, u32, usize)> {
    let mut out = Vec::new();
    while let Some(p) = source.next_packet().unwrap() {
        out.push((p.ts.as_nanos(), p.link, p.orig_len, p.data.len()));
    }
    out
}

/// `mergecap -w F bug-7552-01/input.pcap iponly-midstream-01/input.pcap`: one section, a NULL
/// and an Ethernet interface, SHB options, Wireshark's pcapng writer.
#[test]
fn mergecap_pcapng_with_two_link_types() {
    let mut source = FileSource::open(&[data("mergecap-null-ether.pcapng")]).unwrap();
    assert_eq!(
        summary(&mut source),
        [
            (1_594_625_943_024_609_000, LinkType::NULL, 169, 169),
            (1_594_625_943_024_692_000, LinkType::NULL, 56, 56),
            (1_698_266_998_754_882_000, LinkType::ETHERNET, 108, 108),
        ]
    );
    assert!(source.warnings().is_empty());
}

/// `editcap -F nsecpcap bug-4503/input.pcap F`: the nanosecond magic as libpcap writes it.
#[test]
fn editcap_nanosecond_pcap() {
    let mut source = FileSource::open(&[data("editcap-nsec.pcap")]).unwrap();
    assert_eq!(
        summary(&mut source),
        [
            (1_622_367_940_267_065_000, LinkType::ETHERNET, 90, 90),
            (1_622_367_940_293_183_000, LinkType::ETHERNET, 153, 153)
        ]
    );
}

/// The corpus sits in `../shared` beside the repository (as scripts/test.sh expects);
/// `WEIR_SV_CORPUS` points elsewhere. Where it is absent the corpus tests say so and pass.
fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("WEIR_SV_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/suricata-verify"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("{} not present; corpus test skipped", dir.display());
        None
    }
}

/// Packet counts by capinfos. smtp-to-comma's pcap was edited by hand upstream: its 19th
/// record claims 3925868813 bytes, so readers stop after 18 (tshark: "File has 3925868813-byte
/// packet, bigger than maximum of 262144").
const COUNTS: &[(&str, u64)] = &[
    ("DetectEngineHttpRawUriTest22/test.fpc.pcap", 5),
    ("alert-testmyids-async/input.pcap", 4),
    ("alert-testmyids-midstream/input.pcap", 5),
    ("bug-1045/smtpsuricataflowbitsFN.pcap", 19),
    ("bug-1401-03/80000000-037-PTP_Example_IPv4_HTTP_Session-PUBLIC-tp-01.pcap", 7),
    ("bug-4503/input.pcap", 2),
    ("bug-4877/input.pcap", 408),
    ("bug-5392/TPWhite-carved-out-7787-s1.pcap", 43),
    ("bug-6207-1/input.pcap", 85),
    ("bug-6207-2/input.pcap", 79),
    ("bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap", 3),
    ("bug-7552-01/input.pcap", 2),
    ("bug-78-uricontent/input.pcap", 13),
    ("bug-8205-gna-tna-una/input.pcap", 12),
    ("detect-app-layer-protocol-01/input.pcap", 10),
    ("detect-email-body_md5-auto/input.pcap", 60),
    ("detect-uricontent-04/input.pcap", 1),
    ("detect-uricontent-05/input.pcap", 1),
    ("detection_filter-distinct-srcport-no-dups/input.pcap", 3),
    ("dns-detect-query-04/input.pcap", 1),
    ("dns-eve-v2-udp-nxdomain-soa/dns-udp-nxdomain-soa.pcap", 2),
    ("eve-flow-vlan-02/input.pcap", 3),
    ("eve-flow-vlan/input.pcap", 2),
    ("eve-payload-02-tcp-exact-overlap-policy-oldlinux/tcp-overlap.pcap", 7),
    ("eve-payload-05-tcp-data-gap/tcp-simple-gap2.pcap", 7),
    ("file-match-crossed/http-multipart-post.pcap", 45),
    ("filestore-dont/input.pcap", 16),
    ("filestore-ftp-active-mode/ftp-active-mode.pcap", 47),
    ("filestore-issue-5868/bidi-logo.pcap", 32),
    ("filestore-v2.9-stream-depth/input.pcap", 239),
    ("ftp-command-data-01/input.pcap", 40),
    ("http-all-headers/input.pcap", 34),
    ("http-async-cli/input.pcap", 8),
    ("http-async/input.pcap", 16),
    ("http-body-inspect/http-aptget-ids-02-s2.pcap", 359),
    ("http-chunked/input.pcap", 5),
    ("http-evader-022/input.pcap", 8),
    ("http-evader-058/input.pcap", 8),
    ("http-evader-078/input.pcap", 8),
    ("http-evader-098/input.pcap", 8),
    ("http-evader-144/input.pcap", 8),
    ("http-evader-153/input.pcap", 8),
    ("http-evader-182/input.pcap", 8),
    ("http-evader-249/input.pcap", 8),
    ("http-evader-282/input.pcap", 8),
    ("http-evader-323/input.pcap", 8),
    ("http-evader-352/input.pcap", 8),
    ("http-evader-378/input.pcap", 8),
    ("http-evader-485/input.pcap", 8),
    ("http-evader-500/input.pcap", 8),
    ("http-gap-double/input.pcap", 30),
    ("http-gap-simple/input.pcap", 31),
    ("http-gap-whole-body/input.pcap", 31),
    ("http-multiple100/input.pcap", 48),
    ("http-post-data-decompression/input.pcap", 10),
    ("http-post-file/input.pcap", 28),
    ("http-range-multiflows/input.pcap", 614),
    ("http-request-header-multi/input.pcap", 5),
    ("http-request-header/input.pcap", 10),
    ("http-uri-spaces/input.pcap", 14),
    ("iponly-midstream-01/input.pcap", 1),
    ("ipv6-malformed-fragments-35/frag-35.pcap", 14),
    ("ipv6-malformed-fragments-36/frag-36.pcap", 12),
    ("issue-4759.1/tcpdns.pcap", 20),
    ("ja4-cl-handshake/input.pcap", 14),
    ("mime-quoted-printable/input.pcap", 78),
    ("output-eve-ftp-data/input.pcap", 1350),
    ("smb-length-5786/input.pcap", 689),
    ("smtp-pipelining/input.pcap", 18),
    ("smtp-rejected-ehlo-preserves-envelope/input.pcap", 23),
    ("smtp-startssl/input.pcap", 38),
    ("smtp-to-comma/10.7.29.101_49898-178.63.41.150_25.pcap", 18),
    ("smtp-url-base64/smtp-url-b64.pcap", 56),
    ("stream-async-6063-cli-01/http-request-header-async-cli.pcap", 5),
    ("stream-async-6063-cli-03/simple_http_download.onesided.nosyn.pcap", 11),
    ("tcp-fastopen-01/tfo.pcap", 16),
    ("tcp-fastopen-13/tfo.pcap", 8),
    ("tcp-split-handshake-02-5whs/split-handshake-5whs.pcap", 8),
    ("tls-client-hello-frag-01/dump_mtu300.pcap", 62),
    ("tls13-draft18/tls13_draft18.pcap", 28),
    ("vxlan-decoder-02/vxlan.pcap", 10),
];

#[test]
fn every_suricata_verify_pcap_reads_with_capinfos_counts() {
    let Some(corpus) = corpus_dir() else {
        return;
    };
    let corpus = corpus.as_path();
    // Every pcap present must be in the table, so a new one is noticed.
    let mut found: Vec<String> = Vec::new();
    for dir in std::fs::read_dir(corpus).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "pcap" || e == "pcapng") {
                found.push(file.strip_prefix(corpus).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    found.sort();
    let mut listed: Vec<String> = COUNTS.iter().map(|(p, _)| p.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);

    for (path, expected) in COUNTS {
        let full = corpus.join(path);
        let mut source = FileSource::open(&[&full]).unwrap();
        let mut count = 0;
        while source.next_packet().unwrap().is_some() {
            count += 1;
        }
        assert_eq!(count, *expected, "{path}");
        if path.starts_with("smtp-to-comma/") {
            assert_eq!(
                source.warnings(),
                [CaptureWarning::RecordTooLarge {
                    file: full.clone(),
                    packet: 19,
                    offset: 3695,
                    length: 3_925_868_813,
                    limit: 262_144
                }]
            );
        } else {
            assert!(source.warnings().is_empty(), "{path}: {:?}", source.warnings());
        }
        assert_eq!(source.bytes_read(), source.total_bytes(), "{path}");
    }

    // The whole corpus as one capture, through the directory form.
    let dirs: Vec<PathBuf> = {
        let mut d: Vec<PathBuf> = COUNTS.iter().map(|(p, _)| corpus.join(p).parent().unwrap().to_path_buf()).collect();
        d.dedup();
        d
    };
    let mut source = FileSource::open(&dirs).unwrap();
    let mut total = 0u64;
    while source.next_packet().unwrap().is_some() {
        total += 1;
    }
    assert_eq!(total, COUNTS.iter().map(|(_, n)| n).sum::<u64>());
    assert_eq!(total, 5037);
}

/// First and last packets and byte sums against tshark, for two of the larger files.
#[test]
fn suricata_verify_values_match_tshark() {
    let Some(corpus) = corpus_dir() else {
        return;
    };
    let corpus = corpus.as_path();
    let mut ftp = FileSource::open(&[corpus.join("output-eve-ftp-data/input.pcap")]).unwrap();
    let packets = summary(&mut ftp);
    assert_eq!(packets.len(), 1350);
    assert_eq!(packets[0], (1_371_506_299_036_212_000, LinkType::ETHERNET, 54, 54));
    assert_eq!(packets[1349], (1_371_506_397_531_737_000, LinkType::ETHERNET, 70, 70));
    assert_eq!(packets.iter().map(|p| p.3).sum::<usize>(), 168_593);

    let mut smb = FileSource::open(&[corpus.join("smb-length-5786/input.pcap")]).unwrap();
    let packets = summary(&mut smb);
    assert_eq!(packets.len(), 689);
    assert_eq!(packets[0], (1_612_510_490_000_000_000, LinkType::NULL, 52, 52));
    assert_eq!(packets[688], (1_612_510_490_000_688_000, LinkType::NULL, 116, 116));
    assert_eq!(packets.iter().map(|p| u64::from(p.2)).sum::<u64>(), 303_307);
}
