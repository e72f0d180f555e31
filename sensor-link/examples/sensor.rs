//! A stand-in sensor: sends EVE lines from a file (or stdin) and the files of a filestore to a
//! Central Node, then waits until the spool is empty and prints the link's status.
//! `cargo run -p weir-sensor-link --example sensor -- URL SENSOR_ID CERTDIR SPOOL EVE_JSON [FILESTORE]`

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use weir_sensor_link::{ClientTls, Link, LinkConfig, MailStore};
use weir_spool::{ContentRef, Filestore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (url, sensor, certs, spool, eve) = match args.as_slice() {
        [u, s, c, sp, e, ..] => (u, s, PathBuf::from(c), PathBuf::from(sp), e),
        _ => return Err("usage: sensor URL SENSOR_ID CERTDIR SPOOL EVE_JSON [FILESTORE]".into()),
    };
    let tls = ClientTls::from_files(&certs.join("ca.pem"), &certs.join(format!("{sensor}.pem")), &certs.join(format!("{sensor}.key")))?;
    let filestore = args.get(5).map(PathBuf::from).unwrap_or_else(|| spool.join("no-filestore"));
    let link = Link::start(
        LinkConfig::new(url.as_str(), sensor.as_str(), tls, &spool),
        Arc::new(Filestore::new(&filestore)),
        Arc::new(MailStore::new(spool.join("no-mail"))),
        Arc::new(|_, _| Ok(())),
    )?;
    let reader: Box<dyn BufRead> =
        if eve == "-" { Box::new(std::io::stdin().lock()) } else { Box::new(std::io::BufReader::new(std::fs::File::open(eve)?)) };
    for line in reader.lines() {
        let line = line?;
        if !line.trim().is_empty() {
            link.event(line.into_bytes());
        }
    }
    for entry in walk(&filestore) {
        let bytes = std::fs::read(&entry)?;
        let sha: [u8; 32] = Sha256::digest(&bytes).into();
        link.file(ContentRef { sha256: sha, len: bytes.len() as u64 }, serde_json::json!({}));
    }
    link.flush()?;
    while link.status().pending() > 0 {
        std::thread::sleep(Duration::from_millis(200));
    }
    println!("{}", serde_json::to_string_pretty(&link.shutdown())?);
    Ok(())
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            out.push(p);
        }
    }
    out
}
