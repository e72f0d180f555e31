//! TLS handshake parsing.
