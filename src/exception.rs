//! Exception policies as a worker applies them: which policy each cap takes, and what one flow
//! met, for its counters and its flow record (Suricata's `exception_policy` list).

use std::collections::BTreeMap;

use serde_json::{Value, json};

pub use crate::config::ExceptionCap;
/// The worker applies the policies by the names the config gives them.
pub use crate::config::ExceptionPolicyName as ExceptionPolicy;
use crate::config::ExceptionPolicySection;

/// The policy of every cap, resolved from `[exception_policy]` (master switch included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExceptionPolicies([ExceptionPolicy; ExceptionCap::ALL.len()]);

impl ExceptionPolicies {
    pub fn from_section(section: &ExceptionPolicySection) -> Self {
        ExceptionPolicies(ExceptionCap::ALL.map(|cap| section.policy(cap)))
    }

    pub fn of(&self, cap: ExceptionCap) -> ExceptionPolicy {
        self.0[cap as usize]
    }
}

impl ExceptionCap {
    /// The name EVE and the counters give it: Suricata's target name where Suricata has the
    /// same condition (`stream_midstream`, `app_layer_error`), the config key otherwise.
    pub fn target(self) -> &'static str {
        match self {
            ExceptionCap::StreamMemcap => "stream_memcap",
            ExceptionCap::FlowMemcap => "flow_memcap",
            ExceptionCap::MaxQueuedSegments => "max_queued_segments",
            ExceptionCap::Depth => "stream_depth",
            ExceptionCap::Midstream => "stream_midstream",
            ExceptionCap::AppLayerError => "app_layer_error",
            ExceptionCap::HttpHeaderMemcap => "http_header_memcap",
            ExceptionCap::MailMemcap => "mail_memcap",
            ExceptionCap::FlowTable => "flow_table",
        }
    }
}

impl ExceptionPolicy {
    /// EVE's spelling (Suricata writes `pass_flow` where its config says `pass-flow`).
    pub fn eve(self) -> &'static str {
        match self {
            ExceptionPolicy::Ignore => "ignore",
            ExceptionPolicy::PassFlow => "pass_flow",
            ExceptionPolicy::Bypass => "bypass",
        }
    }
}

/// Counts `cap` met `n` times under `policy` (`"<target>.<policy>"`).
pub fn count(counts: &mut BTreeMap<String, u64>, cap: ExceptionCap, policy: ExceptionPolicy, n: u64) {
    *counts.entry(format!("{}.{}", cap.target(), policy.eve())).or_default() += n;
}

/// The caps one flow met, each listed once with the policy applied, in the order met.
#[derive(Debug, Default)]
pub struct FlowExceptions {
    met: Vec<(ExceptionCap, ExceptionPolicy)>,
}

impl FlowExceptions {
    /// Notes `cap` met on this flow and counts it (`"<target>.<policy>"` in `counts`, every
    /// time); returns the policy to apply.
    pub fn meet(
        &mut self,
        cap: ExceptionCap,
        policies: &ExceptionPolicies,
        counts: &mut BTreeMap<String, u64>,
    ) -> ExceptionPolicy {
        let policy = policies.of(cap);
        count(counts, cap, policy, 1);
        if !self.met.iter().any(|(c, _)| *c == cap) {
            self.met.push((cap, policy));
        }
        policy
    }

    /// The flow record's `exception_policy` list, `None` when nothing was met.
    pub fn eve(&self) -> Option<Value> {
        (!self.met.is_empty()).then(|| {
            Value::Array(
                self.met.iter().map(|(cap, policy)| json!({ "target": cap.target(), "policy": policy.eve() })).collect(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cap_is_listed_once_and_counted_every_time() {
        let mut section = ExceptionPolicySection::default();
        section.default = ExceptionPolicy::Bypass;
        section.app_layer_error = Some(ExceptionPolicy::PassFlow);
        let policies = ExceptionPolicies::from_section(&section);
        // The master switch covers every cap but midstream pickup.
        assert_eq!(policies.of(ExceptionCap::StreamMemcap), ExceptionPolicy::Bypass);
        assert_eq!(policies.of(ExceptionCap::Midstream), ExceptionPolicy::Ignore);
        assert_eq!(policies.of(ExceptionCap::AppLayerError), ExceptionPolicy::PassFlow);

        let mut met = FlowExceptions::default();
        let mut counts = BTreeMap::new();
        assert_eq!(met.eve(), None);
        assert_eq!(met.meet(ExceptionCap::AppLayerError, &policies, &mut counts), ExceptionPolicy::PassFlow);
        met.meet(ExceptionCap::AppLayerError, &policies, &mut counts);
        met.meet(ExceptionCap::Midstream, &policies, &mut counts);
        assert_eq!(
            met.eve(),
            Some(json!([
                { "target": "app_layer_error", "policy": "pass_flow" },
                { "target": "stream_midstream", "policy": "ignore" },
            ]))
        );
        assert_eq!(counts.get("app_layer_error.pass_flow"), Some(&2));
        assert_eq!(counts.get("stream_midstream.ignore"), Some(&1));
    }
}
