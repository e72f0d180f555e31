//! The flow table: bidirectional flows keyed by 5-tuple, VLAN ids and tunnel depth.
//!
//! Time is packet time. Every flow sits in exactly one LRU list per timeout class (protocol and
//! lifecycle state), so the tail of each list is the next flow of that class to time out: expiry is
//! exact and O(1) per expired flow, with no periodic scan of the table. When the table is full, the
//! least recently seen flow over all classes is evicted (the tails' minimum).
//!
//! The table is generic over the per-flow state `S` the worker keeps (reassembly, parsers), so this
//! crate knows nothing of those stages.

mod config;
mod eve;
mod table;

pub use config::{FlowConfig, Timeouts, WhenFull};
pub use eve::flow_record;
pub use table::{ClosedFlow, EndReason, Flow, FlowHandle, FlowTable, Lifecycle, TableStats};
