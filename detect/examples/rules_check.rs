//! Loads rule files (or every `*.rules` in given directories) and prints the load figures:
//! loaded/rejected counts, top rejection reasons, per-keyword use, duplicates and timing.
//!
//! `cargo run --release -p weir-detect --example rules_check -- DIR_OR_FILE... [--classification FILE] [--rejected]`

use std::path::PathBuf;
use std::time::Instant;

use weir_detect::rules::{Classification, Vars, load_rule_files};

fn main() {
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut classification = Classification::default();
    let mut show_rejected = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rejected" => show_rejected = true,
            "--classification" => {
                let Some(path) = args.next() else {
                    eprintln!("--classification needs a file");
                    std::process::exit(2);
                };
                match Classification::from_file(path.as_ref()) {
                    Ok((c, errors)) => {
                        for e in errors {
                            eprintln!("{path}: {e}");
                        }
                        classification = c;
                    }
                    Err(e) => {
                        eprintln!("{path}: {e}");
                        std::process::exit(2);
                    }
                }
            }
            _ => {
                let p = PathBuf::from(&arg);
                if p.is_dir() {
                    let mut files: Vec<PathBuf> = std::fs::read_dir(&p)
                        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                        .unwrap_or_default();
                    files.retain(|f| f.extension().is_some_and(|e| e == "rules"));
                    files.sort();
                    paths.extend(files);
                } else {
                    paths.push(p);
                }
            }
        }
    }
    let started = Instant::now();
    let report = load_rule_files(&paths, &Vars::default(), &classification);
    let elapsed = started.elapsed();
    if show_rejected {
        for r in &report.rejected {
            println!("{r}");
        }
    }
    let total = report.rules.len() + report.rejected.len();
    let pct = if total == 0 {
        100.0
    } else {
        100.0 * report.rules.len() as f64 / total as f64
    };
    println!("{}", report.summary_line());
    println!(
        "loaded {pct:.2}% of {total} enabled rules in {:.3} s",
        elapsed.as_secs_f64()
    );
    println!(
        "duplicates: {}, unknown-classtype warnings: {}",
        report.duplicates.len(),
        report.warnings.len()
    );
    println!("top rejection reasons (by keyword):");
    for (k, n) in report.top_rejection_reasons().iter().take(15) {
        println!("  {k}: {n}");
    }
    println!("keyword use (loaded/rejected):");
    let mut uses: Vec<_> = report.keyword_use.iter().collect();
    uses.sort_by_key(|u| std::cmp::Reverse(u.1.loaded + u.1.rejected));
    let line: Vec<String> = uses
        .iter()
        .map(|(k, u)| format!("{k}:{}/{}", u.loaded, u.rejected))
        .collect();
    println!("  {}", line.join(" "));
}
