//! The in-repo test sandbox as a standalone process, for benchmarks and manual runs of
//! `weir replay` with `[sandbox] enabled`:
//!
//! `cargo run --release -p weir-sandbox-client --features test-sandbox --example test_sandbox_server -- --listen 127.0.0.1:0 [--token T] [--polls N]`
//!
//! Prints `listening on http://ADDR/` on its first line of output, then serves until killed.
//! `GET /_test/summary` answers what it received (tasks, every file's SHA-256, size and times
//! submitted, URLs, creation and report timestamps) without a token.

use std::net::SocketAddr;
use std::process::ExitCode;

use weir_sandbox_client::test_sandbox::TestSandbox;

const USAGE: &str = "usage: test_sandbox_server [--listen ADDR] [--token TOKEN] [--polls N]";

fn main() -> ExitCode {
    let mut listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut token = String::from("weir-bench");
    let mut polls: Option<u32> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next();
        let ok = match (flag.as_str(), value) {
            ("--listen", Some(v)) => v.parse().map(|a| listen = a).is_ok(),
            ("--token", Some(v)) => {
                token = v;
                true
            }
            ("--polls", Some(v)) => v.parse().map(|n| polls = Some(n)).is_ok(),
            _ => false,
        };
        if !ok {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    let sandbox = match TestSandbox::start_on(listen, &token) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("test_sandbox_server: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(n) = polls {
        sandbox.faults(|f| f.polls_until_reported = n);
    }
    println!("listening on {}", sandbox.url());
    // Scripts read the address from a pipe or file: it must not wait in a buffer.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
