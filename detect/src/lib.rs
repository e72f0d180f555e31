//! Suricata-syntax IDS rules, reputation feeds and matching.
