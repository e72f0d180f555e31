//! Several workers log what one worker logs: the same records (ordering aside), the same files.
//! Captures cover what steering must keep together: both directions of TCP and UDP flows, FTP
//! data connections and their control connection, IPv4 and IPv6 fragments (some malformed),
//! tunnels, rules with flowbits.

mod common;

use std::path::{Path, PathBuf};

use common::{Scratch, eve, of_type, replay};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// eve.json without `stats` records (they count per worker), each record in a canonical text,
/// sorted.
fn records(out: &Path) -> Vec<String> {
    let mut lines: Vec<String> = eve(out)
        .into_iter()
        .filter(|r| r["event_type"] != "stats")
        .map(|r| serde_json::to_string(&r).unwrap())
        .collect();
    lines.sort();
    lines
}

fn stored_files(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = walk(&out.join("filestore")).into_iter().map(|n| format!("file {n}")).collect();
    names.extend(walk(&out.join("mail")).into_iter().map(|n| format!("mail {n}")));
    names.sort();
    names
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            found.extend(walk(&p));
        } else {
            // Relative to the store, so two output directories compare equal.
            let parent = p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            found.push(format!("{parent}/{}", e.file_name().to_string_lossy()));
        }
    }
    found
}

/// Replays `pcap` with 1, 2 and 3 workers and asserts equal outputs; returns the record count.
fn same_for_all_worker_counts(pcap: &Path, rules: Option<&Path>) -> usize {
    let s = Scratch::new();
    let mut baseline: Option<(Vec<String>, Vec<String>)> = None;
    for workers in [1, 2, 3] {
        let config = s.dir.path().join(format!("w{workers}.toml"));
        let mut text = format!("[capture]\nworkers = {workers}\n");
        if let Some(r) = rules {
            text.push_str(&format!("[detect]\nrules = [{:?}]\n", r.display().to_string()));
        }
        std::fs::write(&config, text).unwrap();
        let out = s.dir.path().join(format!("out{workers}"));
        replay(&[pcap], &out, &["-q", "--config", config.to_str().unwrap()]);
        let got = (records(&out), stored_files(&out));
        let stats = of_type(&eve(&out), "stats").len();
        assert_eq!(stats, 1, "{}: one closing stats record with {workers} workers", pcap.display());
        match &baseline {
            None => baseline = Some(got),
            Some(one) => {
                let extra: Vec<&String> = got.0.iter().filter(|l| !one.0.contains(l)).take(3).collect();
                let missing: Vec<&String> = one.0.iter().filter(|l| !got.0.contains(l)).take(3).collect();
                assert!(one.0 == got.0, "{} with {workers} workers: records differ\nonly with 1: {missing:#?}\nonly with {workers}: {extra:#?}", pcap.display());
                assert_eq!(one.1, got.1, "{} with {workers} workers: stored files differ", pcap.display());
            }
        }
    }
    baseline.map_or(0, |b| b.0.len())
}

#[test]
fn the_project_captures_log_the_same_with_several_workers() {
    let mut total = 0;
    for name in ["http", "http-lossy", "ftp", "smtp", "pop3-imap", "dns", "tls", "smb"] {
        total += same_for_all_worker_counts(&repo().join("pcaps").join(format!("{name}.pcap")), None);
    }
    assert!(total > 300, "only {total} records: the captures did not replay");
}

#[test]
fn fragments_tunnels_and_ftp_data_log_the_same_with_several_workers() {
    let corpus = repo().join("../shared/corpus/suricata-verify");
    if !corpus.is_dir() {
        println!("SKIPPED: {} not found", corpus.display());
        return;
    }
    let cases = [
        "ipv6-malformed-fragments-35",
        "ipv6-malformed-fragments-36",
        "output-eve-ftp-data",
        "vxlan-decoder-02",
        "http-post-file",
        "issue-4759.1",
    ];
    for case in cases {
        let dir = corpus.join(case);
        let pcap = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "pcap"))
            .unwrap();
        let rules = dir.join("test.rules");
        let n = same_for_all_worker_counts(&pcap, rules.exists().then_some(rules.as_path()));
        assert!(n > 0, "{case}: no records");
    }
}

/// Writes `frames` as a capture, checks that 1, 2 and 3 workers log it alike, and returns the
/// records of a run with `workers`.
fn checked_with_workers(frames: &[(weir_core::Timestamp, Vec<u8>)], workers: usize) -> Vec<serde_json::Value> {
    let s = Scratch::new();
    let pcap = s.dir.path().join("in.pcap");
    common::write_pcap(&pcap, frames);
    same_for_all_worker_counts(&pcap, None);
    let config = s.dir.path().join("run.toml");
    std::fs::write(&config, format!("[capture]\nworkers = {workers}\n")).unwrap();
    let out = s.dir.path().join("out");
    replay(&[&pcap], &out, &["-q", "--config", config.to_str().unwrap()]);
    eve(&out)
}

/// An Ethernet frame whose IPv4 packet is carried in GRE between two tunnel endpoints.
fn in_gre(frame: &[u8]) -> Vec<u8> {
    let mut gre = vec![0, 0, 0x08, 0x00];
    gre.extend_from_slice(&frame[14..]);
    let mut ip = etherparse::Ipv4Header::new(gre.len() as u16, 64, etherparse::IpNumber::GRE, [192, 0, 2, 1], [192, 0, 2, 2])
        .unwrap();
    ip.header_checksum = ip.calc_header_checksum();
    let mut out = frame[..12].to_vec();
    out.extend_from_slice(&[0x08, 0x00]);
    ip.write(&mut out).unwrap();
    out.extend_from_slice(&gre);
    out
}

