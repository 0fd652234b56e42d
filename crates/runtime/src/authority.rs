//! Makes the `:authority` of incoming HTTP/2 requests acceptable to `h2`.
//!
//! gRPC's C core (grpcio for Python, and the Ruby, PHP and C++ wrappers)
//! dialling a unix socket without TLS sends the socket path, percent-encoded,
//! as `:authority` (`tmp%2Frpcplugin-x%2Fplugin1`). RFC 3986 allows that,
//! but the `http` crate refuses it, so `h2` resets every such request with
//! PROTOCOL_ERROR and a pyvider host could not call a Rust plugin over a
//! plaintext unix socket. Go's server ignores the value, and so does tonic.
//!
//! [`AuthorityFix`] sits between the socket and `h2` on the read side. The
//! client's first header block decides: it is HPACK-decoded, and when its
//! `:authority` parses (every client but C core), that block and the rest of
//! the connection pass through untouched, so such clients pay for one
//! decode. Otherwise every client header block is decoded, fixed (the
//! authority becomes `localhost`) and re-encoded with literal
//! representations only, so `h2`'s decoding table stays empty and in step.
//! Other frames are copied straight through without buffering.
//!
//! What the filter buffers is bounded as h2 bounds it: a header block may
//! hold at most 1 MiB and span at most 80 frames (h2's CONTINUATION count
//! for that size, CVE-2023-45288), and its decoded list at most 1 MiB.
//! Beyond that the connection fails before h2 sees the block.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, ReadBuf};

const PREFACE_LEN: usize = 24;
const FRAME_HEADER_LEN: usize = 9;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;
const FLAG_PADDED: u8 = 0x8;
const FLAG_PRIORITY: u8 = 0x20;
/// The smallest SETTINGS_MAX_FRAME_SIZE a peer may set, so always allowed.
const MAX_FRAME: usize = 16_384;
/// Largest header block accepted (h2 itself limits header lists to 16 KiB
/// by default).
const MAX_BLOCK: usize = 1 << 20;
/// Largest decoded header list accepted (RFC 7541 sizes). Indexed fields
/// let a small block stand for a huge list, which hyper would refuse only
/// after this filter had expanded it; 64 times hyper's default limit.
const MAX_HEADER_LIST: usize = 1 << 20;
/// Most frames (HEADERS and CONTINUATION) one header block may span.
/// Empty CONTINUATION frames add nothing to the block, so only a frame
/// count stops a block that never ends (CVE-2023-45288). As h2 counts:
/// the frames a full-size block needs at the smallest frame size, plus a
/// quarter for imperfect packing.
const MAX_BLOCK_FRAMES: usize = (MAX_BLOCK / MAX_FRAME) * 5 / 4;

struct Pending {
    /// The frames as received, replayed as they are when nothing needs fixing.
    raw: Vec<u8>,
    stream_id: [u8; 4],
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: Vec<u8>,
    /// Frames of this block so far, HEADERS included.
    frames: usize,
}

/// A server-side connection whose client header blocks are normalised.
pub(crate) struct AuthorityFix<S> {
    inner: S,
    decoder: loona_hpack::Decoder<'static>,
    preface_left: usize,
    passthrough_left: usize,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    pending: Option<Pending>,
    eof: bool,
    /// The first header block had a valid authority: forward everything.
    pass_all: bool,
    /// A header block needed fixing: re-encode all of them from now on.
    rewriting: bool,
}

impl<S> AuthorityFix<S> {
    pub(crate) fn new(inner: S) -> AuthorityFix<S> {
        AuthorityFix {
            inner,
            decoder: loona_hpack::Decoder::new(),
            preface_left: PREFACE_LEN,
            passthrough_left: 0,
            inbuf: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            pending: None,
            eof: false,
            pass_all: false,
            rewriting: false,
        }
    }

    /// A filter for a connection whose client preface was already read
    /// (and checked) by the caller; it is replayed to the server first.
    pub(crate) fn after_preface(inner: S) -> AuthorityFix<S> {
        let mut fix = AuthorityFix::new(inner);
        fix.preface_left = 0;
        fix.out.extend_from_slice(crate::incoming::PREFACE);
        fix
    }

