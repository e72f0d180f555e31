//! App-layer parsers, file and email extraction, the filestore, and URL artifacts.
//!
//! Parsers are sans-IO: they take a direction, a [`weir_core::StreamEvent`] (or a datagram) and the
//! packet time, and push what they found into an [`Emit`]. The worker that owns the flow turns
//! the emitted events into EVE records with the flow's header.

pub mod applayer;
pub mod emit;
pub mod dns;
pub mod tls;
pub mod files;
pub mod http;
pub mod imap;
pub mod mailstore;
pub mod mime;
pub mod pop3;
pub mod smtp;
pub mod ftp;
pub mod smb;

pub use emit::{AppEvent, Emit, ParserException};
