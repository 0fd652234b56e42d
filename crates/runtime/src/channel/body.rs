//! Request bodies out and response bodies in, on the caller's side of the
//! HTTP/2 connection: no task between the call and its stream.

use super::ConnState;
use super::frames::PrefixScan;
use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http_body::{Body as _, Frame};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker, ready};
use tonic::Status;
use tonic::body::Body;

/// Sends a request body on its stream as the peer's flow control allows.
///
/// The first DATA frame goes out with the request head, without waiting for
/// stream capacity (which h2 grants only once the conn task has opened the
/// stream: a round trip through that task on every unary call). Each later
/// non-empty chunk waits until the previous ones left h2's send buffer, so
/// at most one chunk is held there.
///
/// The call polls it beside the response; a streaming request whose
/// response head arrives first is finished by a task of its own.
pub(super) struct Pump {
    body: Body,
    stream: SendStream<Bytes>,
    /// A frame taken from the body that waits for capacity.
    waiting: Option<Frame<Bytes>>,
    sent_data: bool,
}

impl Pump {
    pub(super) fn new(body: Body, stream: SendStream<Bytes>) -> Pump {
        Pump {
            body,
            stream,
            waiting: None,
            sent_data: false,
        }
    }

    /// The body's next frame, `None` once it has ended or failed (a
    /// failure resets the stream, so nothing more can be sent on it).
    fn poll_body(&mut self, cx: &mut Context<'_>) -> Poll<Option<Frame<Bytes>>> {
        match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
            Some(Ok(frame)) => Poll::Ready(Some(frame)),
            None => Poll::Ready(None),
            Some(Err(status)) => {
                tracing::debug!(%status, "request body failed; cancelling the stream");
                self.stream.send_reset(Reason::CANCEL);
                Poll::Ready(None)
            }
        }
    }

    /// Ends the pump, leaving a no-op waker with the stream.
    ///
    /// h2 keeps the waker of the last `poll_reset` and wakes it when the
    /// stream opens or gains send capacity. For a unary call both happen in
    /// the caller's own poll of the connection (drive.rs), right after the
    /// pump finished: the task would wake itself while running, and a
    /// multi-thread runtime answers that by queueing the task again and
    /// waking another worker to come and take it, a thread wake-up on every
    /// call. Nothing waits on the send side of the stream any more.
    fn finish(&mut self) -> Poll<()> {
        let _ = self
            .stream
            .poll_reset(&mut Context::from_waker(Waker::noop()));
        Poll::Ready(())
    }

    /// Whether `frame` must wait for the data before it to be sent.
    fn must_wait(&self, frame: &Frame<Bytes>) -> bool {
        self.sent_data
            && self.stream.capacity() == 0
            && frame.data_ref().is_some_and(|d| !d.is_empty())
    }
}

impl Future for Pump {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            // The peer reset the stream (or the connection failed): nobody
            // reads the rest.
            if let Poll::Ready(reset) = this.stream.poll_reset(cx) {
                tracing::trace!(?reset, "request stream reset by the plugin");
                return Poll::Ready(());
            }
            let frame = match this.waiting.take() {
                Some(frame) => frame,
                None => match ready!(this.poll_body(cx)) {
                    Some(frame) => frame,
                    None => {
                        let _ = this.stream.send_data(Bytes::new(), true);
                        return this.finish();
                    }
                },
            };
            if this.must_wait(&frame) {
                this.stream.reserve_capacity(1);
                match this.stream.poll_capacity(cx) {
                    Poll::Pending => {
                        this.waiting = Some(frame);
                        return Poll::Pending;
                    }
                    Poll::Ready(Some(Ok(_))) => {}
                    Poll::Ready(Some(Err(_)) | None) => return this.finish(),
                }
            }
            let data = match frame.into_data() {
                Ok(data) => data,
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = this.stream.send_trailers(trailers);
                        return this.finish();
                    }
                    continue;
                }
            };
            // One frame of look-ahead, so that the last DATA frame carries
            // END_STREAM: a unary request is then HEADERS and one DATA
            // frame, as gRPC's own clients send it. (grpc-go answers a
            // request that is not half-closed with an extra RST_STREAM.)
            let (end, next) = match this.body.is_end_stream() {
                true => (true, None),
                false => match this.poll_body(cx) {
                    Poll::Ready(None) => (true, None),
                    Poll::Ready(Some(next)) => (false, Some(next)),
                    Poll::Pending => (false, None),
                },
            };
            this.sent_data |= !data.is_empty();
            if this.stream.send_data(data, end).is_err() || end {
                return this.finish();
            }
            this.waiting = next;
        }
    }
}

/// The body of a plugin's response: DATA frames, then the trailers that
/// carry the gRPC status. Received bytes are handed back to flow control as
/// soon as they are passed on.
pub struct ResponseBody {
    /// Taken only by `drop`.
    recv: Option<RecvStream>,
    data_done: bool,
    conn: Arc<ConnState>,
    /// The channel's response message limit, when one is set.
    limit: Option<PrefixScan>,
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("stream", &self.recv.as_ref().map(RecvStream::stream_id))
            .finish_non_exhaustive()
    }
}

impl ResponseBody {
    pub(super) fn new(
        recv: RecvStream,
        conn: Arc<ConnState>,
        limit: Option<usize>,
    ) -> ResponseBody {
        ResponseBody {
            recv: Some(recv),
            data_done: false,
            conn,
            limit: limit.map(PrefixScan::new),
        }
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let Some(recv) = &mut this.recv else {
            return Poll::Ready(None);
        };
        if !this.data_done {
            match ready!(recv.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = recv.flow_control().release_capacity(data.len());
                    if let Some(scan) = &mut this.limit
                        && let Err(declared) = scan.feed(&data)
                    {
                        // Nothing more is read: dropping the body resets
                        // the stream.
                        let status = scan.refusal(declared, "decoded");
                        this.data_done = true;
                        return Poll::Ready(Some(Err(status)));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(err)) => return Poll::Ready(Some(Err(this.conn.call_failed(err)))),
                None => this.data_done = true,
            }
        }
        match ready!(recv.poll_trailers(cx)) {
            Ok(Some(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Ok(None) => Poll::Ready(None),
            Err(err) => Poll::Ready(Some(Err(this.conn.call_failed(err)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recv.as_ref().is_none_or(RecvStream::is_end_stream)
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Dropping the stream's last handle wakes the connection so that
        // it forgets the stream. From a caller outside the worker threads
        // (the body of `#[tokio::main]`) that wake-up would cost a worker's
        // wake-up, and two context switches, after every call; the caller
        // makes that poll itself instead (drive.rs).
        let inline = self.conn.driver.inline();
        self.recv = None;
        drop(inline);
    }
}
