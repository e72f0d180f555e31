//! The worker's detection step: rules over packets, reassembled streams and app-layer
//! transactions, and the EVE `alert` records of what matched.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use weir_core::eve::{self, FlowHeader, Record};
use weir_core::{AppProto, Direction, FlowKey, LinkType, Timestamp};
use weir_detect::engine::{Alert, AlertSource, CompiledRules, FlowDetectState, Matcher, PacketView, TxView};
use weir_extract::applayer::AppLayer;
use weir_flow::Flow;

use crate::inspect;

/// Compiled rules (shared by all workers) and this worker's scratch.
pub struct Detector {
    pub rules: Arc<CompiledRules>,
    pub matcher: Matcher,
    scratch: Vec<Alert>,
}

/// Where the inspected bytes came from, as EVE `pkt_src` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketSource {
    /// A packet of the capture.
    Wire,
    /// Stream data released when its flow ended (timeout, eviction, end of capture).
    FlowEnd,
}

/// Everything an alert record needs besides the flow, owned so it outlives the inspection call.
pub struct PendingAlert {
    pub alert: Alert,
    pub ts: Timestamp,
    /// Oriented as the inspected data travelled.
    pub key: FlowKey,
    pub direction: Direction,
    pub payload: Vec<u8>,
    pub stream: bool,
    pub source: PacketSource,
    pub pcap_cnt: Option<u64>,
    /// The frame of the packet, for packet alerts.
    pub frame: Option<(LinkType, Vec<u8>)>,
    /// The outer flow of a tunnelled packet.
    pub tunnel: Option<FlowKey>,
    /// The app-layer object logged beside the alert, e.g. ("http", {...}).
    pub app_object: Option<(&'static str, Value)>,
}

/// Per-packet facts shared by every inspection made for one packet.
#[derive(Clone, Copy)]
pub struct PacketFacts<'a> {
    pub ts: Timestamp,
    pub pcap_cnt: Option<u64>,
    pub ttl: u8,
    pub ip_id: u32,
    pub tcp: Option<weir_detect::engine::TcpView>,
    pub icmp: Option<weir_detect::engine::IcmpView>,
    pub established: bool,
    pub app_proto: Option<AppProto>,
    pub frame: &'a [u8],
    pub link: LinkType,
    pub tunnel: Option<FlowKey>,
    pub defragmented: bool,
    pub source: PacketSource,
}

impl PacketFacts<'_> {
    pub fn view<'p>(&self, key: FlowKey, direction: Option<Direction>, payload: &'p [u8], in_stream: bool) -> PacketView<'p> {
        PacketView {
            ts: self.ts,
            key,
            direction,
            established: self.established,
            app_proto: self.app_proto.map(AppProto::eve_name),
            ttl: self.ttl,
            ip_id: self.ip_id,
            tcp: self.tcp,
            icmp: self.icmp,
            payload,
            payload_in_stream: in_stream,
            defragmented: self.defragmented,
        }
    }
}

/// Last-inspected progress of a flow's transactions, so a transaction is inspected again only
/// when it grew.
#[derive(Default)]
pub struct TxProgress {
    /// (tx id, signature of what it held when last inspected), the most recent few.
    http: Vec<(u64, u64)>,
    dns_next: u64,
    /// Signature of a protocol's single transaction (a TLS handshake, an FTP data transfer).
    single: u64,
    smtp: u64,
}

/// The transactions kept in [`TxProgress::http`]; older ones are finished and were inspected.
const TRACKED_HTTP_TXS: usize = 64;

impl Detector {
    pub fn new(rules: Arc<CompiledRules>) -> anyhow::Result<Detector> {
        let matcher = Matcher::new(&rules).map_err(|e| anyhow::anyhow!("cannot prepare the rule matcher: {e:?}"))?;
        Ok(Detector { rules, matcher, scratch: Vec::new() })
    }

    /// Packet rules over one packet.
    pub fn packet(
        &mut self,
        facts: &PacketFacts<'_>,
        key: FlowKey,
        direction: Option<Direction>,
        payload: &[u8],
        in_stream: bool,
        flow: Option<&mut FlowDetectState>,
        out: &mut Vec<PendingAlert>,
    ) {
        let view = facts.view(key, direction, payload, in_stream);
        self.matcher.inspect_packet(&self.rules, flow, &view, &mut self.scratch);
        for alert in self.scratch.drain(..) {
            out.push(PendingAlert {
                alert,
                ts: facts.ts,
                key,
                direction: direction.unwrap_or(Direction::ToServer),
                payload: payload.to_vec(),
                stream: false,
                source: facts.source,
                pcap_cnt: facts.pcap_cnt,
                frame: Some((facts.link, facts.frame.to_vec())),
                tunnel: facts.tunnel,
                app_object: None,
            });
        }
    }

