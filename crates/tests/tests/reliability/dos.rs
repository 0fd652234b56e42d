//! Denial of service against a running Rust plugin: each case sends what a
//! hostile local peer can send before any authentication (plaintext
//! plugins, or connections that never finish TLS), and reports the bound
//! the plugin holds: its memory growth read from /proc/<pid>/status, how
//! soon it closed or answered, and that the real host is still served.

use crate::census::ms;
use crate::plugin::{BOUND, RowText, Running, Setup, plugin_case};
use rpcplugin::Addr;
use rpcplugin::{Client, ClientTls, ReattachConfig};
use rpcplugin_runtime::internal::proto::health::HealthCheckRequest;
use rpcplugin_runtime::internal::proto::health::health_client::HealthClient;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const DATA: u8 = 0x0;
const END_HEADERS: u8 = 0x4;

/// How long the plugin waits for a plaintext client's HTTP/2 preface
/// (the runtime's handshake timeout).
const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);

const PLAINTEXT: Setup = Setup {
    tls: false,
    ulimit: None,
};

/// Runs one DoS case (see [`plugin_case`]) and records its row.
fn dos_case(
    case: &str,
    expected: &str,
    bound: &str,
    setup: Setup,
    attack: impl AsyncFnOnce(&Running) -> Result<String, String>,
) {
    plugin_case(
        RowText {
            group: "dos",
            case,
            expected,
            bound,
        },
        setup,
        attack,
    );
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The client preface and an empty SETTINGS frame.
fn hello() -> Vec<u8> {
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(0x4, 0, 0, &[]));
    bytes
}

