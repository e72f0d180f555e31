//! Expectations: what a control connection says about the data connections to come, and the
//! bounded table the worker keeps them in until a matching flow shows up.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::Duration;

use weir_core::{Direction, FlowKey, IpProto, Timestamp};

/// Expectations kept per control connection. A control connection announces a new port with
/// every PASV/EPSV reply and PORT/EPRT command; clients use one or two at a time, so a flood of
/// PORT commands only ever occupies this many entries (the oldest is dropped).
pub const MAX_EXPECTATIONS_PER_CONTROL_FLOW: usize = 4;

/// Expectations kept in one worker's table, all control connections together; the oldest is
/// dropped beyond it.
pub const MAX_EXPECTATIONS: usize = 4096;

/// How long an expectation waits for its data connection (or, once matched, for its transfer
/// command) after its last update. Clients connect within milliseconds; a data connection that
/// never comes must not pin memory.
pub const EXPECTATION_TIMEOUT: Duration = Duration::from_secs(120);

/// How the data connection is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataMode {
    /// PASV / 227: the client connects to the server.
    Pasv,
    /// EPSV / 229 (RFC 2428): the client connects to the server, port only.
    Epsv,
    /// PORT: the server connects to the client.
    Port,
    /// EPRT (RFC 2428): the server connects to the client.
    Eprt,
}

impl DataMode {
    /// Whether the FTP client opens the data connection (passive modes).
    pub fn client_connects(self) -> bool {
        matches!(self, DataMode::Pasv | DataMode::Epsv)
    }
}

/// A command that moves data over a data connection. Open: [`TransferCommand::Other`] keeps any
/// other name a client might use.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TransferCommand {
    Retr,
    Stor,
    Appe,
    Stou,
    List,
    Nlst,
    Mlsd,
    Other(String),
}

impl TransferCommand {
    /// The transfer command named `upper_name` (already upper case), if it is one.
    pub fn from_name(upper_name: &[u8]) -> Option<TransferCommand> {
        Some(match upper_name {
            b"RETR" => TransferCommand::Retr,
            b"STOR" => TransferCommand::Stor,
            b"APPE" => TransferCommand::Appe,
            b"STOU" => TransferCommand::Stou,
            b"LIST" => TransferCommand::List,
            b"NLST" => TransferCommand::Nlst,
            b"MLSD" => TransferCommand::Mlsd,
            _ => return None,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            TransferCommand::Retr => "RETR",
            TransferCommand::Stor => "STOR",
            TransferCommand::Appe => "APPE",
            TransferCommand::Stou => "STOU",
            TransferCommand::List => "LIST",
            TransferCommand::Nlst => "NLST",
            TransferCommand::Mlsd => "MLSD",
            TransferCommand::Other(s) => s,
        }
    }

    /// Which way the file moves, in control-connection terms: `ToServer` for uploads.
    pub fn direction(&self) -> Direction {
        match self {
            TransferCommand::Stor | TransferCommand::Appe | TransferCommand::Stou => {
                Direction::ToServer
            }
            _ => Direction::ToClient,
        }
    }
}

/// The transfer a data connection carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub command: TransferCommand,
    /// The command's argument as sent (the file name for RETR/STOR), possibly empty.
    pub argument: Vec<u8>,
    /// The REST offset sent before the command: the file starts this far into the named file,
    /// so what the data connection carries is only its tail.
    pub rest: u64,
    /// The control connection's transaction of the command.
    pub control_tx_id: u64,
}

/// A data connection announced on a control connection, and (once sent) the transfer it carries.
/// The control parser hands out a new snapshot each time it learns more; `id` ties the snapshots
/// of one data connection together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// Number of the data connection on its control connection, from 0.
    pub id: u64,
    pub mode: DataMode,
    /// The port the listening side waits on.
    pub port: u16,
    /// The address written in the PASV reply or PORT/EPRT argument, when there was one. Matching
    /// uses the control connection's addresses (as Suricata does: NAT rewrites this one); a
    /// different address here is worth a look (FTP bounce).
    pub announced_ip: Option<IpAddr>,
    pub transfer: Option<Transfer>,
    /// The server refused the transfer (4xx/5xx) or the connection will not be used: forget it.
    pub withdrawn: bool,
    pub announced: Timestamp,
}

impl Expectation {
    /// The direction of the data flow (whose `ToServer` is from the side that connected) that
    /// carries the file, once the transfer command is known.
    pub fn file_direction(&self) -> Option<Direction> {
        let transfer = self.transfer.as_ref()?;
        let upload = transfer.command.direction() == Direction::ToServer;
        // Passive: the FTP client connected, so the data flow's ToServer is client -> server.
        Some(if upload == self.mode.client_connects() {
            Direction::ToServer
        } else {
            Direction::ToClient
        })
    }

    /// The data flow's endpoints: (who connects, who listens), given the control connection's
    /// key oriented client to server.
    pub fn endpoints(&self, control: &FlowKey) -> (IpAddr, IpAddr) {
        if self.mode.client_connects() {
            (control.src_ip, control.dst_ip)
        } else {
            (control.dst_ip, control.src_ip)
        }
    }
}