    /// Moves as much of `inbuf` to `out` as can be decided now.
    fn process(&mut self) -> io::Result<()> {
        loop {
            if self.inbuf.is_empty() {
                return Ok(());
            }
            if self.preface_left > 0 || self.passthrough_left > 0 {
                let left = if self.preface_left > 0 {
                    &mut self.preface_left
                } else {
                    &mut self.passthrough_left
                };
                let n = (*left).min(self.inbuf.len());
                self.out.extend(self.inbuf.drain(..n));
                *left -= n;
                continue;
            }
            let Some(header) = self
                .inbuf
                .get(..FRAME_HEADER_LEN)
                .and_then(|h| <[u8; FRAME_HEADER_LEN]>::try_from(h).ok())
            else {
                return Ok(());
            };
            let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = header;
            let len = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
            let stream_id = [s0, s1, s2, s3];
            let is_headers =
                kind == TYPE_HEADERS || (kind == TYPE_CONTINUATION && self.pending.is_some());
            if !is_headers {
                if self.pending.is_some() {
                    return Err(invalid("a header block was interrupted by another frame"));
                }
                self.out.extend(self.inbuf.drain(..FRAME_HEADER_LEN));
                self.passthrough_left = len;
                continue;
            }
            if len > MAX_BLOCK {
                return Err(invalid("header frame too large"));
            }
            if self.inbuf.len() < FRAME_HEADER_LEN + len {
                return Ok(());
            }
            let raw: Vec<u8> = self.inbuf.drain(..FRAME_HEADER_LEN + len).collect();
            let frame = raw.get(FRAME_HEADER_LEN..).unwrap_or_default();
            if kind == TYPE_HEADERS {
                self.start_headers(frame, flags, stream_id)?;
            } else if let Some(pending) = self.pending.as_mut() {
                pending.frames += 1;
                if pending.frames > MAX_BLOCK_FRAMES {
                    return Err(invalid("header block spans too many CONTINUATION frames"));
                }
                pending.block.extend_from_slice(frame);
                if pending.block.len() > MAX_BLOCK {
                    return Err(invalid("header block too large"));
                }
            }
            if let Some(pending) = self.pending.as_mut() {
                pending.raw.extend_from_slice(&raw);
            }
            if flags & FLAG_END_HEADERS != 0 {
                self.finish_headers()?;
            }
        }
    }

    fn start_headers(&mut self, payload: &[u8], flags: u8, stream_id: [u8; 4]) -> io::Result<()> {
        let mut rest = payload;
        let mut pad = 0usize;
        if flags & FLAG_PADDED != 0 {
            let (&p, tail) = rest
                .split_first()
                .ok_or_else(|| invalid("padded HEADERS without pad length"))?;
            pad = usize::from(p);
            rest = tail;
        }
        let mut priority = None;
        if flags & FLAG_PRIORITY != 0 {
            let (head, tail) = rest
                .split_at_checked(5)
                .ok_or_else(|| invalid("short HEADERS priority"))?;
            priority = head.try_into().ok();
            rest = tail;
        }
        let fragment = rest
            .get(
                ..rest
                    .len()
                    .checked_sub(pad)
                    .ok_or_else(|| invalid("HEADERS padding too long"))?,
            )
            .unwrap_or_default();
        self.pending = Some(Pending {
            raw: Vec::new(),
            stream_id,
            end_stream: flags & FLAG_END_STREAM != 0,
            priority,
            block: fragment.to_vec(),
            frames: 1,
        });
        Ok(())
    }

    fn finish_headers(&mut self) -> io::Result<()> {
        let Some(pending) = self.pending.take() else {
            return Ok(());
        };
        let mut block = Vec::with_capacity(pending.block.len() + 64);
        // Decoded size as RFC 7541 4.1 counts it. Indexed fields make a
        // small block decode to a huge list, so count before copying.
        let mut list_size = 0usize;
        let mut fixed = false;
        self.decoder
            .decode_with_cb(&pending.block, |name, value| {
                list_size = list_size.saturating_add(name.len() + value.len() + 32);
                if list_size > MAX_HEADER_LIST {
                    return;
                }
                let value: &[u8] = if *name == *b":authority"
                    && http::uri::Authority::try_from(&*value).is_err()
                {
                    fixed = true;
                    b"localhost"
                } else {
                    &value
                };
                // Literal header field without indexing, new name (RFC 7541 6.2.2).
                block.push(0);
                encode_string(&name, &mut block);
                encode_string(value, &mut block);
            })
            .map_err(|e| invalid(&format!("HPACK decoding failed: {e}")))?;
        if list_size > MAX_HEADER_LIST {
            return Err(invalid("header list too large"));
        }
        if !fixed && !self.rewriting {
            // A client whose authority parses: h2 can read it all directly.
            self.out.extend_from_slice(&pending.raw);
            self.out.append(&mut self.inbuf);
            self.pass_all = true;
            return Ok(());
        }
        self.rewriting = true;
        self.emit_headers(&pending, &block);
        Ok(())
    }

