//! Loading rule files for a run, `weir rules check` and the rule part of `weir check-config`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use weir_detect::rules::{Classification, RuleSetReport, Vars, load_rule_files};

use crate::config::Config;

/// The address/port groups: Suricata's defaults overridden by the config's `[vars]`.
pub fn vars(config: &Config) -> Vars {
    let mut vars = Vars::default();
    for (name, value) in &config.vars.0 {
        vars.set(name, &value.to_rule_syntax());
    }
    vars
}

/// The classification table named in the config, or Weir's built-in one. Bad lines are errors.
pub fn classification(config: &Config) -> anyhow::Result<Classification> {
    let Some(path) = &config.detect.classification else {
        return Ok(Classification::default());
    };
    let (table, errors) =
        Classification::from_file(path).with_context(|| format!("{}: cannot read", path.display()))?;
    if let Some(e) = errors.first() {
        anyhow::bail!("{}:{}: {}", path.display(), e.line, e.reason);
    }
    Ok(table)
}

/// Loads the rules a run uses. Rejected rules are reported on stderr (as Suricata logs them) and
/// skipped; an unreadable rule file stops the run.
pub fn load_for_run(config: &Config) -> anyhow::Result<RuleSetReport> {
    let vars = vars(config);
    if let Some((name, e)) = vars.resolve().errors().first() {
        anyhow::bail!("[vars] {name}: {e}");
    }
    let report = load_rule_files(&config.detect.rules, &vars, &classification(config)?);
    if let Some(e) = report.file_errors.first() {
        anyhow::bail!("{}: {}", e.path.display(), e.reason);
    }
    for r in &report.rejected {
        eprintln!("weir: warning: rule rejected: {r}");
    }
    Ok(report)
}

/// What compiling a rule set found: how rules are reached, and per keyword Weir does not
/// evaluate how many loaded rules it keeps from ever matching (most frequent first).
pub fn compile_summary(rules: &weir_detect::engine::CompiledRules) -> String {
    let r = rules.report();
    let mut costs: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for (_, _, why) in &r.unsupported {
        *costs.entry(why.as_str()).or_default() += 1;
    }
    let mut costs: Vec<(&str, usize)> = costs.into_iter().collect();
    costs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut line = format!(
        "compiled {} rules: {} through a fast pattern, {} always checked, {} IP-only; {} cannot match in Weir",
        r.rules,
        r.prefiltered,
        r.always_checked,
        r.ip_only,
        r.unsupported.len()
    );
    if !costs.is_empty() {
        let listed: Vec<String> = costs.iter().map(|(k, n)| format!("{k} {n}")).collect();
        line.push_str(&format!(" ({})", listed.join(", ")));
    }
    line
}

/// `weir rules check FILE...`: one line per rejected rule, then the summary and what compiling
/// found. Fails when a file cannot be read, or with `strict` when any rule is rejected.
pub fn check(files: &[PathBuf], strict: bool) -> anyhow::Result<bool> {
    let config = Config::default();
    let report = load_rule_files(files, &vars(&config), &Classification::default());
    let mut out = std::io::stdout().lock();
    report.write_report(&mut out)?;
    let compiled = weir_detect::engine::CompiledRules::with_classification(report.rules.clone(), &Classification::default());
    writeln!(out, "{}", compile_summary(&compiled))?;
    out.flush()?;
    Ok(report.file_errors.is_empty() && !(strict && !report.rejected.is_empty()))
}

/// The rule checks of `weir check-config`: returns the error lines.
pub fn check_config(config: &Config) -> Vec<String> {
    let mut errors = Vec::new();
    let vars = vars(config);
    for (name, e) in vars.resolve().errors() {
        errors.push(format!("[vars] {name}: {e}"));
    }
    let classification = match classification(config) {
        Ok(c) => c,
        Err(e) => {
            errors.push(format!("{e:#}"));
            Classification::default()
        }
    };
    if config.detect.rules.is_empty() {
        return errors;
    }
    let report = load_rule_files(&config.detect.rules, &vars, &classification);
    errors.extend(report.file_errors.iter().map(|e| format!("{}: {}", e.path.display(), e.reason)));
    for r in &report.rejected {
        eprintln!("warning: rule rejected: {r}");
    }
    eprintln!("{}", report.summary_line());
    errors
}
