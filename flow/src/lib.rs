//! The flow table: bidirectional flows, packet-time timeouts, memory cap, EVE flow records.
