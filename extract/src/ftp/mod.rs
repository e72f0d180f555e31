//! FTP (RFC 959, RFC 2428 extended passive/active, RFC 3659 REST): the control channel and the
//! data connections it sets up.
//!
//! [`FtpState`] follows a control connection: one transaction per command with every reply line
//! (multi-line replies joined, 1xx preliminary replies kept open until the final one), and the
//! `ftp` EVE record when the final reply arrives (or the flow ends: `reply_received: "no"`).
//! `PASS` arguments are masked in EVE unless the user is a guest (`anonymous`, `ftp`), whose
//! password is by convention an e-mail address and what rules look for; detection always sees the
//! raw bytes ([`FtpTx::command_data`]).
//!
//! Data connections are other flows, so the control parser cannot follow them itself. It hands
//! out [`Expectation`]s ([`FtpState::take_expectations`]) as soon as a port is known (PASV/EPSV
//! reply, PORT/EPRT command) and again when the transfer command that uses it (RETR, STOR, APPE,
//! STOU, LIST, NLST, MLSD) is sent. The worker keeps them in an [`ExpectationTable`] (bounded per
//! control flow and in total), matches new flows against it, and runs an [`FtpDataState`] on the
//! matched flow, forwarding later updates of the same expectation to it. A data flow may appear
//! before the transfer command (passive clients connect right after the 227 reply; some servers
//! connect right after PORT): [`FtpDataState`] then holds its first bytes, up to
//! [`MAX_HELD_DATA_BYTES`] per direction, until it learns what is being moved.
//!
//! Transferred bytes go through the shared file pipeline (`files.rs`) with the command's argument
//! as the name, and end in a `fileinfo` and an `ftp_data` record.

mod control;
mod data;
mod eve;
mod expect;

#[cfg(test)]
pub(crate) mod test_pcap;
#[cfg(test)]
mod tests;

pub use control::{FtpState, FtpTx, announced_endpoint};
pub use data::FtpDataState;
pub use expect::{
    DataMode, EXPECTATION_TIMEOUT, Expectation, ExpectationTable, MAX_EXPECTATIONS,
    MAX_EXPECTATIONS_PER_CONTROL_FLOW, Transfer, TransferCommand,
};

use weir_core::Direction;

/// Longest command or reply line kept, as Suricata's `ftp.max-line-length` default (4 KiB).
/// Longer lines are cut and flagged `command_truncated` / `reply_truncated`; the rest of the line
/// is skipped without being buffered.
pub const MAX_LINE_BYTES: usize = 4096;

/// Reply lines kept per transaction (a multi-line `HELP` or `FEAT` reply, or a hostile server);
/// later lines are dropped and the reply flagged truncated.
pub const MAX_REPLY_LINES: usize = 64;

/// Reply bytes kept per transaction, all lines together, so retained transactions stay small
/// whatever a server sends; later lines are dropped and the reply flagged truncated.
pub const MAX_REPLY_BYTES: usize = 16 * 1024;

/// Commands waiting for their reply (pipelined commands, or a server that never answers). When
/// more are sent, the oldest is logged with `reply_received: "no"` and forgotten.
pub const MAX_PENDING_COMMANDS: usize = 32;

/// Finished transactions kept for detection until taken with [`FtpState::take_finished`].
pub const MAX_RETAINED_TRANSACTIONS: usize = 32;

/// Bytes of a data connection held per direction while its transfer command is not yet known;
/// beyond this the held bytes are counted as a gap of the file (never padded).
pub const MAX_HELD_DATA_BYTES: usize = 256 * 1024;

/// What the first bytes of a TCP stream say about FTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The stream is an FTP control connection.
    Ftp,
    NoMatch,
    NeedMore,
}

/// Detects an FTP control connection: a `220` greeting (`220 ` or `220-`) from the server, or a
/// `USER ` / `AUTH ` / `FEAT` first command from the client.
pub fn probe(dir: Direction, first_bytes: &[u8]) -> Probe {
    let want: &[&[u8]] = match dir {
        Direction::ToClient => &[b"220 ", b"220-", b"220\r", b"220\n"],
        Direction::ToServer => &[b"USER ", b"AUTH ", b"FEAT\r", b"FEAT\n"],
    };
    let mut could_be = false;
    for w in want {
        let n = w.len().min(first_bytes.len());
        if first_bytes[..n].eq_ignore_ascii_case(&w[..n]) {
            if n == w.len() {
                return Probe::Ftp;
            }
            could_be = true;
        }
    }
    if could_be {
        Probe::NeedMore
    } else {
        Probe::NoMatch
    }
}
