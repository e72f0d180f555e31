//! Helpers for the `weir icap` tests: run the binary on an ephemeral port, speak ICAP to it, stop
//! it with SIGTERM.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a test waits for Weir to start, answer or stop before it calls it hung.
const PATIENCE: Duration = Duration::from_secs(60);

/// A running `weir icap`. Dropping it without [`Weir::terminate`] kills it.
pub struct Weir {
    child: Option<Child>,
    pub addr: SocketAddr,
    stderr: mpsc::Receiver<String>,
}

impl Weir {
    /// Starts `weir icap --listen 127.0.0.1:0 --out OUT [ARGS]` and waits for the address it
    /// announces.
    pub fn start(out: &Path, args: &[&str]) -> Weir {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["icap", "--listen", "127.0.0.1:0", "--out"])
            .arg(out)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start weir icap");
        let pipe = child.stderr.take().expect("stderr piped");
        let (lines_tx, lines) = mpsc::channel();
        // Drained on its own thread, so Weir never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut seen = String::new();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(wait) {
                Ok(line) => {
                    seen.push_str(&line);
                    seen.push('\n');
                    if let Some(rest) = line.strip_prefix("weir: ICAP listening on ") {
                        let addr = rest.split(';').next().unwrap_or("").trim().parse().expect("announced address");
                        return Weir { child: Some(child), addr, stderr: lines };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait();
                    panic!("weir icap did not announce its address ({status:?}); stderr:\n{seen}");
                }
            }
        }
    }

    /// Sends a signal (`HUP`, ...) and waits up to [`PATIENCE`] for a stderr line containing
    /// `needle`; returns whether it came.
    #[allow(dead_code)]
    pub fn signal_and_wait_for(&self, signal: &str, needle: &str) -> bool {
        let pid = self.child.as_ref().map(|c| c.id().to_string()).unwrap_or_default();
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(&pid).status().is_ok_and(|s| s.success());
        let deadline = Instant::now() + PATIENCE;
        while sent {
            match self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// Sends SIGTERM and waits for the exit; returns the status and everything on stderr after
    /// the announcement.
    pub fn terminate(self) -> (ExitStatus, String) {
        self.stop("TERM")
    }

    /// Sends the signal (`TERM`, `INT`) and waits for the exit, as [`Weir::terminate`].
    pub fn stop(mut self, signal: &str) -> (ExitStatus, String) {
        let mut child = self.child.take().expect("running");
        let pid = child.id().to_string();
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(&pid).status().expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid} failed");
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for weir") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("weir icap did not exit after SIG{signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut rest = String::new();
        // The drain thread ends at EOF, which follows the exit.
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(5)) {
            rest.push_str(&line);
            rest.push('\n');
        }
        (status, rest)
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One ICAP connection.
pub struct IcapClient {
    stream: TcpStream,
}

impl IcapClient {
    pub fn connect(addr: SocketAddr) -> IcapClient {
        let stream = TcpStream::connect(addr).expect("connect to weir icap");
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        IcapClient { stream }
    }

    /// Sends one request and reads the answer's head (Weir's answers here carry no body).
    pub fn exchange(&mut self, request: &[u8]) -> String {
        self.stream.write_all(request).expect("send ICAP request");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = self.stream.read(&mut byte).expect("read ICAP answer");
            assert!(n == 1, "connection closed mid-answer after {:?}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        String::from_utf8(head).expect("ASCII answer")
    }
}

/// ICAP chunked body: the data in chunks of at most `chunk` bytes, then the last chunk.
pub fn chunked(data: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// `OPTIONS icap://host/service`.
pub fn options(service: &str) -> Vec<u8> {
    format!("OPTIONS icap://127.0.0.1/{service} ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n")
        .into_bytes()
}

/// A RESPMOD carrying the request head, the response head and the whole body (no preview).
pub fn respmod(client_ip: Option<&str>, request_head: &str, response_head: &str, body: &[u8]) -> Vec<u8> {
    let client = client_ip.map(|ip| format!("X-Client-IP: {ip}\r\n")).unwrap_or_default();
    let res_at = request_head.len();
    let body_at = res_at + response_head.len();
    let mut out = format!(
        "RESPMOD icap://127.0.0.1/respmod ICAP/1.0\r\nHost: 127.0.0.1\r\n{client}Allow: 204\r\n\
         Encapsulated: req-hdr=0, res-hdr={res_at}, res-body={body_at}\r\n\r\n{request_head}{response_head}"
    )
    .into_bytes();
    out.extend_from_slice(&chunked(body, 4000));
    out
}

/// A REQMOD carrying the request head and its body (no preview).
pub fn reqmod(client_ip: Option<&str>, request_head: &str, body: &[u8]) -> Vec<u8> {
    let client = client_ip.map(|ip| format!("X-Client-IP: {ip}\r\n")).unwrap_or_default();
    let body_at = request_head.len();
    let mut out = format!(
        "REQMOD icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\n{client}Allow: 204\r\n\
         Encapsulated: req-hdr=0, req-body={body_at}\r\n\r\n{request_head}"
    )
    .into_bytes();
    out.extend_from_slice(&chunked(body, 16));
    out
}
