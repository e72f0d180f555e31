//! Anomalies: malformed or suspicious input that is counted and logged, never fatal.

/// Where an anomaly was found, as EVE `anomaly.type` spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AnomalyLayer {
    Decode,
    Stream,
    AppLayer,
}

impl AnomalyLayer {
    pub fn eve(self) -> &'static str {
        match self {
            AnomalyLayer::Decode => "decode",
            AnomalyLayer::Stream => "stream",
            AnomalyLayer::AppLayer => "applayer",
        }
    }
}

/// A named anomaly. `event` uses Suricata's event names where Suricata has one
/// (`ipv4.trunc_pkt`, `stream.pkt_invalid_timestamp`, ...), so EVE consumers recognise them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Anomaly {
    pub layer: AnomalyLayer,
    pub event: &'static str,
}

impl Anomaly {
    pub const fn decode(event: &'static str) -> Anomaly {
        Anomaly { layer: AnomalyLayer::Decode, event }
    }
    pub const fn stream(event: &'static str) -> Anomaly {
        Anomaly { layer: AnomalyLayer::Stream, event }
    }
    pub const fn app_layer(event: &'static str) -> Anomaly {
        Anomaly { layer: AnomalyLayer::AppLayer, event }
    }
}
