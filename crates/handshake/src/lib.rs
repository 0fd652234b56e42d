//! Sans-IO parsing, formatting and negotiation of the go-plugin handshake.
