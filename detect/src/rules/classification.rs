//! `classification.config`: class types, their descriptions and default priorities.

use std::collections::HashMap;
use std::path::Path;

use thiserror::Error;

/// Most class types one file may define.
pub const MAX_CLASSTYPES: usize = 4096;

/// Weir's built-in table: the long-standing Snort/Suricata class types plus those Emerging
/// Threats rules use. Names are matched case-insensitively, as Suricata does.
pub const WEIR_DEFAULT_CLASSIFICATION: &str = "\
config classification: not-suspicious,Not Suspicious Traffic,3
config classification: unknown,Unknown Traffic,3
config classification: bad-unknown,Potentially Bad Traffic,2
config classification: attempted-recon,Attempted Information Leak,2
config classification: successful-recon-limited,Information Leak,2
config classification: successful-recon-largescale,Large Scale Information Leak,2
config classification: attempted-dos,Attempted Denial of Service,2
config classification: successful-dos,Denial of Service,2
config classification: attempted-user,Attempted User Privilege Gain,1
config classification: unsuccessful-user,Unsuccessful User Privilege Gain,1
config classification: successful-user,Successful User Privilege Gain,1
config classification: attempted-admin,Attempted Administrator Privilege Gain,1
config classification: successful-admin,Successful Administrator Privilege Gain,1
config classification: rpc-portmap-decode,Decode of an RPC Query,2
config classification: shellcode-detect,Executable code was detected,1
config classification: string-detect,A suspicious string was detected,3
config classification: suspicious-filename-detect,A suspicious filename was detected,2
config classification: suspicious-login,An attempted login using a suspicious username was detected,2
config classification: system-call-detect,A system call was detected,2
config classification: tcp-connection,A TCP connection was detected,4
config classification: trojan-activity,A Network Trojan was detected,1
config classification: unusual-client-port-connection,A client was using an unusual port,2
config classification: network-scan,Detection of a Network Scan,3
config classification: denial-of-service,Detection of a Denial of Service Attack,2
config classification: non-standard-protocol,Detection of a non-standard protocol or event,2
config classification: protocol-command-decode,Generic Protocol Command Decode,3
config classification: web-application-activity,access to a potentially vulnerable web application,2
config classification: web-application-attack,Web Application Attack,1
config classification: misc-activity,Misc activity,3
config classification: misc-attack,Misc Attack,2
config classification: icmp-event,Generic ICMP event,3
config classification: inappropriate-content,Inappropriate Content was Detected,1
config classification: policy-violation,Potential Corporate Privacy Violation,1
config classification: default-login-attempt,Attempt to login by a default username and password,2
config classification: sdf,Sensitive Data was Transmitted Across the Network,2
config classification: file-format,Known malicious file or file based exploit,1
config classification: malware-cnc,Known malware command and control traffic,1
config classification: client-side-exploit,Known client side exploit attempt,1
config classification: targeted-activity,Targeted Malicious Activity was Detected,1
config classification: exploit-kit,Exploit Kit Activity Detected,1
config classification: external-ip-check,Device Retrieving External IP Address Detected,2
config classification: domain-c2,Domain Observed Used for C2 Detected,1
config classification: pup-activity,Possibly Unwanted Program Detected,2
config classification: credential-theft,Successful Credential Theft Detected,1
config classification: social-engineering,Possible Social Engineering Attempted,2
config classification: coin-mining,Crypto Currency Mining Activity Detected,2
config classification: command-and-control,Malware Command and Control Activity Detected,1
";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassType {
    pub name: String,
    pub description: String,
    pub priority: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct ClassificationError {
    pub line: usize,
    pub reason: String,
}

/// The class-type table rules resolve `classtype` against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    by_lower_name: HashMap<String, ClassType>,
}

impl Default for Classification {
    /// Weir's built-in table.
    fn default() -> Self {
        let (table, errors) = Classification::parse(WEIR_DEFAULT_CLASSIFICATION);
        debug_assert!(
            errors.is_empty(),
            "built-in classification table must parse: {errors:?}"
        );
        table
    }
}

impl Classification {
    /// Parses `config classification: name,description,priority` lines. Comments (`#`) and
    /// blank lines are skipped; a bad line is reported and skipped, the rest still load.
    /// A later definition of the same name replaces the earlier one, as in Suricata.
    pub fn parse(text: &str) -> (Classification, Vec<ClassificationError>) {
        let mut by_lower_name = HashMap::new();
        let mut errors = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| ClassificationError {
                line: line_no,
                reason: reason.to_string(),
            };
            let Some(rest) = line.strip_prefix("config classification:") else {
                errors.push(err(
                    "expected `config classification: name,description,priority`",
                ));
                continue;
            };
            let mut fields = rest.splitn(3, ',');
            let (Some(name), Some(description), Some(priority)) =
                (fields.next(), fields.next(), fields.next())
            else {
                errors.push(err("expected three comma-separated fields"));
                continue;
            };
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                errors.push(err("class name must be letters, digits, - or _"));
                continue;
            }
            let Ok(priority) = priority.trim().parse::<u8>() else {
                errors.push(err("priority must be a number 0-255"));
                continue;
            };
            if by_lower_name.len() >= MAX_CLASSTYPES {
                errors.push(err("too many class types"));
                break;
            }
            by_lower_name.insert(
                name.to_ascii_lowercase(),
                ClassType {
                    name: name.to_string(),
                    description: description.trim().to_string(),
                    priority,
                },
            );
        }
        (Classification { by_lower_name }, errors)
    }

    /// Reads a classification file; an unreadable file is an error, bad lines are listed.
    pub fn from_file(path: &Path) -> std::io::Result<(Classification, Vec<ClassificationError>)> {
        let text = std::fs::read_to_string(path)?;
        Ok(Classification::parse(&text))
    }

    pub fn get(&self, name: &str) -> Option<&ClassType> {
        self.by_lower_name.get(&name.to_ascii_lowercase())
    }

    pub fn len(&self) -> usize {
        self.by_lower_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_lower_name.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_and_reports_bad_ones() {
        let text = "# comment\n\
                    config classification: trojan-activity,A Network Trojan was detected, 1\n\
                    config classification: broken\n\
                    config classification: x,y,high\n\
                    config classification: Misc-Activity,Misc activity,3\n";
        let (c, errors) = Classification::parse(text);
        assert_eq!(c.len(), 2);
        assert_eq!(
            c.get("TROJAN-activity"),
            Some(&ClassType {
                name: "trojan-activity".into(),
                description: "A Network Trojan was detected".into(),
                priority: 1
            })
        );
        assert_eq!(
            c.get("misc-activity").map(|t| t.name.as_str()),
            Some("Misc-Activity")
        );
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![3, 4]
        );
    }

    #[test]
    fn default_table_covers_both_et_classification_files() {
        let c = Classification::default();
        for dir in ["et-open-2019", "et-open-2024-partial"] {
            let path = format!(
                "{}/../../shared/rules/{dir}/classification.config",
                env!("CARGO_MANIFEST_DIR")
            );
            let (et, errors) = Classification::from_file(Path::new(&path)).unwrap();
            assert!(errors.is_empty(), "{errors:?}");
            for t in et.by_lower_name.values() {
                let ours = c
                    .get(&t.name)
                    .unwrap_or_else(|| panic!("{} missing", t.name));
                assert_eq!(ours.priority, t.priority, "{}", t.name);
            }
        }
        assert_eq!(c.get("command-and-control").map(|t| t.priority), Some(1));
    }
}
