//! End to end with a real proxy: Squid (from Debian) calls Weir over ICAP for every request and
//! response while curl downloads and uploads files through it from a local Python web server.
//! Weir must receive the exact file bytes, and curl must receive them unchanged.
//!
//! Everything listens on 127.0.0.1. When Squid is missing the test installs it with apt-get
//! (as root); if that fails it prints why and passes without running.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use weir_core::{Direction, StreamEvent};
use weir_extract::Emit;
use weir_extract::files::MemorySink;
use weir_extract::http::{HttpConfig, HttpState};
use weir_icap::{IcapServer, Mode, ServerConfig, Transaction};

/// Kills a process this test started when it goes out of scope, politely first.
struct Reaper {
    name: &'static str,
    child: Child,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "squid test: {} did not stop on SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn squid_binary() -> Option<PathBuf> {
    ["/usr/sbin/squid", "/usr/bin/squid", "/usr/local/sbin/squid"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Squid's path, installing the Debian package when it is missing. `Err` says why not.
fn ensure_squid() -> Result<PathBuf, String> {
    if let Some(path) = squid_binary() {
        return Ok(path);
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    if !is_root {
        return Err(
            "squid is not installed and this is not root, so apt-get cannot install it".into(),
        );
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !apt(&["install", "-y", "-qq", "squid"]) {
        // A fresh machine has no package lists yet.
        if !(apt(&["update", "-qq"]) && apt(&["install", "-y", "-qq", "squid"])) {
            return Err("`apt-get install -y squid` failed".into());
        }
    }
    squid_binary().ok_or_else(|| "squid installed but its binary was not found".into())
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn wait_for_port(port: u16, child: &mut Child, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited with {status}; log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not listen on {port}; log:\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
}

/// A web server that serves the directory and answers POST with the sha256 of what it got.
const ORIGIN_PY: &str = r#"
import hashlib, http.server, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        reply = hashlib.sha256(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

fn squid_conf(dir: &Path, squid_port: u16, icap: SocketAddr) -> String {
    let d = dir.display();
    format!(
        "http_port 127.0.0.1:{squid_port}\n\
         pid_filename {d}/squid.pid\n\
         cache_log {d}/cache.log\n\
         access_log {d}/access.log\n\
         coredump_dir {d}\n\
         cache deny all\n\
         cache_mem 8 MB\n\
         shutdown_lifetime 0 seconds\n\
         http_access allow all\n\
         icap_enable on\n\
         adaptation_send_client_ip on\n\
         icap_service weir_req reqmod_precache icap://{icap}/reqmod bypass=off\n\
         icap_service weir_resp respmod_precache icap://{icap}/respmod bypass=off\n\
         adaptation_access weir_req allow all\n\
         adaptation_access weir_resp allow all\n"
    )
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--noproxy",
            "",
            "--max-time",
            "60",
        ])
        .args(args)
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            // xorshift32: incompressible enough that no layer can shortcut the bytes.
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

#[test]
fn squid_hands_weir_the_exact_bytes_of_downloads_and_uploads() {
    let squid = match ensure_squid() {
        Ok(path) => path,
        Err(reason) => {
            println!("SKIPPED squid integration test: {reason}");
            return;
        }
    };
    for tool in ["curl", "python3"] {
        if !have(tool) {
            println!("SKIPPED squid integration test: {tool} is not installed");
            return;
        }
    }

    let dir = std::env::temp_dir().join(format!("weir-icap-squid-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("www")).unwrap();
    // Squid drops root for the `proxy` user, which must write its logs here.
    let _ = Command::new("chmod")
        .args(["0777", dir.to_str().unwrap()])
        .status();

    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "small.txt",
            b"a small text file that fits inside the ICAP preview\n".repeat(3),
        ),
        ("medium.bin", pseudo_random(200_000, 7)),
        ("large.bin", pseudo_random(3_000_000, 11)),
    ];
    for (name, bytes) in &files {
        fs::write(dir.join("www").join(name), bytes).unwrap();
    }
    let uploads: Vec<(&str, Vec<u8>)> = vec![
        ("up-small.txt", b"uploaded form text".to_vec()),
        ("up-big.bin", pseudo_random(700_000, 23)),
    ];
    for (name, bytes) in &uploads {
        fs::write(dir.join(name), bytes).unwrap();
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let (server, mut transactions) = runtime.block_on(IcapServer::bind(config)).unwrap();
    let icap_addr = server.local_addr().unwrap();
    let stats = server.stats();
    runtime.spawn(server.run());

    let mut origin = Reaper {
        name: "python http server",
        child: Command::new("python3")
            .args(["-c", ORIGIN_PY])
            .current_dir(dir.join("www"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3"),
    };
    let mut port_line = String::new();
    BufReader::new(origin.child.stdout.take().unwrap())
        .read_line(&mut port_line)
        .unwrap();
    let origin_port: u16 = port_line.trim().parse().expect("origin port");

    let squid_port = free_port();
    let conf = dir.join("squid.conf");
    fs::write(&conf, squid_conf(&dir, squid_port, icap_addr)).unwrap();
    let mut proxy = Reaper {
        name: "squid",
        child: Command::new(&squid)
            .args(["-N", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start squid"),
    };
    wait_for_port(
        squid_port,
        &mut proxy.child,
        "squid",
        &dir.join("cache.log"),
    );

    let proxy_url = format!("http://127.0.0.1:{squid_port}");
    for (name, bytes) in &files {
        let url = format!("http://127.0.0.1:{origin_port}/{name}");
        let got = curl(&["--proxy", &proxy_url, &url]);
        assert_eq!(
            hex_sha256(&got),
            hex_sha256(bytes),
            "{name} came through Squid changed"
        );
    }
    for (name, bytes) in &uploads {
        let url = format!("http://127.0.0.1:{origin_port}/upload/{name}");
        let data = format!("@{}", dir.join(name).display());
        let reply = curl(&["--proxy", &proxy_url, "--data-binary", &data, &url]);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            hex_sha256(bytes),
            "{name} reached the origin changed"
        );
    }

    // Every download is one RESPMOD and every upload one REQMOD; collect until all are seen.
    let mut seen: Vec<Transaction> = Vec::new();
    let wanted = |seen: &[Transaction]| {
        files
            .iter()
            .all(|(name, bytes)| find(seen, Mode::Respmod, name, bytes).is_some())
            && uploads
                .iter()
                .all(|(name, bytes)| find(seen, Mode::Reqmod, name, bytes).is_some())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !wanted(&seen) && Instant::now() < deadline {
        let next = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), transactions.recv()).await
        });
        if let Ok(Some(tx)) = next {
            seen.push(tx);
        }
    }
    let snapshot = stats.snapshot();
    drop(proxy);
    drop(origin);
    let access_log = fs::read_to_string(dir.join("access.log")).unwrap_or_default();

    for (name, bytes) in &files {
        let tx = find(&seen, Mode::Respmod, name, bytes).unwrap_or_else(|| {
            panic!(
                "no RESPMOD with the bytes of {name}; stats {snapshot:?}; saw {}",
                summary(&seen)
            )
        });
        assert!(tx.complete && !tx.body_truncated());
        assert!(
            tx.http_response_head.starts_with(b"HTTP/1."),
            "response head kept"
        );
        assert_eq!(
            tx.client_ip,
            Some("127.0.0.1".parse().unwrap()),
            "Squid sends X-Client-IP"
        );
        assert_eq!(
            extracted(tx),
            vec![hex_sha256(bytes)],
            "{name} extracted by the HTTP parser"
        );
    }
    for (name, bytes) in &uploads {
        let tx = find(&seen, Mode::Reqmod, name, bytes).unwrap_or_else(|| {
            panic!("no REQMOD with the bytes of {name}; saw {}", summary(&seen))
        });
        assert!(
            tx.http_request_head.starts_with(b"POST "),
            "request head kept"
        );
        assert_eq!(
            extracted(tx),
            vec![hex_sha256(bytes)],
            "{name} extracted by the HTTP parser"
        );
    }
    assert_eq!(
        snapshot.protocol_errors, 0,
        "Squid spoke ICAP Weir rejected"
    );
    assert!(
        access_log.contains("/large.bin"),
        "the proxy really carried the downloads"
    );
    let _ = fs::remove_dir_all(&dir);
    println!(
        "squid integration: {} transactions, {snapshot:?}",
        seen.len()
    );
}

/// The transaction of `mode` whose request head names `name` and whose body is `bytes`.
fn find<'a>(
    seen: &'a [Transaction],
    mode: Mode,
    name: &str,
    bytes: &[u8],
) -> Option<&'a Transaction> {
    let path = format!("/{name} ");
    let want = hex_sha256(bytes);
    seen.iter().find(|tx| {
        tx.mode == mode
            && String::from_utf8_lossy(&tx.http_request_head).contains(&path)
            && tx.body_len == bytes.len() as u64
            && hex_sha256(&tx.body) == want
    })
}

fn summary(seen: &[Transaction]) -> String {
    seen.iter()
        .map(|tx| {
            let line = tx
                .http_request_head
                .split(|&b| b == b'\r')
                .next()
                .unwrap_or(&[]);
            format!(
                "[{:?} {} body {}]",
                tx.mode,
                String::from_utf8_lossy(line),
                tx.body_len
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the transaction through Weir's HTTP parser as the binary does and returns the SHA-256 of
/// every file it extracted.
fn extracted(tx: &Transaction) -> Vec<String> {
    let config = HttpConfig::default();
    let mut http = HttpState::new(&config);
    let mut files = MemorySink::new(64 << 20);
    let mut out = Emit::default();
    for dir in [Direction::ToServer, Direction::ToClient] {
        let stream = tx.http_stream(dir);
        for event in stream.events() {
            http.on_stream(dir, event, tx.received_at, &mut files, &mut out);
        }
    }
    for dir in [Direction::ToServer, Direction::ToClient] {
        http.on_stream(dir, StreamEvent::End, tx.received_at, &mut files, &mut out);
    }
    assert!(
        out.anomalies.is_empty(),
        "HTTP anomalies on ICAP input: {:?}",
        out.anomalies
    );
    files
        .stored
        .iter()
        .map(|(sha, _)| sha.iter().map(|b| format!("{b:02x}")).collect())
        .collect()
}
