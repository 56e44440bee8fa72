//! What one listener lets its clients make it hold: request bodies in
//! flight, the time to send one, and the decodes running at once.
//!
//! Guarantees:
//! - the bytes of request bodies held by a listener (being received, waiting
//!   for a decode, being decoded) never exceed its budget
//!   (`limits.max_bytes_in_flight_mib`): a body that would pass it is cut off
//!   and answered UNAVAILABLE / 503 + Retry-After, counted as
//!   `reason="bytes_in_flight"`; a declared `Content-Length` is claimed whole
//!   before a byte is read;
//! - a body not received whole within `limits.body_timeout` of its headers is
//!   cut off (DEADLINE_EXCEEDED / 408), counted as `reason="body_timeout"`, and
//!   its bytes are given back;
//! - decompressing, walking and decoding a request run on tokio's blocking
//!   pool, at most `limits.max_concurrent_decodes` at once, never on the
//!   async workers (bodies of up to [`INLINE_BYTES`] sent uncompressed
//!   excepted: they decode in microseconds); a request waits for a slot
//!   holding only its body, which the budget bounds.

use crate::telemetry::RequestRefusals;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Uncompressed bodies up to this size are decoded on the async worker
/// that received them: handing them to another thread costs more than the decode.
pub const INLINE_BYTES: usize = 64 << 10;

/// A listener's bytes in flight, shared by all its connections.
#[derive(Debug)]
pub(crate) struct ByteBudget {
    limit: u64,
    used: AtomicU64,
}

impl ByteBudget {
    pub fn new(limit: u64) -> Arc<ByteBudget> {
        Arc::new(ByteBudget { limit, used: AtomicU64::new(0) })
    }

    fn try_take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| used.checked_add(n).filter(|t| *t <= self.limit))
            .is_ok()
    }

    fn give(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// The bytes one request holds of its listener's budget; given back when
/// the last handle (its body, its handler) is dropped.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<ByteBudget>,
    bytes: AtomicU64,
}

impl Held {
    pub fn new(budget: &Arc<ByteBudget>) -> Arc<Held> {
        Arc::new(Held { budget: Arc::clone(budget), bytes: AtomicU64::new(0) })
    }

    /// Claims `n` more bytes; `false` (claiming nothing) over the budget.
    pub fn take(&self, n: u64) -> bool {
        let ok = self.budget.try_take(n);
        if ok {
            self.bytes.fetch_add(n, Ordering::AcqRel);
        }
        ok
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(*self.bytes.get_mut());
    }
}

/// The admission settings and state of one listener.
#[derive(Clone)]
pub(crate) struct Admission {
    pub budget: Arc<ByteBudget>,
    decodes: Arc<Semaphore>,
    pub max_decoded: u64,
    pub body_timeout: Option<Duration>,
    pub refusals: RequestRefusals,
}

/// Why a body was cut off while it was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyCut {
    #[error("the agent holds too many request bytes in flight; retry later")]
    OverBudget,
    #[error("the request body was not received within {0:?}")]
    Timeout(Duration),
}

impl BodyCut {
    pub fn reason(self) -> &'static str {
        match self {
            BodyCut::OverBudget => "bytes_in_flight",
            BodyCut::Timeout(_) => "body_timeout",
        }
    }
}

impl Admission {
    pub fn new(
        limits: &super::config::ReceiverLimits,
        largest_request: u64,
        body_timeout: Option<Duration>,
        refusals: RequestRefusals,
    ) -> Admission {
        Admission {
            budget: ByteBudget::new(limits.bytes_in_flight(largest_request)),
            decodes: Arc::new(Semaphore::new(limits.concurrent_decodes())),
            max_decoded: limits.max_decoded_bytes(),
            body_timeout,
            refusals,
        }
    }

    /// Wraps a request body so that every byte of it is counted in `held`
    /// and it ends with [`BodyCut`] past the budget or the deadline.
    /// `prepaid` bytes were claimed already (a declared Content-Length).
    pub fn guard<B>(&self, body: B, held: Arc<Held>, prepaid: u64) -> GuardedBody<B> {
        GuardedBody {
            inner: body,
            held,
            prepaid,
            deadline: self.body_timeout.map(|t| (t, Box::pin(tokio::time::sleep(t)))),
            refusals: self.refusals.clone(),
            cut: None,
        }
    }

