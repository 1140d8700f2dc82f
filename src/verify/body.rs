//! Reading a request's body to its end, within a limit, into one buffer.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BufMut, Bytes};
use http_body::Body as HttpBody;
use pin_project_lite::pin_project;

use super::BoxError;
use crate::{RejectionKind, WebhookRejection};

pin_project! {
    /// Reads a body to its end into one buffer, and refuses it as soon as it
    /// is over the limit.
    ///
    /// Each frame is copied and dropped at once: a frame from hyper shares
    /// hyper's read buffer, so keeping every frame, as `http_body_util`'s
    /// `Collect` does, held about 40 times a body sent one byte per chunk.
    /// A body that comes in one frame is kept as it is, not copied.
    pub(super) struct ReadBody<B> {
        #[pin]
        body: B,
        limit: usize,
        // The length the body declared (its size hint's lower bound), at
        // most the limit.
        declared: usize,
        // The first data frame, until a second one comes.
        first: Bytes,
        // Every byte read, once a second data frame has come.
        buffer: Vec<u8>,
    }
}

impl<B: HttpBody> ReadBody<B> {
    pub(super) fn new(body: B, limit: usize) -> Self {
        let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
        Self {
            body,
            limit,
            declared: declared.min(limit),
            first: Bytes::new(),
            buffer: Vec::new(),
        }
    }
}

impl<B> Future for ReadBody<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Output = Result<Bytes, WebhookRejection>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let frame = match ready!(this.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => frame,
                Some(Err(error)) => {
                    let error: BoxError = error.into();
                    return Poll::Ready(Err(WebhookRejection::new(
                        RejectionKind::UnreadableBody,
                        format!("reading the body failed: {error}"),
                    )));
                }
                None if this.buffer.is_empty() => return Poll::Ready(Ok(mem::take(this.first))),
                None => return Poll::Ready(Ok(Bytes::from(mem::take(this.buffer)))),
            };
            // Trailers are not part of what was signed; an empty frame (an
            // HTTP/2 END_STREAM) must not cost the one-frame body a copy.
            let Ok(mut data) = frame.into_data() else {
                continue;
            };
            if !data.has_remaining() {
                continue;
            }
            let read = this.first.len() + this.buffer.len();
            if data.remaining() > *this.limit - read {
                return Poll::Ready(Err(WebhookRejection::too_large(*this.limit)));
            }
            if read == 0 {
                // Perhaps the whole body: kept as it is (no copy for `Bytes`).
                *this.first = data.copy_to_bytes(data.remaining());
                continue;
            }
            let needed = read + data.remaining();
            if needed > this.buffer.capacity() {
                // Double, for amortized copies, but not past the declared
                // length (else the limit): capacity stays under twice what
                // was read and within the limit, whatever a header claims.
                let ceiling = if needed <= *this.declared {
                    *this.declared
                } else {
                    *this.limit
                };
                let capacity = this
                    .buffer
                    .capacity()
                    .saturating_mul(2)
                    .clamp(needed, ceiling);
                this.buffer.reserve_exact(capacity - this.buffer.len());
            }
            this.buffer.put(mem::take(this.first));
            this.buffer.put(data);
        }
    }
}
