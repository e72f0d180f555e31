//! Test support: builds packets and capture files byte by byte, so Weir's tests run on inputs the
//! project makes itself and every field of them is known.

pub mod adversarial;
pub mod packet;
pub mod pcap;
