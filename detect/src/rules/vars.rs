//! Address and port groups (`$HOME_NET`, `$HTTP_PORTS`, ...), Suricata's `vars:` section.

use std::collections::{BTreeMap, HashMap};

use super::RuleError;
use super::header::{AddressExpr, PortExpr, parse_expr_at};

/// Longest text one variable may expand to once every `$VAR` in it is substituted. Guards
/// against definitions that reference each other many times over (exponential growth).
pub const MAX_VAR_EXPANSION: usize = 64 * 1024;

/// Suricata's default address groups (suricata.yaml `vars.address-groups`).
const DEFAULT_ADDRESS_GROUPS: &[(&str, &str)] = &[
    ("HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"),
    ("EXTERNAL_NET", "!$HOME_NET"),
    ("HTTP_SERVERS", "$HOME_NET"),
    ("SMTP_SERVERS", "$HOME_NET"),
    ("SQL_SERVERS", "$HOME_NET"),
    ("DNS_SERVERS", "$HOME_NET"),
    ("TELNET_SERVERS", "$HOME_NET"),
    ("AIM_SERVERS", "$EXTERNAL_NET"),
    ("DC_SERVERS", "$HOME_NET"),
    ("DNP3_SERVER", "$HOME_NET"),
    ("DNP3_CLIENT", "$HOME_NET"),
    ("MODBUS_CLIENT", "$HOME_NET"),
    ("MODBUS_SERVER", "$HOME_NET"),
    ("ENIP_CLIENT", "$HOME_NET"),
    ("ENIP_SERVER", "$HOME_NET"),
];

/// Suricata's default port groups (suricata.yaml `vars.port-groups`).
const DEFAULT_PORT_GROUPS: &[(&str, &str)] = &[
    ("HTTP_PORTS", "80"),
    ("SHELLCODE_PORTS", "!80"),
    ("ORACLE_PORTS", "1521"),
    ("SSH_PORTS", "22"),
    ("DNP3_PORTS", "20000"),
    ("MODBUS_PORTS", "502"),
    ("FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"),
    ("FTP_PORTS", "21"),
    ("GENEVE_PORTS", "6081"),
    ("VXLAN_PORTS", "4789"),
    ("TEREDO_PORTS", "3544"),
    ("SIP_PORTS", "[5060,5061]"),
];

/// The variable table as configured: names to unparsed expressions, address and port groups
/// kept apart as Suricata does. `Vars::default()` holds Suricata's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vars {
    address: BTreeMap<String, String>,
    port: BTreeMap<String, String>,
}

impl Default for Vars {
    fn default() -> Self {
        let owned = |table: &[(&str, &str)]| {
            table
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        Vars {
            address: owned(DEFAULT_ADDRESS_GROUPS),
            port: owned(DEFAULT_PORT_GROUPS),
        }
    }
}

impl Vars {
    /// Sets an address group, replacing any default.
    pub fn set_address(&mut self, name: &str, value: &str) {
        self.address
            .insert(name.trim_start_matches('$').to_string(), value.to_string());
    }

    /// Sets a port group, replacing any default.
    pub fn set_port(&mut self, name: &str, value: &str) {
        self.port
            .insert(name.trim_start_matches('$').to_string(), value.to_string());
    }

    /// Sets a variable from the flat config `[vars]` table: an existing group keeps its kind;
    /// a new name is a port group when it ends in `_PORT` or `_PORTS`, else an address group.
    pub fn set(&mut self, name: &str, value: &str) {
        let name = name.trim_start_matches('$');
        let is_port = self.port.contains_key(name)
            || (!self.address.contains_key(name)
                && (name.ends_with("_PORTS") || name.ends_with("_PORT")));
        if is_port {
            self.set_port(name, value)
        } else {
            self.set_address(name, value)
        }
    }

