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
