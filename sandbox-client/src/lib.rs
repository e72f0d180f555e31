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

pub use api::{
    ApiError, MAX_REDIRECTS, MAX_RETRY_AFTER, MAX_SMALL_RESPONSE, Report, SandboxApi, TaskStatus,
};
pub use cache::{CachedVerdict, VerdictCache};
pub use config::{ApiKind, FILE_TYPES, SandboxConfig};
pub use dispatch::{
    DispatchError, DispatchStats, Dispatcher, FinishReport, INTAKE_BATCH, MAX_REJECTIONS, Offer,
    Pending, RECORDS_QUEUE, SCAN_WINDOW, SUBMIT_QUEUE, backoff,
};
pub use eve::SANDBOX_ALERT_SID;
pub use policy::{
    Decision, Exclusions, FileType, NoExclusions, Policy, SNIFF_BYTES, normalise_url,
};
