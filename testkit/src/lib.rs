//! Test support: builds packets and pcap files byte by byte for Weir's tests.
