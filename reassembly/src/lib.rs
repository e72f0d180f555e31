//! TCP session tracking and per-direction stream reassembly.
