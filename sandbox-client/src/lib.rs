//! Sandbox dispatch (CAPEv2, Cuckoo): durable spool, dedup, verdicts.
