//! Sandbox dispatch (CAPEv2, Cuckoo): every eligible extracted file and URL goes to the sandbox
//! once, durably spooled, and its verdict comes back as EVE `sandbox` records (and `alert`s for
//! malicious verdicts).
//!
//! The binary builds a [`Dispatcher`] from the `[sandbox]` section, hands it each [`Sighting`]
//! with [`Dispatcher::offer`] (never blocks on the network), writes what
//! [`Dispatcher::take_records`] returns to `eve.json`, and at the end of a replay calls
//! [`Dispatcher::finish`] with `replay_wait_secs`.
//!
//! [`Sighting`]: weir_core::Sighting

mod api;
mod cache;
mod config;
mod dispatch;
mod eve;
mod policy;
#[cfg(feature = "test-sandbox")]
pub mod test_sandbox;

pub use api::{ApiError, Report, SandboxApi, TaskStatus, MAX_REDIRECTS, MAX_SMALL_RESPONSE};
pub use cache::{CachedVerdict, VerdictCache};
pub use config::{ApiKind, SandboxConfig, FILE_TYPES};
pub use dispatch::{
    backoff, DispatchError, DispatchStats, Dispatcher, FinishReport, Offer, Pending, INTAKE_BATCH, MAX_REJECTIONS, RECORDS_QUEUE,
    SCAN_WINDOW, SUBMIT_QUEUE,
};
pub use eve::SANDBOX_ALERT_SID;
pub use policy::{normalise_url, Decision, Exclusions, FileType, NoExclusions, Policy, SNIFF_BYTES};
