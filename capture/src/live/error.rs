//! What can go wrong capturing from an interface. Every message is one line that starts with the
//! interface it is about (as the file source's messages start with the file).

use std::time::Duration;

/// Interfaces named in a [`LiveError::NoSuchInterface`] message; a host with hundreds of
/// container veths would otherwise print a page.
pub const MAX_LISTED_INTERFACES: usize = 16;

/// A failure that stops opening or reading an interface.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{interface}: no such network interface (present: {})", list_or_none(present))]
    NoSuchInterface { interface: String, present: Vec<String> },
    #[error(
        "{interface}: permission denied opening it for capture ({detail}); capturing needs CAP_NET_RAW: run as root or grant it with `setcap cap_net_raw=ep` on the binary"
    )]
    PermissionDenied { interface: String, detail: String },
    /// The filter text is shown as given so the user can find the typo.
    #[error("{interface}: BPF filter \"{filter}\" does not compile: {reason}")]
    BadFilter { interface: String, filter: String, reason: String },
    #[error("{interface}: link type {link} is not one the decoder reads")]
    UnsupportedLinkType { interface: String, link: i32 },
    #[error("{interface}: {reason}")]
    BadOption { interface: String, reason: String },
    /// Any other libpcap failure while opening (out of memory, a driver refusing a setting).
    #[error("{interface}: cannot open for capture: {reason}")]
    Open { interface: String, reason: String },
    /// Reading kernel counters failed.
    #[error("{interface}: cannot read capture statistics: {reason}")]
    Stats { interface: String, reason: String },
    /// The interface vanished and cannot be reopened because every capability was dropped
    /// ([`Privileges::DropAll`](super::Privileges::DropAll)). Ending the run lets a supervisor
    /// restart the sensor instead of leaving it capturing nothing.
    #[error(
        "{interface}: interface lost ({reason}) and it cannot be reopened because capabilities were dropped; restart, or keep CAP_NET_RAW for reopening"
    )]
    InterfaceLost { interface: String, reason: String },
    #[error("cannot drop capabilities: {reason}")]
    Capabilities { reason: String },
}

impl LiveError {
    /// The message without the leading interface name, for contexts that already name it.
    pub fn cause(&self) -> String {
        let message = self.to_string();
        let interface = match self {
            LiveError::NoSuchInterface { interface, .. }
            | LiveError::PermissionDenied { interface, .. }
            | LiveError::BadFilter { interface, .. }
            | LiveError::UnsupportedLinkType { interface, .. }
            | LiveError::BadOption { interface, .. }
            | LiveError::Open { interface, .. }
            | LiveError::Stats { interface, .. }
            | LiveError::InterfaceLost { interface, .. } => interface,
            LiveError::Capabilities { .. } => return message,
        };
        match message.strip_prefix(interface.as_str()).and_then(|rest| rest.strip_prefix(": ")) {
            Some(rest) => rest.to_string(),
            None => message,
        }
    }
}

/// Something a live run survives but the operator should hear about, drained with
/// [`LiveSource::take_warnings`](super::LiveSource::take_warnings).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LiveWarning {
    /// The kernel reports the link down: no packets arrive until it comes back, and the same
    /// handle resumes by itself then.
    #[error("{interface}: link is {operstate}; capture resumes when it comes back up")]
    LinkDown { interface: String, operstate: String },
    #[error("{interface}: link is up again after {:.1} s", down_for.as_secs_f64())]
    LinkUp { interface: String, down_for: Duration },
    /// Reading failed (typically: the interface was removed). The source reopens it after
    /// `retry_in`, doubling the delay up to [`MAX_RETRY_DELAY`](super::MAX_RETRY_DELAY).
    #[error("{interface}: capture failed: {reason}; retry {attempt} in {:.1} s", retry_in.as_secs_f64())]
    CaptureFailed { interface: String, reason: String, attempt: u32, retry_in: Duration },
    #[error("{interface}: capture resumed after {attempts} attempt(s), {:.1} s without packets", outage.as_secs_f64())]
    Resumed { interface: String, attempts: u32, outage: Duration },
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() { "none".to_string() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_interface_and_the_cause() {
        let e = LiveError::NoSuchInterface { interface: "eth9".into(), present: vec!["lo".into(), "eth0".into()] };
        assert_eq!(e.to_string(), "eth9: no such network interface (present: lo, eth0)");
        let e = LiveError::BadFilter {
            interface: "eth0".into(),
            filter: "udp port nope".into(),
            reason: "unknown port 'nope'".into(),
        };
        assert_eq!(e.to_string(), "eth0: BPF filter \"udp port nope\" does not compile: unknown port 'nope'");
        assert_eq!(e.cause(), "BPF filter \"udp port nope\" does not compile: unknown port 'nope'");
        let w = LiveWarning::CaptureFailed {
            interface: "eth0".into(),
            reason: "The interface disappeared".into(),
            attempt: 2,
            retry_in: Duration::from_millis(400),
        };
        assert_eq!(w.to_string(), "eth0: capture failed: The interface disappeared; retry 2 in 0.4 s");
    }
}
