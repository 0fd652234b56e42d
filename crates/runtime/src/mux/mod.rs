//! gRPC broker multiplexing (go-plugin's `GRPCBrokerMultiplex`,
//! `PLUGIN_MULTIPLEX_GRPC`): the host makes one raw connection to the
//! plugin's address and runs a yamux session on it (host = yamux client,
//! plugin = yamux server). The main gRPC connection and every brokered
//! connection are yamux streams, each with its own TLS (under AutoMTLS)
//! and HTTP/2. A brokered dial first knocks on the broker stream with the
//! id and waits for the ack; the acceptor then gives the next inbound
//! stream to that id's server.
//!
//! - `session`: the [`Muxer`](session::Muxer), its driver task and the
//!   routing of inbound streams;
//! - `stream`: one yamux stream as a tokio stream (eager SYN/ACK, one FIN);
//! - `serve`: gRPC servers fed from multiplexed streams;
//! - `closing`: the socket under a session, for which a peer that hung up
//!   first is a clean close.

pub(crate) mod closing;
pub(crate) mod serve;
pub(crate) mod session;
pub(crate) mod stream;

pub(crate) use session::{Muxer, Role};
