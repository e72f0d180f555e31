//! Writes a test PKI for a loopback Central Node and sensors: `ca.pem`/`ca.key`, `cn.pem`/`cn.key`
//! (for `localhost` and 127.0.0.1) and `<sensor>.pem`/`<sensor>.key` per sensor id given.
//!
//! `cargo run -p weir-sensor-link --example gen_certs -- DIR sensor-1 [sensor-2 ...]`
//! For a trial only: a real deployment issues sensor certificates from its own CA.

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or("usage: gen_certs DIR SENSOR_ID...")?);
    let sensors: Vec<String> = args.collect();
    if sensors.is_empty() {
        return Err("name at least one sensor id".into());
    }
    std::fs::create_dir_all(&dir)?;
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.distinguished_name.push(DnType::CommonName, "Weir trial CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key)?.pem())?;
    std::fs::write(dir.join("ca.key"), ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf = |names: Vec<String>, usage, file: &str| -> Result<(), Box<dyn std::error::Error>> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names.clone())?;
        p.distinguished_name.push(DnType::CommonName, names[0].as_str());
        p.extended_key_usages = vec![usage];
        std::fs::write(dir.join(format!("{file}.pem")), p.signed_by(&key, &issuer)?.pem())?;
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem())?;
        Ok(())
    };
    leaf(vec!["localhost".into(), "127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth, "cn")?;
    for s in &sensors {
        // The sensor id is the certificate's subjectAltName DNS name (and its CN, for people).
        leaf(vec![s.clone()], ExtendedKeyUsagePurpose::ClientAuth, s)?;
    }
    println!("wrote ca, cn and {} sensor certificate(s) to {}", sensors.len(), dir.display());
    Ok(())
}
