//! Writers for pcap (both byte orders, micro and nano seconds) and pcapng files.