    /// Expands and parses every variable once. A variable that fails (syntax, unknown
    /// reference, cycle) fails only the rules that use it; [`ResolvedVars::errors`] lists them.
    pub fn resolve(&self) -> ResolvedVars {
        let mut resolved = ResolvedVars::default();
        let empty = ResolvedVars::default();
        for name in self.address.keys() {
            let parsed = expand(name, &self.address, &mut Vec::new()).and_then(|text| {
                let mut budget = super::header::MAX_EXPR_ITEMS;
                parse_expr_at::<AddressExpr>(&text, &empty, 0, &mut budget)
            });
            resolved.address.insert(name.clone(), parsed);
        }
        for name in self.port.keys() {
            let parsed = expand(name, &self.port, &mut Vec::new()).and_then(|text| {
                let mut budget = super::header::MAX_EXPR_ITEMS;
                parse_expr_at::<PortExpr>(&text, &empty, 0, &mut budget)
            });
            resolved.port.insert(name.clone(), parsed);
        }
        resolved
    }
}

/// The text of `name` with every `$REF` replaced by `[text of REF]`, recursively.
fn expand(
    name: &str,
    table: &BTreeMap<String, String>,
    stack: &mut Vec<String>,
) -> Result<String, RuleError> {
    if stack.iter().any(|n| n == name) {
        let mut chain = stack.clone();
        chain.push(name.to_string());
        return Err(RuleError::VarCycle(chain.join(" -> ")));
    }
    let text = table
        .get(name)
        .ok_or_else(|| RuleError::UnknownVar(name.to_string()))?;
    stack.push(name.to_string());
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let reference = &after[..len];
        let inner = expand(reference, table, stack)?;
        out.push('[');
        out.push_str(&inner);
        out.push(']');
        if out.len() > MAX_VAR_EXPANSION {
            return Err(RuleError::VarTooLarge {
                name: name.to_string(),
                limit: MAX_VAR_EXPANSION,
            });
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    stack.pop();
    Ok(out)
}

/// Variables expanded and parsed, ready for header parsing.
#[derive(Debug, Clone, Default)]
pub struct ResolvedVars {
    address: HashMap<String, Result<AddressExpr, RuleError>>,
    port: HashMap<String, Result<PortExpr, RuleError>>,
}

impl ResolvedVars {
    pub fn address(&self, name: &str) -> Result<AddressExpr, RuleError> {
        match self.address.get(name) {
            Some(result) => result.clone(),
            None if self.port.contains_key(name) => Err(RuleError::WrongVarKind(name.to_string())),
            None => Err(RuleError::UnknownVar(name.to_string())),
        }
    }

    pub fn port(&self, name: &str) -> Result<PortExpr, RuleError> {
        match self.port.get(name) {
            Some(result) => result.clone(),
            None if self.address.contains_key(name) => {
                Err(RuleError::WrongVarKind(name.to_string()))
            }
            None => Err(RuleError::UnknownVar(name.to_string())),
        }
    }

    /// Every variable that failed to resolve, by name, for `weir check-config`.
    pub fn errors(&self) -> Vec<(String, RuleError)> {
        let mut errors: Vec<(String, RuleError)> = self
            .address
            .iter()
            .filter_map(|(n, r)| r.as_ref().err().map(|e| (n.clone(), e.clone())))
            .chain(
                self.port
                    .iter()
                    .filter_map(|(n, r)| r.as_ref().err().map(|e| (n.clone(), e.clone()))),
            )
            .collect();
        errors.sort_by(|a, b| a.0.cmp(&b.0));
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn overrides_flow_through_nested_references() {
        let mut vars = Vars::default();
        vars.set("HOME_NET", "[10.10.0.0/16]");
        vars.set("WEB_PORTS", "[$HTTP_PORTS,8080]");
        let r = vars.resolve();
        let http_servers = r.address("HTTP_SERVERS").unwrap();
        let ip: IpAddr = "10.10.1.1".parse().unwrap();
        let other: IpAddr = "192.168.1.1".parse().unwrap();
        assert!(http_servers.contains(ip) && !http_servers.contains(other));
        assert!(r.address("EXTERNAL_NET").unwrap().contains(other));
        let web = r.port("WEB_PORTS").unwrap();
        assert!(web.contains(80) && web.contains(8080) && !web.contains(443));
        assert!(r.errors().is_empty());
    }

    #[test]
    fn a_cycle_is_an_error_naming_the_chain() {
        let mut vars = Vars::default();
        vars.set_address("A", "[$B,1.2.3.4]");
        vars.set_address("B", "!$A");
        let r = vars.resolve();
        assert_eq!(
            r.address("A"),
            Err(RuleError::VarCycle("A -> B -> A".into()))
        );
        assert_eq!(r.errors().len(), 2);
        assert!(r.address("HOME_NET").is_ok());
    }

    #[test]
    fn unknown_and_misplaced_variables() {
        let r = Vars::default().resolve();
        assert_eq!(r.address("NOPE"), Err(RuleError::UnknownVar("NOPE".into())));
        assert_eq!(
            r.port("HOME_NET"),
            Err(RuleError::WrongVarKind("HOME_NET".into()))
        );
    }

    #[test]
    fn exponential_definitions_hit_the_expansion_limit() {
        let mut vars = Vars::default();
        vars.set_address("V0", "1.2.3.4");
        for i in 1..40 {
            vars.set_address(&format!("V{i}"), &format!("[$V{0},$V{0}]", i - 1));
        }
        let r = vars.resolve();
        assert!(matches!(
            r.address("V39"),
            Err(RuleError::VarTooLarge { .. })
        ));
    }
}
