//! Packet sources: pcap and pcapng files (and, later, live interfaces).
