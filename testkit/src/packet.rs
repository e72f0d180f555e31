//! Packet builders: Ethernet, VLAN, IPv4/IPv6 (with fragments), TCP, UDP, ICMP, tunnels.