/// A gRPC request's header block for `path`.
fn grpc_headers(encoder: &mut loona_hpack::Encoder<'_>, path: &str) -> Vec<u8> {
    encoder.encode([
        (&b":method"[..], &b"POST"[..]),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
        (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
    ])
}

/// What the server sent on a raw connection: the header fields of each
/// stream (all of its header blocks), and whether it closed.
#[derive(Debug, Default)]
struct Answers {
    headers: BTreeMap<u32, Vec<(String, String)>>,
    goaway: bool,
    closed: bool,
}

impl Answers {
    fn field(&self, stream: u32, name: &str) -> Option<&str> {
        self.headers
            .get(&stream)?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads frames until every stream in `streams` has sent its trailers
/// (a header block with END_STREAM) or the connection closes, for at most
/// `limit`.
async fn read_answers(
    stream: &mut rpcplugin_transport::Stream,
    streams: &[u32],
    limit: Duration,
) -> Answers {
    let mut answers = Answers::default();
    let mut decoder = loona_hpack::Decoder::new();
    let mut finished = Vec::new();
    let mut block = Vec::new();
    let read = async {
        loop {
            let mut header = [0u8; 9];
            if stream.read_exact(&mut header).await.is_err() {
                answers.closed = true;
                return;
            }
            let len =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let (kind, flags) = (header[3], header[4]);
            let id = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if stream.read_exact(&mut payload).await.is_err() {
                answers.closed = true;
                return;
            }
            match kind {
                0x7 => answers.goaway = true,
                HEADERS | CONTINUATION => {
                    block.extend_from_slice(&payload);
                    if flags & END_HEADERS != 0 {
                        let fields = decoder.decode(&block).unwrap_or_default();
                        block.clear();
                        answers
                            .headers
                            .entry(id)
                            .or_default()
                            .extend(fields.into_iter().map(|(n, v)| {
                                (
                                    String::from_utf8_lossy(&n).into_owned(),
                                    String::from_utf8_lossy(&v).into_owned(),
                                )
                            }));
                    }
                    if flags & 0x1 != 0 {
                        finished.push(id);
                    }
                }
                _ => {}
            }
            if streams.iter().all(|s| finished.contains(s)) {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(limit, read).await;
    answers
}

async fn dial(addr: &Addr) -> Result<rpcplugin_transport::Stream, String> {
    rpcplugin_transport::dial(addr)
        .await
        .map_err(|e| format!("dial: {e}"))
}

/// M1: a header block that never ends. h2 and grpc-go bound the number of
/// CONTINUATION frames per block (CVE-2023-45288); the plaintext
/// `:authority` filter in front of h2 must too.
#[test]
fn continuation_flood() {
    // Empty CONTINUATION frames, 9 bytes each, sent in batches until the
    // plugin closes the connection or this much was sent.
    const BUDGET_FRAMES: usize = 8 << 20;
    const BATCH: usize = 8192;
    dos_case(
        "CONTINUATION flood: a HEADERS frame without END_HEADERS, then empty CONTINUATION frames (plaintext plugin)",
        "connection closed after a bounded number of frames; no memory growth",
        "80 frames or 1 MiB per header block",
        PLAINTEXT,
        async |plugin| {
            let mut stream = dial(&plugin.addr).await?;
            let mut encoder = loona_hpack::Encoder::new();
            let block = grpc_headers(&mut encoder, "/grpc.health.v1.Health/Check");
            let mut opening = hello();
            opening.extend(frame(HEADERS, 0, 1, &block));
            stream
                .write_all(&opening)
                .await
                .map_err(|e| format!("write: {e}"))?;
            let batch: Vec<u8> = (0..BATCH)
                .flat_map(|_| frame(CONTINUATION, 0, 1, &[]))
                .collect();
            let started = Instant::now();
            let mut sent = 0usize;
            while sent < BUDGET_FRAMES {
                if stream.write_all(&batch).await.is_err() {
                    break;
                }
                sent += BATCH;
            }
            if sent >= BUDGET_FRAMES {
                return Err(format!(
                    "the plugin read {sent} CONTINUATION frames ({} MiB) of one header block without closing the connection",
                    (sent * 9) >> 20
                ));
            }
            let answers = read_answers(&mut stream, &[1], BOUND).await;
            if !answers.closed {
                return Err("the connection stayed open".into());
            }
            if answers.headers.contains_key(&1) {
                return Err("the plugin answered the unfinished request".into());
            }
            Ok(format!(
                "connection closed after at most {} frames sent ({} KiB, socket buffers included) in {}",
                sent + BATCH,
                (sent + BATCH) * 9 / 1024,
                ms(started.elapsed())
            ))
        },
    );
}

/// L1: gRPC length prefixes declaring 2^31-1 bytes on go-plugin's own
/// services. Each must be refused at once; none may make the plugin
/// reserve the declared size. (The test plugin's KV service sets its own
/// limit, as applications do.)
#[test]
fn oversized_length_prefixes() {
    // (path, whether the call ends with a status: the broker's request is
    // a stream, whose decoding error ends the plugin's reading side only).
    const CALLS: [(&str, bool); 4] = [
        ("/grpc.health.v1.Health/Check", true),
        ("/grpc.health.v1.Health/Watch", true),
        ("/plugin.GRPCStdio/StreamStdio", true),
        ("/plugin.GRPCBroker/StartStream", false),
    ];
    dos_case(
        "gRPC length prefixes declaring 2 GiB on Health Check and Watch, GRPCStdio and GRPCBroker (plaintext plugin)",
        "each call refused; no address-space growth",
        "4 MiB per message",
        PLAINTEXT,
        async |plugin| {
            let vm_before = plugin.vm_size_kib();
            let mut stream = dial(&plugin.addr).await?;
            let mut encoder = loona_hpack::Encoder::new();
            let mut bytes = hello();
            let mut ids = Vec::new();
            for (i, (path, _)) in CALLS.iter().enumerate() {
                let id = 1 + 2 * u32::try_from(i).unwrap();
                ids.push(id);
                bytes.extend(frame(
                    HEADERS,
                    END_HEADERS,
                    id,
                    &grpc_headers(&mut encoder, path),
                ));
                bytes.extend(frame(DATA, 0, id, &[0, 0x7f, 0xff, 0xff, 0xff]));
            }
            stream
                .write_all(&bytes)
                .await
                .map_err(|e| format!("write: {e}"))?;
            let started = Instant::now();
            let with_status: Vec<u32> = ids
                .iter()
                .zip(CALLS)
                .filter(|(_, (_, status))| *status)
                .map(|(id, _)| *id)
                .collect();
            let answers = read_answers(&mut stream, &with_status, BOUND).await;
            let took = started.elapsed();
            let vm_growth_mib = plugin.vm_size_kib().saturating_sub(vm_before) / 1024;
            let statuses: Vec<String> = with_status
                .iter()
                .map(|id| {
                    answers
                        .field(*id, "grpc-status")
                        .unwrap_or("none")
                        .to_owned()
                })
                .collect();
            if vm_growth_mib > 256 {
                return Err(format!(
                    "the plugin's virtual memory grew by {vm_growth_mib} MiB; grpc-status of the unary requests: {statuses:?}"
                ));
            }
            if statuses.iter().any(|s| s == "none" || s == "0") {
                return Err(format!(
                    "not every call was refused within {BOUND:?}: grpc-status {statuses:?}"
                ));
            }
            Ok(format!(
                "unary requests refused in {} with grpc-status {}; VmSize +{vm_growth_mib} MiB for 4 prefixes of 2 GiB",
                ms(took),
                statuses.join(", ")
            ))
        },
    );
}

/// L2 (with L1): a 16 MiB service name in a Health Check. It must be
/// refused by the message limit and never echoed back.
#[test]
fn huge_health_service_name() {
    dos_case(
        "Health Check naming a 16 MiB service (plaintext plugin)",
        "refused by the 4 MiB message limit, nothing echoed, no memory growth",
        "4 MiB per message; error text under 1 KiB",
        PLAINTEXT,
        async |plugin| {
            let config = ReattachConfig::new(1, &plugin.addr, plugin.pid(), true);
            let client = Client::reattach(&config, ClientTls::Disabled)
                .await
                .map_err(|e| e.to_string())?;
            let mut health = HealthClient::new(client.channel())
                .max_encoding_message_size(usize::MAX)
                .max_decoding_message_size(usize::MAX);
            let started = Instant::now();
            let result = tokio::time::timeout(
                BOUND * 5,
                health.check(HealthCheckRequest {
                    service: "s".repeat(16 << 20),
                }),
            )
            .await
            .map_err(|_| "no answer".to_owned())?;
            let status = match result {
                Ok(_) => return Err("a 16 MiB service name was reported SERVING".into()),
                Err(status) => status,
            };
            if status.message().len() > 1024 {
                return Err(format!(
                    "the error text is {} bytes long ({:?})",
                    status.message().len(),
                    status.code()
                ));
            }
            Ok(format!(
                "refused in {} with {:?}: {:?}",
                ms(started.elapsed()),
                status.code(),
                status.message()
            ))
        },
    );
}

/// A header block of one 4000-byte header added to the HPACK dynamic
/// table, then `refs` one-byte references to it, after the preface and an
/// empty SETTINGS frame.
fn hpack_bomb(refs: usize) -> Vec<u8> {
    let mut block = vec![0x40, 1, b'x', 0x7f];
    // 4000 - 127 as an HPACK integer continuation (RFC 7541 5.1).
    let mut rest = 4000 - 127;
    while rest >= 128 {
        block.push(u8::try_from(rest % 128).unwrap() | 0x80);
        rest /= 128;
    }
    block.push(u8::try_from(rest).unwrap());
    block.extend(std::iter::repeat_n(b'v', 4000));
    block.extend(std::iter::repeat_n(0xbe, refs));
    let len = u32::try_from(block.len()).unwrap().to_be_bytes();
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    bytes.extend_from_slice(&[len[1], len[2], len[3], 1, 4, 0, 0, 0, 1]);
    bytes.extend_from_slice(&block);
    bytes
}

/// Sends `bytes` on a plaintext connection and reads frames until the
/// plugin closes it; returns the frame types it sent.
async fn send_until_closed(addr: &Addr, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = rpcplugin_transport::dial(addr)
        .await
        .map_err(|e| e.to_string())?;
    // The plugin may close before it has read everything: ignore that.
    let _ = stream.write_all(bytes).await;
    let mut kinds = Vec::new();
    let read = async {
        loop {
            let mut header = [0u8; 9];
            if stream.read_exact(&mut header).await.is_err() {
                return;
            }
            kinds.push(header[3]);
            let len =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let mut payload = vec![0u8; len];
            if stream.read_exact(&mut payload).await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .map_err(|_| "the connection stayed open".to_owned())?;
    Ok(kinds)
}

#[test]
fn hpack_bomb_over_plaintext() {
    dos_case(
        "HPACK bomb: a 254 KB header block that decodes to 1 GB (plaintext plugin)",
        "connection closed, no memory blow-up",
        "1 MiB decoded header list",
        PLAINTEXT,
        async |plugin| {
            let started = Instant::now();
            let kinds = send_until_closed(&plugin.addr, &hpack_bomb(250_000)).await?;
            // 1 = HEADERS: a response means the block was accepted.
            if kinds.contains(&1) {
                return Err(format!("the plugin answered the request: frames {kinds:?}"));
            }
            Ok(format!(
                "connection closed in {} (frames {kinds:?})",
                ms(started.elapsed())
            ))
        },
    );
}

/// L3: plaintext connections that never send the HTTP/2 preface. The real
/// host is served meanwhile, and each is closed after the preface timeout.
#[test]
fn idle_plaintext_connections_are_closed() {
    const IDLE: usize = 300;
    dos_case(
        "300 plaintext connections that never send the HTTP/2 preface",
        "the real host is served meanwhile; the plugin closes each after its preface timeout",
        "10 s preface timeout",
        PLAINTEXT,
        async |plugin| {
            let mut idle = Vec::new();
            for _ in 0..IDLE {
                idle.push(dial(&plugin.addr).await?);
            }
            let fds_open = plugin.fd_count();
            let served = plugin.serves_the_real_host().await;
            let started = Instant::now();
            let waits = idle.into_iter().map(|mut stream| {
                tokio::spawn(async move {
                    // The server's SETTINGS may come first; closed means EOF
                    // (or a reset).
                    let mut sink = Vec::new();
                    tokio::time::timeout(PREFACE_TIMEOUT + BOUND, stream.read_to_end(&mut sink))
                        .await
                        .is_ok()
                })
            });
            let mut closed = 0;
            for wait in waits.collect::<Vec<_>>() {
                if wait.await.unwrap_or(false) {
                    closed += 1;
                }
            }
            let took = started.elapsed();
            let served = served.map_err(|e| format!("with {IDLE} idle connections open: {e}"))?;
            if closed < IDLE {
                return Err(format!(
                    "{} of {IDLE} idle connections still open after {}",
                    IDLE - closed,
                    ms(PREFACE_TIMEOUT + BOUND)
                ));
            }
            Ok(format!(
                "plugin fds with {IDLE} idle connections: {fds_open}; real host served in {} meanwhile; all {IDLE} closed by the plugin within {}",
                ms(served),
                ms(took)
            ))
        },
    );
}

/// L3: connections to an AutoMTLS plugin that never start TLS. At most
/// the cap of handshakes is in flight; the rest wait in the listen
/// backlog, and the real host is served once they go.
#[test]
fn tls_handshakes_are_capped() {
    const CAP: usize = 128;
    const IDLE: usize = CAP + 72;
    dos_case(
        "200 connections to an AutoMTLS plugin that never start TLS",
        "at most 128 handshakes in flight (plugin fds); the real host is served once they go",
        "128 concurrent TLS handshakes",
        Setup {
            tls: true,
            ulimit: None,
        },
        async |plugin| {
            let fds_before = plugin.fd_count();
            let mut idle = Vec::new();
            for _ in 0..IDLE {
                idle.push(dial(&plugin.addr).await?);
            }
            // Wait until the plugin has accepted all it will: every
            // connection, or (capped) no change for a while.
            let deadline = Instant::now() + BOUND;
            let mut held = 0;
            while Instant::now() < deadline {
                held = plugin.fd_count().saturating_sub(fds_before);
                if held >= IDLE {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if held > CAP + 8 {
                return Err(format!(
                    "the plugin holds {held} of {IDLE} connections that never started TLS (cap {CAP})"
                ));
            }
            drop(idle);
            Ok(format!(
                "the plugin held {held} descriptors for {IDLE} connections that never started TLS"
            ))
        },
    );
}

/// L3: the plugin raises its soft RLIMIT_NOFILE to the hard limit at
/// start, as Go programs do.
#[test]
fn nofile_soft_limit_is_raised() {
    dos_case(
        "plugin started with a soft RLIMIT_NOFILE of 256",
        "soft limit raised to the hard limit at start",
        "—",
        Setup {
            tls: false,
            ulimit: Some("-Sn 256"),
        },
        async |plugin| {
            let (soft, hard) = plugin
                .nofile_limits()
                .ok_or("no Max open files in /proc/<pid>/limits")?;
            if soft != hard {
                return Err(format!("soft limit {soft}, hard limit {hard}"));
            }
            Ok(format!("soft limit {soft} = hard limit"))
        },
    );
}

/// L3: accept failing with EMFILE is logged at a bounded rate.
#[test]
fn accept_errors_are_rate_limited() {
    const IDLE: usize = 96;
    const WINDOW: Duration = Duration::from_secs(2);
    dos_case(
        "plugin out of descriptors (RLIMIT_NOFILE 64), 96 connections pending",
        "\"accept failed\" logged at most once a second",
        "1 line/s",
        Setup {
            tls: false,
            ulimit: Some("-n 64"),
        },
        async |plugin| {
            let mut idle = Vec::new();
            for _ in 0..IDLE {
                idle.push(dial(&plugin.addr).await?);
            }
            let deadline = Instant::now() + BOUND;
            while plugin.stderr_lines_with("accept failed") == 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let first = plugin.stderr_lines_with("accept failed");
            if first == 0 {
                return Err(format!("no accept error within {BOUND:?}"));
            }
            tokio::time::sleep(WINDOW).await;
            let lines = plugin.stderr_lines_with("accept failed") - first;
            drop(idle);
            if lines > 3 {
                return Err(format!(
                    "\"accept failed\" logged {lines} times in {}",
                    ms(WINDOW)
                ));
            }
            Ok(format!(
                "\"accept failed\" logged {lines} more times in the {} after the first",
                ms(WINDOW)
            ))
        },
    );
}