    fn emit_headers(&mut self, pending: &Pending, block: &[u8]) {
        let prefix = if pending.priority.is_some() { 5 } else { 0 };
        let first_len = block.len().min(MAX_FRAME - prefix);
        let (first, mut rest) = block.split_at(first_len);
        let mut flags = 0;
        if pending.end_stream {
            flags |= FLAG_END_STREAM;
        }
        if pending.priority.is_some() {
            flags |= FLAG_PRIORITY;
        }
        if rest.is_empty() {
            flags |= FLAG_END_HEADERS;
        }
        self.frame_header(prefix + first.len(), TYPE_HEADERS, flags, pending.stream_id);
        if let Some(priority) = pending.priority {
            self.out.extend_from_slice(&priority);
        }
        self.out.extend_from_slice(first);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = tail;
            let flags = if rest.is_empty() { FLAG_END_HEADERS } else { 0 };
            self.frame_header(chunk.len(), TYPE_CONTINUATION, flags, pending.stream_id);
            self.out.extend_from_slice(chunk);
        }
    }

    fn frame_header(&mut self, len: usize, kind: u8, flags: u8, stream_id: [u8; 4]) {
        let len = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
        self.out
            .extend_from_slice(&[len[1], len[2], len[3], kind, flags]);
        self.out.extend_from_slice(&stream_id);
    }
}

/// An HPACK string literal without Huffman coding (RFC 7541 5.2).
fn encode_string(bytes: &[u8], out: &mut Vec<u8>) {
    encode_integer(bytes.len(), 7, 0, out);
    out.extend_from_slice(bytes);
}

/// An HPACK integer with an `prefix_bits` prefix (RFC 7541 5.1).
fn encode_integer(mut value: usize, prefix_bits: u32, first_byte_flags: u8, out: &mut Vec<u8>) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first_byte_flags | value as u8);
        return;
    }
    out.push(first_byte_flags | max_prefix as u8);
    value -= max_prefix;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// Feeds `bytes`, as a client would send them on a served connection,
/// through the `:authority` filter, and returns what the HTTP/2 server would
/// read, or `None` when the filter refuses the input. For fuzzing and
/// property tests; not part of the API.
#[doc(hidden)]
pub fn fuzz_authority_filter(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut filter = AuthorityFix::new(bytes);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let mut buf = ReadBuf::new(&mut chunk);
        match Pin::new(&mut filter).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) if buf.filled().is_empty() => return Some(out),
            Poll::Ready(Ok(())) => out.extend_from_slice(buf.filled()),
            // A byte slice is never pending.
            Poll::Ready(Err(_)) | Poll::Pending => return None,
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed HTTP/2 from client: {what}"),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let available = this.out.get(this.out_pos..).unwrap_or_default();
                let n = available.len().min(buf.remaining());
                buf.put_slice(available.get(..n).unwrap_or_default());
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.pass_all {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            // Fast path: the body of a passed-through frame goes straight
            // from the socket to the caller.
            if this.passthrough_left > 0 && this.inbuf.is_empty() && this.preface_left == 0 {
                let limit = this.passthrough_left.min(buf.remaining());
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(limit));
                ready!(Pin::new(&mut this.inner).poll_read(cx, &mut limited))?;
                let n = limited.filled().len();
                buf.advance(n);
                this.passthrough_left -= n;
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
                // Whatever partial frame is left is h2's to reject.
                let rest = std::mem::take(&mut this.inbuf);
                this.out.extend(rest);
                continue;
            }
            this.inbuf.extend_from_slice(read.filled());
            this.process()?;
        }
    }
}

crate::io_util::write_through!(AuthorityFix);

#[cfg(test)]
mod tests;
