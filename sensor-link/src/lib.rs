//! Central Node link, protocol v1 (SPEC section 7, `docs/protocol-v1.md`).
//!
//! The sensor side is [`Link`]: the capture side hands it EVE records, files and email messages
//! without waiting on the network; it batches events, keeps everything in the durable spool
//! (`weir-spool`, the same mechanism as sandbox dispatch) until the Central Node answers 2xx, and
//! polls the policy (license, exclusions) and database updates, which it verifies, stages, has
//! validated by the caller and swaps in. The reference Central Node is [`receiver`].

mod link;
pub mod protocol;
pub mod receiver;
mod store;

pub use link::{
    AppliedUpdate, ClientTls, Link, LinkConfig, LinkError, LinkStats, LinkStatus, Offer, QueueHealth, UpdateStatus,
    UpdateValidator, EMAILS_QUEUE, EVENTS_QUEUE, FILES_QUEUE,
};
pub use protocol::{Exclusions, License, LicenseState, Manifest, ManifestFile, Policy, UpdateKind};
pub use store::MailStore;