    /// Raw-stream rules over newly reassembled bytes of one direction.
    pub fn stream(
        &mut self,
        facts: &PacketFacts<'_>,
        key: FlowKey,
        direction: Direction,
        data: &[u8],
        flow: &mut FlowDetectState,
        out: &mut Vec<PendingAlert>,
    ) {
        let view = facts.view(key, Some(direction), data, true);
        self.matcher.inspect_stream(&self.rules, flow, &view, data, &mut self.scratch);
        for alert in self.scratch.drain(..) {
            out.push(PendingAlert {
                alert,
                ts: facts.ts,
                key,
                direction,
                payload: data.to_vec(),
                stream: true,
                source: facts.source,
                pcap_cnt: facts.pcap_cnt,
                frame: None,
                tunnel: facts.tunnel,
                app_object: None,
            });
        }
    }

    /// Transaction rules over the app-layer transactions that grew since last inspected, after
    /// data of `direction` was parsed.
    #[allow(clippy::too_many_arguments)]
    pub fn transactions(
        &mut self,
        facts: &PacketFacts<'_>,
        key: FlowKey,
        direction: Direction,
        app: &mut AppLayer,
        progress: &mut TxProgress,
        flow: &mut FlowDetectState,
        out: &mut Vec<PendingAlert>,
    ) {
        let packet_direction = direction;
        let mut inspect_as = |me: &mut Detector,
                              direction: Direction,
                              tx_id: u64,
                              buffers: inspect::TxBuffers,
                              object: Option<(&'static str, Value)>,
                              flow: &mut FlowDetectState| {
            if buffers.is_empty() {
                return;
            }
            let view = buffers.view();
            let tx = TxView { tx_id, direction, buffers: &view };
            // Rules read addresses as the inspected side's data travels.
            let key = if direction == packet_direction { key } else { key.reversed() };
            let pkt = facts.view(key, Some(direction), &[], true);
            me.matcher.inspect_tx(&me.rules, flow, &pkt, &tx, &mut me.scratch);
            for alert in me.scratch.drain(..) {
                out.push(PendingAlert {
                    alert,
                    ts: facts.ts,
                    key,
                    direction,
                    payload: Vec::new(),
                    stream: false,
                    source: facts.source,
                    pcap_cnt: facts.pcap_cnt,
                    frame: None,
                    tunnel: facts.tunnel,
                    app_object: object.clone(),
                });
            }
        };
        if let Some(http) = app.http_mut() {
            // A finished transaction is inspected one last time from both sides (its request
            // and response are both complete) and handed over; an open one from the side whose
            // packet this is, whenever it grew.
            let finished = http.take_finished();
            for tx in &finished {
                let object = ("http", weir_extract::http::http_object(tx, false));
                for side in [Direction::ToServer, Direction::ToClient] {
                    inspect_as(self, side, tx.id, inspect::http(tx, side), Some(object.clone()), flow);
                }
                progress.http.retain(|(id, _)| *id != tx.id);
            }
            for tx in http.transactions() {
                let sig = http_signature(tx) ^ direction.index() as u64;
                if progress.http.iter().any(|&(id, s)| id == tx.id && s == sig) {
                    continue;
                }
                match progress.http.iter_mut().find(|(id, _)| *id == tx.id) {
                    Some(entry) => entry.1 = sig,
                    None => {
                        if progress.http.len() >= TRACKED_HTTP_TXS {
                            progress.http.remove(0);
                        }
                        progress.http.push((tx.id, sig));
                    }
                }
                let object = ("http", weir_extract::http::http_object(tx, false));
                inspect_as(self, direction, tx.id, inspect::http(tx, direction), Some(object), flow);
            }
        } else if let Some(smtp) = app.smtp_mut() {
            // Finished transactions once; the one in progress whenever it grew.
            for tx in smtp.take_finished() {
                let object = ("smtp", tx.smtp_object());
                inspect_as(self, direction, tx.tx_id, inspect::smtp(&tx), Some(object), flow);
            }
            let current = smtp.current();
            let sig = smtp_signature(current);
            if sig != progress.smtp {
                progress.smtp = sig;
                let object = ("smtp", current.smtp_object());
                inspect_as(self, direction, current.tx_id, inspect::smtp(current), Some(object), flow);
            }
        } else if let Some(ftp) = app.ftp_mut() {
            for tx in ftp.take_finished() {
                let object = ("ftp", tx.eve_object());
                inspect_as(self, Direction::ToServer, tx.id, inspect::ftp(&tx), Some(object), flow);
            }
        } else if let Some(data) = app.ftp_data() {
            // The file an FTP data connection carries is known once its command is.
            if let Some(transfer) = &data.expectation().transfer {
                let sig = transfer.argument.len() as u64 + 1;
                if sig != progress.single {
                    progress.single = sig;
                    let mut buffers = inspect::TxBuffers::default();
                    buffers.add("file.name", &transfer.argument);
                    let object = ("ftp_data", data.eve_object());
                    inspect_as(self, direction, 0, buffers, Some(object), flow);
                }
            }
        } else if let Some(pop3) = app.pop3_mut() {
            for tx in pop3.take_finished() {
                inspect_as(self, Direction::ToClient, tx.tx_id, inspect::retrieved(&tx.email, &tx.file_data), None, flow);
            }
        } else if let Some(imap) = app.imap_mut() {
            for tx in imap.take_finished() {
                inspect_as(self, tx.direction, tx.tx_id, inspect::retrieved(&tx.email, &tx.file_data), None, flow);
            }
        } else if let Some(dns) = app.dns() {
            let next = progress.dns_next;
            for tx in dns.transactions().filter(|tx| tx.tx_id >= next) {
                progress.dns_next = tx.tx_id + 1;
                inspect_as(self, tx.direction, tx.tx_id, inspect::dns(tx), None, flow);
            }
        } else if let Some(tls) = app.tls() {
            let buffers = inspect::tls(tls, direction);
            let sig = buffers.view().iter().map(|(_, b)| b.len() as u64 + 1).sum::<u64>() + direction.index() as u64;
            if sig != progress.single {
                progress.single = sig;
                inspect_as(self, direction, 0, buffers, None, flow);
            }
        }
    }
}

/// Changes whenever a transaction gained something rules can see: a new line or header block,
/// completion, or a body that doubled. Bodies count by powers of two so a growing body is
/// re-inspected a logarithmic number of times (about twice its length in all), not per chunk.
fn http_signature(tx: &weir_extract::http::HttpTx) -> u64 {
    let bucket = |len: usize| u64::from(usize::BITS - len.leading_zeros());
    let parts = [
        tx.request_line.len() as u64,
        tx.request_headers.len() as u64,
        u64::from(tx.request_complete),
        bucket(tx.request_body.len()),
        tx.request_files.len() as u64,
        bucket(tx.request_files.last().map_or(0, |f| f.data.len())),
        tx.response_line.len() as u64,
        tx.response_headers.len() as u64,
        u64::from(tx.response_complete),
        bucket(tx.response_body.len()),
    ];
    parts.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, p| (h ^ p).wrapping_mul(0x0100_0000_01b3))
}