    /// Runs `work` (decompress, walk, decode) off the async workers, once a
    /// decode slot is free; small uncompressed bodies (`inline`) run here.
    /// `None` if the work panicked (it must not; the caller answers 500).
    pub async fn decode<T: Send + 'static>(
        &self,
        inline: bool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        if inline {
            return Some(work());
        }
        let permit = Arc::clone(&self.decodes).acquire_owned().await.ok()?;
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        })
        .await
        .ok()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request body counted against its listener's budget, with a deadline.
pub(crate) struct GuardedBody<B> {
    inner: B,
    held: Arc<Held>,
    prepaid: u64,
    deadline: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    refusals: RequestRefusals,
    cut: Option<BodyCut>,
}

impl<B> GuardedBody<B> {
    fn cut(&mut self, why: BodyCut) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.cut.is_none() {
            self.refusals.reason(why.reason()).inc();
        }
        self.cut = Some(why);
        self.deadline = None;
        let status = match why {
            BodyCut::OverBudget => super::grpc::unavailable_status(why.to_string()),
            BodyCut::Timeout(_) => tonic::Status::deadline_exceeded(why.to_string()),
        };
        Poll::Ready(Some(Err(Box::new(status))))
    }
}

impl<B> Body for GuardedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(why) = this.cut {
            return this.cut(why);
        }
        if let Some((limit, sleep)) = &mut this.deadline {
            if sleep.as_mut().poll(cx).is_ready() {
                let limit = *limit;
                return this.cut(BodyCut::Timeout(limit));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    let from_prepaid = n.min(this.prepaid);
                    this.prepaid -= from_prepaid;
                    if n > from_prepaid && !this.held.take(n - from_prepaid) {
                        return this.cut(BodyCut::OverBudget);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.deadline = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.cut.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The cut a body error stands for, if it is one.
pub(crate) fn body_cut(e: &(dyn std::error::Error + 'static)) -> Option<tonic::Code> {
    let mut source = Some(e);
    while let Some(err) = source {
        if let Some(status) = err.downcast_ref::<tonic::Status>() {
            return Some(status.code());
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn admission(budget: u64, timeout: Option<Duration>) -> Admission {
        let reg = crate::telemetry::Registry::new();
        let mut a = Admission::new(&Default::default(), 0, timeout, RequestRefusals::new(&reg, "otlp", "http"));
        a.budget = ByteBudget::new(budget);
        a
    }

    #[tokio::test]
    async fn bytes_in_flight_are_bounded_and_given_back() {
        let a = admission(100, None);
        let held = Held::new(&a.budget);
        let body = a.guard(http_body_util::Full::new(Bytes::from(vec![0u8; 60])), Arc::clone(&held), 0);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!((bytes.len(), a.budget.used()), (60, 60));
        let second = Held::new(&a.budget);
        let body = a.guard(http_body_util::Full::new(Bytes::from(vec![0u8; 60])), Arc::clone(&second), 0);
        let err = body.collect().await.unwrap_err();
        assert_eq!(body_cut(&*err), Some(tonic::Code::Unavailable));
        assert_eq!(a.budget.used(), 60, "the refused body claimed nothing");
        assert_eq!(a.refusals.reason("bytes_in_flight").get(), 1);
        drop(held);
        drop(second);
        assert_eq!(a.budget.used(), 0);
    }

    #[tokio::test]
    async fn prepaid_bytes_are_not_claimed_twice() {
        let a = admission(100, None);
        let held = Held::new(&a.budget);
        assert!(held.take(80));
        let body = a.guard(http_body_util::Full::new(Bytes::from(vec![0u8; 80])), Arc::clone(&held), 80);
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 80);
        assert_eq!(a.budget.used(), 80);
    }

    #[tokio::test]
    async fn a_stalled_body_is_cut_at_the_deadline() {
        let a = admission(1 << 20, Some(Duration::from_millis(100)));
        let held = Held::new(&a.budget);
        let body = a.guard(StalledBody(Some(Bytes::from_static(b"abc"))), Arc::clone(&held), 0);
        let err = body.collect().await.unwrap_err();
        assert_eq!(body_cut(&*err), Some(tonic::Code::DeadlineExceeded));
        assert_eq!(a.refusals.reason("body_timeout").get(), 1);
        drop(held);
        assert_eq!(a.budget.used(), 0);
    }

    /// A body that yields its bytes, then never ends.
    struct StalledBody(Option<Bytes>);

    impl Body for StalledBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.get_mut().0.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn decode_runs_off_the_async_worker_unless_inline() {
        let a = admission(1 << 20, None);
        let here = std::thread::current().id();
        assert_eq!(a.decode(true, move || std::thread::current().id()).await, Some(here));
        let there = a.decode(false, move || std::thread::current().id()).await.unwrap();
        assert_ne!(there, here);
    }
}
