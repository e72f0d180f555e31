//! Packet decoding from link layer to transport, tunnels, IP defragmentation.