fn smtp_signature(tx: &weir_extract::smtp::SmtpTx) -> u64 {
    let parts = [
        tx.tx_id,
        u64::from(tx.helo.is_some()),
        u64::from(tx.mail_from.is_some()),
        tx.rcpt_to.len() as u64,
        u64::from(tx.email.is_some()),
        tx.file_data.len() as u64,
    ];
    parts.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, p| (h ^ p).wrapping_mul(0x0100_0000_01b3))
}

/// Text as EVE's `payload_printable` writes it: printable ASCII kept, everything else a dot.
fn printable(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| if (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\r' { char::from(b) } else { '.' }).collect()
}

/// The EVE `alert` record, laid out as Suricata writes it.
pub fn alert_record<S>(rules: &CompiledRules, pending: &PendingAlert, flow: &Flow<S>) -> Record {
    let header = FlowHeader { flow_id: flow.id, key: pending.key, app_proto: flow.app_proto };
    let mut r = eve::record(pending.ts, "alert", Some(&header));
    if let Some(n) = pending.pcap_cnt {
        r.insert("pcap_cnt".into(), Value::from(n));
    }
    if let Some(outer) = pending.tunnel {
        let mut t = Map::new();
        eve::put_addresses(&mut t, &outer);
        t.insert("depth".into(), Value::from(0));
        r.insert("tunnel".into(), Value::Object(t));
    }
    if let AlertSource::Tx(id) = pending.alert.source {
        r.insert("tx_id".into(), Value::from(id));
    }
    r.insert("direction".into(), Value::from(pending.direction.eve()));
    r.insert("alert".into(), Value::Object(rules.eve_alert(&pending.alert)));
    if let Some(app) = flow.app_proto {
        r.insert("app_proto".into(), Value::from(app.eve_name()));
    }
    if let Some((name, object)) = &pending.app_object {
        r.insert((*name).into(), object.clone());
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    r.insert(
        "flow".into(),
        json!({
            "pkts_toserver": flow.pkts[0],
            "pkts_toclient": flow.pkts[1],
            "bytes_toserver": flow.bytes[0],
            "bytes_toclient": flow.bytes[1],
            "start": flow.start.eve(),
            "src_ip": flow.key.src_ip.to_string(),
            "dest_ip": flow.key.dst_ip.to_string(),
            "src_port": flow.key.src_port,
            "dest_port": flow.key.dst_port,
        }),
    );
    if !pending.payload.is_empty() || !pending.stream {
        r.insert("payload".into(), Value::from(b64.encode(&pending.payload)));
        r.insert("payload_printable".into(), Value::from(printable(&pending.payload)));
    }
    r.insert("stream".into(), Value::from(u8::from(pending.stream)));
    if let Some((link, frame)) = &pending.frame {
        r.insert("packet".into(), Value::from(b64.encode(frame)));
        r.insert("packet_info".into(), json!({ "linktype": link.0 }));
    }
    let pkt_src = match pending.source {
        PacketSource::Wire => "wire/pcap",
        PacketSource::FlowEnd => "stream (flow timeout)",
    };
    r.insert("pkt_src".into(), Value::from(pkt_src));
    r
}