#[test]
fn a_tunnels_outer_flow_is_logged_once_with_several_workers() {
    // Eight TCP sessions inside one GRE tunnel: the workers share the sessions, and the tunnel's
    // own flow must still come out once, with every frame counted.
    let mut frames = Vec::new();
    for i in 0..8u16 {
        let session = common::tcp_session(41000 + i, 80, &[(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n")], 1.0 + f64::from(i) * 0.0003);
        frames.extend(session.into_iter().map(|(ts, f)| (ts, in_gre(&f))));
    }
    frames.sort_by_key(|(ts, _)| *ts);
    let events = checked_with_workers(&frames, 2);
    let flows = of_type(&events, "flow");
    let tunnel: Vec<_> = flows.iter().filter(|f| f["dest_ip"] == "192.0.2.2" || f["src_ip"] == "192.0.2.2").collect();
    assert_eq!(tunnel.len(), 1, "{tunnel:#?}");
    let t = &tunnel[0]["flow"];
    assert_eq!(t["pkts_toserver"].as_u64().unwrap() + t["pkts_toclient"].as_u64().unwrap(), frames.len() as u64);
    assert_eq!(flows.len(), 9);
    // Both workers carried sessions, and each frame was counted once.
    let last = *of_type(&events, "stats").last().unwrap();
    assert_eq!(last["stats"]["decoder"]["pkts"].as_u64(), Some(frames.len() as u64));
    assert!(last["stats"]["workers"].as_array().unwrap().iter().all(|w| w["pkts"].as_u64().unwrap() > 0), "{last}");
}

#[test]
fn ftp_data_follows_its_control_connection_when_the_reply_is_cut_between_segments() {
    // Eight passive-mode downloads, each on its own control connection, each `227` reply cut in
    // two segments at a different place: the data connection must still reach the worker that
    // parsed its `RETR`, or its file is not extracted.
    let mut frames = Vec::new();
    let mut clock = 1.0;
    let reply_of = |port: u16| format!("227 Entering Passive Mode (10,2,2,2,{},{}).\r\n", port >> 8, port & 0xff).into_bytes();
    for i in 0..8u16 {
        let data_port = 50_000 + 7 * i;
        let mut control = common::TcpConv::open(&mut frames, &mut clock, 42_000 + i, 21);
        control.server(&mut frames, &mut clock, b"220 ready\r\n");
        control.client(&mut frames, &mut clock, b"USER anonymous\r\n");
        control.server(&mut frames, &mut clock, b"331 password\r\n");
        control.client(&mut frames, &mut clock, b"PASS x\r\n");
        control.server(&mut frames, &mut clock, b"230 in\r\n");
        control.client(&mut frames, &mut clock, b"PASV\r\n");
        let reply = reply_of(data_port);
        let cut = 2 + usize::from(i) * 5;
        control.server(&mut frames, &mut clock, &reply[..cut]);
        control.server(&mut frames, &mut clock, &reply[cut..]);
        control.client(&mut frames, &mut clock, format!("RETR file{i}.bin\r\n").as_bytes());
        control.server(&mut frames, &mut clock, b"150 sending\r\n");
        let mut data = common::TcpConv::open(&mut frames, &mut clock, 43_000 + i, data_port);
        data.server(&mut frames, &mut clock, format!("contents of file {i}\n").repeat(40).as_bytes());
        data.close(&mut frames, &mut clock);
        control.server(&mut frames, &mut clock, b"226 done\r\n");
        control.close(&mut frames, &mut clock);
    }
    let events = checked_with_workers(&frames, 3);
    let mut names: Vec<String> =
        of_type(&events, "fileinfo").iter().map(|f| f["fileinfo"]["filename"].as_str().unwrap_or("?").to_string()).collect();
    names.sort();
    assert_eq!(names, (0..8).map(|i| format!("file{i}.bin")).collect::<Vec<_>>(), "{events:#?}");
}

#[test]
fn stats_records_come_at_the_interval_and_at_the_end() {
    let s = Scratch::new();
    let config = s.dir.path().join("c.toml");
    std::fs::write(&config, "[capture]\nworkers = 2\n[output]\nstats_interval = 1\n").unwrap();
    let out = s.dir.path().join("out");
    // 1.8 s of packet time: at least one periodic record before the closing one.
    replay(&[&repo().join("pcaps/http-lossy.pcap")], &out, &["-q", "--config", config.to_str().unwrap()]);
    let events = eve(&out);
    let stats = of_type(&events, "stats");
    assert!(stats.len() >= 2, "{} stats records", stats.len());
    let last = stats.last().unwrap();
    let frames: u64 = last["stats"]["workers"].as_array().unwrap().iter().map(|w| w["pkts"].as_u64().unwrap()).sum();
    assert_eq!(last["stats"]["decoder"]["pkts"].as_u64(), Some(frames));
    assert_eq!(last["stats"]["workers"].as_array().unwrap().len(), 2);
    assert_eq!(last["stats"]["flow"]["logged"].as_u64().unwrap(), of_type(&events, "flow").len() as u64);
}
