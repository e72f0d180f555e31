//! End-to-end: bad input gives a one-line error naming the file, or a warning and a complete run.

mod common;

use common::*;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let s = Scratch::new();
    let o = replay_status(&[&s.path("nope.pcap")], &s.path("out"), &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("nope.pcap"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_directory_without_captures_is_an_error() {
    let s = Scratch::new();
    let dir = s.path("empty");
    std::fs::create_dir(&dir).unwrap();
    let o = replay_status(&[&dir], &s.path("out"), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("empty"), "{}", stderr(&o));
}

#[test]
fn a_file_that_is_not_a_capture_is_an_error_naming_it() {
    let s = Scratch::new();
    let f = s.path("notes.txt");
    std::fs::write(&f, "these are not packets, just some text long enough to read a header from").unwrap();
    let o = replay_status(&[&f], &s.path("out"), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("notes.txt"), "{}", stderr(&o));
}

#[test]
fn a_truncated_last_record_warns_and_keeps_the_rest() {
    let s = Scratch::new();
    let pcap = s.path("cut.pcap");
    write_pcap(&pcap, &[(at(0.0), udp(CLIENT, 1, SERVER, 2, b"first")), (at(1.0), udp(CLIENT, 3, SERVER, 4, b"second"))]);
    let bytes = std::fs::read(&pcap).unwrap();
    std::fs::write(&pcap, &bytes[..bytes.len() - 10]).unwrap();
    let out = s.path("out");
    let o = replay_status(&[&pcap], &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning") && stderr(&o).contains("cut.pcap"), "{}", stderr(&o));
    let events = eve(&out);
    assert_eq!(of_type(&events, "flow").len(), 1, "the complete first packet is processed");
}

#[test]
fn zero_length_and_jumbo_packets_do_not_stop_the_run() {
    let s = Scratch::new();
    let pcap = s.path("odd.pcap");
    let jumbo = udp(CLIENT, 9, SERVER, 9, &vec![0x41; 9000]);
    write_pcap(&pcap, &[(at(0.0), Vec::new()), (at(0.1), vec![0xff; 3]), (at(0.2), jumbo.clone())]);
    let out = s.path("out");
    let o = replay_status(&[&pcap], &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let events = eve(&out);
    let flows = of_type(&events, "flow");
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0]["flow"]["bytes_toserver"], jumbo.len() as u64);
    assert!(!of_type(&events, "anomaly").is_empty(), "the runt frames are counted anomalies");
}

#[test]
fn a_bad_config_names_file_and_line_and_fails() {
    let s = Scratch::new();
    let pcap = s.path("in.pcap");
    write_pcap(&pcap, &[(at(0.0), udp(CLIENT, 1, SERVER, 2, b"x"))]);
    let config = s.path("bad.toml");
    std::fs::write(&config, "[output]\nfilestore = true\nfilestor = false\n").unwrap();
    let o = replay_status(&[&pcap], &s.path("out"), &["--config", config.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.toml:3:"), "{}", stderr(&o));
    let o = weir().args(["check-config", "--config", config.to_str().unwrap()]).output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("bad.toml:3: [output] unknown field `filestor`"), "{}", stderr(&o));
}

#[test]
fn check_config_reports_bad_exclusions_and_unreadable_feeds() {
    let s = Scratch::new();
    let config = s.path("weir.toml");
    std::fs::write(
        &config,
        "[exclusions]\nips = [\"10.0.0.0/99\"]\n\n[[detect.feeds]]\nname = \"f\"\npath = \"missing.txt\"\nformat = \"domains\"\n",
    )
    .unwrap();
    let o = weir().args(["check-config", "--config", config.to_str().unwrap()]).output().unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("10.0.0.0/99"), "{err}");
    assert!(err.contains("missing.txt"), "{err}");
}
