//! Central Node link, protocol v1: durable spool, mutual TLS.
