//! Giving up capabilities once the capture handles are open.
//!
//! An open packet socket keeps working without privileges, so everything after opening (decoding
//! and parsing hostile bytes) can run with none. Linux keeps capabilities per thread and new
//! threads copy their creator's: drop them on the thread that opened the sources, before it
//! spawns workers, or the workers keep what the opener had.
//!
//! This uses the `caps` crate, whose safe API wraps `capset(2)` and `prctl(2)`; Weir has no
//! `unsafe` of its own here. On systems other than Linux nothing is dropped and
//! [`drop_privileges`] says so with an error, which the caller may treat as a warning.

use super::LiveError;

/// What happens to the process's capabilities after a [`LiveSource`](super::LiveSource) opens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Privileges {
    /// Keep only CAP_NET_RAW, and only in the permitted set (not effective, not inheritable,
    /// not in the bounding set of programs this one starts), so that an interface that vanished
    /// mid-run can be reopened. This costs little: the open packet socket already lets this
    /// process capture and send raw frames on that interface.
    #[default]
    RetainNetRaw,
    /// Clear every capability. An interface that vanishes mid-run then ends the run with
    /// [`LiveError::InterfaceLost`], for a supervisor to restart the sensor.
    DropAll,
    /// Leave capabilities alone: for opening several sources (open all with `Keep`, then call
    /// [`drop_privileges`]) and for tests that must keep theirs.
    Keep,
}

/// Applies `privileges` to the calling thread (and the threads it starts later). Capabilities
/// leave the bounding set first (so a program this one runs cannot regain them, even as uid 0),
/// then the ambient, inheritable, effective and permitted sets. Without CAP_SETPCAP the bounding
/// set is left as it is, which is harmless: such a process cannot raise anything anyway.
#[cfg(target_os = "linux")]
pub fn drop_privileges(privileges: Privileges) -> Result<(), LiveError> {
    use caps::{CapSet, Capability, CapsHashSet};

    let err = |what: &str, e: caps::errors::CapsError| LiveError::Capabilities { reason: format!("{what}: {e}") };
    let keep: CapsHashSet = match privileges {
        Privileges::Keep => return Ok(()),
        Privileges::DropAll => CapsHashSet::new(),
        Privileges::RetainNetRaw => [Capability::CAP_NET_RAW].into_iter().collect(),
    };
    let permitted = caps::read(None, CapSet::Permitted).map_err(|e| err("reading the permitted set", e))?;
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP)
        .map_err(|e| err("reading the effective set", e))?
    {
        let bounding = caps::read(None, CapSet::Bounding).map_err(|e| err("reading the bounding set", e))?;
        for cap in bounding.iter().filter(|c| !keep.contains(c)) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(|e| err("dropping from the bounding set", e))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| err("clearing the ambient set", e))?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| err("clearing the inheritable set", e))?;
    caps::clear(None, CapSet::Effective).map_err(|e| err("clearing the effective set", e))?;
    let retained: CapsHashSet = permitted.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Permitted, &retained).map_err(|e| err("shrinking the permitted set", e))?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn drop_privileges(privileges: Privileges) -> Result<(), LiveError> {
    match privileges {
        Privileges::Keep => Ok(()),
        _ => Err(LiveError::Capabilities { reason: "dropping capabilities is only implemented on Linux".into() }),
    }
}

/// Runs `open` with CAP_NET_RAW raised in the effective set when it is permitted (the
/// [`Privileges::RetainNetRaw`] case), lowering it again afterwards whatever `open` returned.
#[cfg(target_os = "linux")]
pub(crate) fn with_net_raw<T>(open: impl FnOnce() -> T) -> T {
    use caps::{CapSet, Capability};

    let raised = matches!(caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_RAW), Ok(false))
        && matches!(caps::has_cap(None, CapSet::Permitted, Capability::CAP_NET_RAW), Ok(true))
        && caps::raise(None, CapSet::Effective, Capability::CAP_NET_RAW).is_ok();
    let result = open();
    if raised {
        // Failing to lower a capability we just raised would mean the kernel changed its mind
        // about our own permitted set; the next drop_privileges would report it.
        let _ = caps::drop(None, CapSet::Effective, Capability::CAP_NET_RAW);
    }
    result
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn with_net_raw<T>(open: impl FnOnce() -> T) -> T {
    open()
}
