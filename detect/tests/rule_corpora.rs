//! Loads the shared rule corpora: both ET Open snapshots and every suricata-verify test.rules.

use std::path::{Path, PathBuf};

use weir_detect::rules::{Classification, RuleSetReport, Vars, load_rule_files};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(rel)
}

fn rule_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .collect();
    files.sort();
    files
}

fn load_dir(rel: &str) -> RuleSetReport {
    let dir = shared(rel);
    let (classification, errors) =
        Classification::from_file(&dir.join("classification.config")).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    load_rule_files(&rule_files(&dir), &Vars::default(), &classification)
}

fn loaded_share(report: &RuleSetReport) -> f64 {
    report.rules.len() as f64 / (report.rules.len() + report.rejected.len()) as f64
}

#[test]
fn et_open_2019_loads_at_least_99_percent() {
    let report = load_dir("rules/et-open-2019");
    // SOURCE.md counts 20,081 enabled rules.
    assert_eq!(report.rules.len() + report.rejected.len(), 20_081);
    assert!(report.file_errors.is_empty());
    assert!(loaded_share(&report) >= 0.99, "{}", report.summary_line());
    // Every classtype the ET rules use is in their classification.config.
    assert!(
        report.warnings.is_empty(),
        "{:?}",
        &report.warnings[..report.warnings.len().min(5)]
    );
    assert!(report.duplicates.is_empty());
    // The same set must load against Weir's own table without unknown-classtype warnings.
    let dir = shared("rules/et-open-2019");
    let ours = load_rule_files(
        &rule_files(&dir),
        &Vars::default(),
        &Classification::default(),
    );
    assert!(ours.warnings.is_empty());
    assert_eq!(ours.rules.len(), report.rules.len());
}

#[test]
fn et_open_2024_partial_loads_at_least_99_percent() {
    let report = load_dir("rules/et-open-2024-partial");
    // SOURCE.md counts 24,827 enabled rules.
    assert_eq!(report.rules.len() + report.rejected.len(), 24_827);
    assert!(loaded_share(&report) >= 0.99, "{}", report.summary_line());
    let dir = shared("rules/et-open-2024-partial");
    let ours = load_rule_files(
        &rule_files(&dir),
        &Vars::default(),
        &Classification::default(),
    );
    assert!(ours.warnings.is_empty());
}

#[test]
fn every_suricata_verify_test_rules_file_parses() {
    let corpus = shared("corpus/suricata-verify");
    let mut checked = 0;
    for entry in std::fs::read_dir(&corpus).unwrap() {
        let path = entry.unwrap().path().join("test.rules");
        if !path.exists() {
            continue;
        }
        let report = load_rule_files(&[&path], &Vars::default(), &Classification::default());
        assert!(report.rejected.is_empty(), "{}", report.rejected[0]);
        assert!(!report.rules.is_empty(), "{}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 50);
}
