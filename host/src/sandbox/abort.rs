//! Cancellation reaches a skill blocked in an outgoing request.
//!
//! A skill checks `invocation.cancelled` between steps, but one that waits
//! for a response head or body (a slow server, a long stream) would only
//! notice after the host's grace period. So a request in flight when the
//! invocation is cancelled is aborted at that moment: the guest's call
//! returns an error, the skill sees `cancelled`, and cleans up. Requests it
//! makes *after* the cancel (deleting its remote job) run normally.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use wasmtime_wasi_http::{Error, WasiBody};

/// The error an aborted request or body read ends with.
pub fn aborted() -> Error {
    Error::InternalError(Some("the invocation was cancelled; c41 aborted this request".into()))
}

/// A response body that ends with [`aborted`] once `cancel` fires.
pub struct AbortOnCancel {
    inner: WasiBody,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl AbortOnCancel {
    /// Wrap `inner`, armed by `cancel`.
    pub fn new(inner: WasiBody, cancel: CancellationToken) -> Self {
        AbortOnCancel { inner, cancelled: Box::pin(cancel.cancelled_owned()) }
    }
}

impl Body for AbortOnCancel {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.cancelled.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(aborted())));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
