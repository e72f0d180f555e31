//! A file downloaded in 206 parts over several connections comes out whole, once, whatever the
//! number of workers the connections are steered to.

mod common;

use common::{Scratch, eve, of_type, replay, tcp_session, write_pcap};

const FILE_BYTES: usize = 6000;
const PART_BYTES: usize = 1000;

fn file() -> Vec<u8> {
    (0..FILE_BYTES).map(|i| ((i * 31) % 253) as u8).collect()
}

#[test]
fn parts_over_several_connections_join_into_one_whole_file_with_any_worker_count() {
    let s = Scratch::new();
    let whole = file();
    // Out of order, one connection each, so steering spreads them over the workers.
    let order = [3usize, 0, 5, 1, 4, 2];
    let mut frames = Vec::new();
    for (n, &part) in order.iter().enumerate() {
        let (first, last) = (part * PART_BYTES, (part + 1) * PART_BYTES - 1);
        let request = format!("GET /dl/setup.exe HTTP/1.1\r\nHost: mirror.example\r\nRange: bytes={first}-{last}\r\n\r\n");
        let mut response = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {first}-{last}/{FILE_BYTES}\r\nContent-Length: {PART_BYTES}\r\n\r\n"
        )
        .into_bytes();
        response.extend_from_slice(&whole[first..=last]);
        frames.extend(tcp_session(40000 + n as u16, 80, &[(request.as_bytes(), &response)], n as f64 * 0.1));
    }
    let pcap = s.path("ranges.pcap");
    write_pcap(&pcap, &frames);
    for workers in [1, 2, 3] {
        let config = s.path(&format!("w{workers}.toml"));
        std::fs::write(&config, format!("[capture]\nworkers = {workers}\n")).unwrap();
        let out = s.path(&format!("out{workers}"));
        replay(&[&pcap], &out, &["-q", "--config", config.to_str().unwrap()]);
        let events = eve(&out);
        let files = of_type(&events, "fileinfo");
        assert_eq!(files.len(), order.len() + 1, "{workers} workers: the parts and the whole file");
        let joined: Vec<_> = files.iter().filter(|f| f["fileinfo"]["size"] == FILE_BYTES).collect();
        assert_eq!(joined.len(), 1, "{workers} workers");
        let info = &joined[0]["fileinfo"];
        assert_eq!(info["state"], "CLOSED");
        assert_eq!(info["filename"], "/dl/setup.exe");
        assert_eq!(info["stored"], true);
        assert!(info.get("start").is_none(), "the whole file is not a part");
        let sha = info["sha256"].as_str().unwrap();
        let stored = std::fs::read(out.join("filestore").join(&sha[..2]).join(sha)).unwrap();
        assert!(stored == whole, "{workers} workers: the stored file is the served one");
    }
}
