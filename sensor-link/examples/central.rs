//! The reference Central Node, until the binary's `weir central` is wired:
//! `cargo run -p weir-sensor-link --example central -- LISTEN DATA CERTDIR`
//! (CERTDIR holds `ca.pem`, `cn.pem`, `cn.key`, as written by the `gen_certs` example).

use std::path::PathBuf;

use weir_sensor_link::receiver::{ServerTls, serve};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, data, certs] = args.as_slice() else {
        return Err("usage: central LISTEN DATA CERTDIR".into());
    };
    let certs = PathBuf::from(certs);
    let tls = ServerTls::from_files(&certs.join("ca.pem"), &certs.join("cn.pem"), &certs.join("cn.key"))?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(serve(listen.parse()?, &PathBuf::from(data), tls))?;
    Ok(())
}
