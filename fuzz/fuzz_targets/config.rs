//! The configuration loader: TOML syntax and Weir's schema. The binary's `src/config` module is
//! compiled in here as it is (the root crate is a binary, so there is no library to link).
//!
//! Invariants: parsing never panics; every error names a line inside the text (or none);
//! a text that loads once loads again to the same referenced files.
#![no_main]
#![allow(dead_code)]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[path = "../../src/config/mod.rs"]
mod config;

/// The one function of the binary's `src/build.rs` that config validation calls, as it is there
/// (the rest of that module needs the whole binary). Keep in step with `build::host_os_policy`.
mod build {
    use crate::config::{Config, OverlapPolicy};

    pub fn host_os_policy(c: &Config) -> Result<weir_reassembly::HostOsPolicy, weir_reassembly::HostPolicyError> {
        weir_reassembly::HostOsPolicy::new(
            c.stream.host_os_policy.iter().map(|(policy, nets)| (overlap_policy(*policy), nets.as_slice())),
        )
    }

    fn overlap_policy(policy: OverlapPolicy) -> weir_reassembly::OverlapPolicy {
        use weir_reassembly::OverlapPolicy as P;
        match policy {
            OverlapPolicy::First => P::First,
            OverlapPolicy::Last => P::Last,
            OverlapPolicy::Bsd => P::Bsd,
            OverlapPolicy::BsdRight => P::BsdRight,
            OverlapPolicy::Linux => P::Linux,
            OverlapPolicy::OldLinux => P::OldLinux,
            OverlapPolicy::Windows => P::Windows,
            OverlapPolicy::Windows2k3 => P::Windows2k3,
            OverlapPolicy::Vista => P::Vista,
            OverlapPolicy::Solaris => P::Solaris,
            OverlapPolicy::OldSolaris => P::OldSolaris,
            OverlapPolicy::Hpux10 => P::Hpux10,
            OverlapPolicy::Hpux11 => P::Hpux11,
            OverlapPolicy::Irix => P::Irix,
            OverlapPolicy::Macos => P::Macos,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/etc/weir/fuzz.toml");
    let lines = text.split('\n').count();
    match config::Config::parse(text, path) {
        Ok(cfg) => {
            let again = config::Config::parse(text, path).expect("a config that loaded once loads again");
            assert_eq!(cfg.referenced_files(), again.referenced_files());
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "an error result without errors");
            for e in &errors.0 {
                if let Some(line) = e.line {
                    assert!(line >= 1 && line <= lines, "error on line {line} of {lines}: {}", e.message);
                }
            }
        }
    }
});
