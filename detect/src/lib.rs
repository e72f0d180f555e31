//! Suricata-syntax IDS rules, reputation feeds and matching.
//!
//! This round holds the rule language ([`rules`]): parsing Suricata 8 rules into typed
//! [`rules::Rule`]s and loading rule files with a per-rule rejection report.

pub mod engine;
pub mod rules;

pub mod exclusions;
pub mod reputation;