#[derive(Debug)]
struct Entry {
    control_flow: u64,
    connector: IpAddr,
    listener: IpAddr,
    expectation: Expectation,
    updated: Timestamp,
    data_flow: Option<u64>,
}

/// The worker's table of pending expectations, bounded by [`MAX_EXPECTATIONS_PER_CONTROL_FLOW`]
/// and [`MAX_EXPECTATIONS`] and aged by [`EXPECTATION_TIMEOUT`].
///
/// Use: after each call into a control flow's [`super::FtpState`], pass every expectation from
/// `take_expectations` to [`ExpectationTable::offer`]; when it returns a data flow id, hand the
/// expectation to that flow's [`super::FtpDataState::update`]. When a new TCP flow starts (or an
/// unmatched flow's held first bytes are retried after new offers), ask
/// [`ExpectationTable::match_flow`]; on a match, run [`super::FtpDataState::new`] on it.
#[derive(Debug, Default)]
pub struct ExpectationTable {
    entries: VecDeque<Entry>,
    /// Expectations dropped because a bound was reached (a counter for stats).
    pub evicted: u64,
    /// Expectations that timed out without being used.
    pub expired: u64,
}

impl ExpectationTable {
    pub fn new() -> Self {
        ExpectationTable::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a snapshot from the control flow `control_flow_id`, whose key `control` is
    /// oriented client to server. Returns the data flow already matched to this expectation, to
    /// which the snapshot must be forwarded.
    pub fn offer(
        &mut self,
        control_flow_id: u64,
        control: &FlowKey,
        exp: Expectation,
        ts: Timestamp,
    ) -> Option<u64> {
        let pos = self
            .entries
            .iter()
            .position(|e| e.control_flow == control_flow_id && e.expectation.id == exp.id);
        if let Some(i) = pos {
            let entry = &mut self.entries[i];
            let bound = entry.data_flow;
            // A bound expectation is done once its transfer is known: the data flow has all it
            // needs, and the port is single use.
            let finished = exp.withdrawn || (bound.is_some() && exp.transfer.is_some());
            entry.expectation = exp;
            entry.updated = ts;
            if finished {
                self.entries.remove(i);
            }
            return bound;
        }
        if exp.withdrawn {
            return None;
        }
        let same_flow = self
            .entries
            .iter()
            .filter(|e| e.control_flow == control_flow_id)
            .count();
        if same_flow >= MAX_EXPECTATIONS_PER_CONTROL_FLOW
            && let Some(oldest) = self
                .entries
                .iter()
                .position(|e| e.control_flow == control_flow_id)
        {
            self.entries.remove(oldest);
            self.evicted += 1;
        }
        if self.entries.len() >= MAX_EXPECTATIONS {
            self.entries.pop_front();
            self.evicted += 1;
        }
        let (connector, listener) = exp.endpoints(control);
        self.entries.push_back(Entry {
            control_flow: control_flow_id,
            connector,
            listener,
            expectation: exp,
            updated: ts,
            data_flow: None,
        });
        None
    }

    /// Finds the expectation a new TCP flow (key oriented client to server) fulfils, newest
    /// first, and binds it to `data_flow_id`. Returns the control flow id and the expectation.
    pub fn match_flow(
        &mut self,
        key: &FlowKey,
        data_flow_id: u64,
        ts: Timestamp,
    ) -> Option<(u64, Expectation)> {
        self.expire(ts);
        if key.proto != IpProto::TCP {
            return None;
        }
        let i = self.entries.iter().rposition(|e| {
            e.data_flow.is_none()
                && e.expectation.port == key.dst_port
                && e.listener == key.dst_ip
                && e.connector == key.src_ip
        })?;
        let entry = &mut self.entries[i];
        let found = (entry.control_flow, entry.expectation.clone());
        if entry.expectation.transfer.is_some() {
            // Everything is known already: nothing more to forward.
            self.entries.remove(i);
        } else {
            entry.data_flow = Some(data_flow_id);
            entry.updated = ts;
        }
        Some(found)
    }

    /// Drops expectations not updated for [`EXPECTATION_TIMEOUT`].
    pub fn expire(&mut self, now: Timestamp) {
        let before = self.entries.len();
        self.entries
            .retain(|e| now.since(e.updated) < EXPECTATION_TIMEOUT);
        self.expired += (before - self.entries.len()) as u64;
    }

    /// Forgets what a control flow announced (it ended or was evicted).
    pub fn forget_control_flow(&mut self, control_flow_id: u64) {
        self.entries.retain(|e| e.control_flow != control_flow_id);
    }

    /// Forgets the binding of a data flow that ended before its transfer command was known.
    pub fn forget_data_flow(&mut self, data_flow_id: u64) {
        self.entries.retain(|e| e.data_flow != Some(data_flow_id));
    }
}
