//! Weir's shared vocabulary.
//!
//! Every stage crate depends on this one and on no other stage, so the stages can agree on types
//! (time, flow keys, direction, stream events, artifacts, EVE basics) without importing each other.
//! Nothing here does I/O.

pub mod anomaly;
pub mod artifact;
pub mod eve;
pub mod flow;
pub mod link;
pub mod stream;
pub mod time;

pub use anomaly::{Anomaly, AnomalyLayer};
pub use artifact::{
    hex, Artifact, ArtifactContext, EmailArtifact, FileArtifact, FileState, SeenIn, Sighting, UrlArtifact,
};
pub use flow::{AppProto, Direction, FlowKey, IpProto, Vlans};
pub use link::LinkType;
pub use stream::StreamEvent;
pub use time::Timestamp;
