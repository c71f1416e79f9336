//! Bodies on both sides of the proxy, without boxing or copying.
//!
//! [`ProxyBody`] is what goes upstream: nothing, a body already buffered,
//! or the client's body streamed through with its size limit and a stall
//! timeout (slow POST) enforced frame by frame. [`ResponseBody`] is what
//! goes to the client: the upstream's body passed through, or one the
//! gateway wrote itself.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

/// Why a client's body was cut off.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the route allows.
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    /// The client stopped sending.
    #[error("request body stalled for {0:?}")]
    Stalled(Duration),
    /// The client connection failed.
    #[error("client body: {0}")]
    Client(#[from] hyper::Error),
    /// Buffered bodies already fill the gateway's budget.
    #[error("request body buffer budget exhausted")]
    Overloaded,
}

/// A request body on its way upstream.
pub enum ProxyBody {
    /// No body.
    Empty,
    /// A buffered body (sent once).
    Full(Option<Bytes>),
    /// The client's body, streamed.
    Stream(Box<Streamed>),
}

/// The streamed variant's state.
pub struct Streamed {
    inner: Incoming,
    limit: u64,
    seen: u64,
    stall: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// Dropped when the body has been read to its end (or fails, or is
    /// dropped): the upstream's read timeout starts then.
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ProxyBody {
    /// Streams `inner`, cutting it off past `limit` bytes or after a pause
    /// longer than `stall`.
    pub fn stream(inner: Incoming, limit: u64, stall: Duration) -> Self {
        ProxyBody::Stream(Box::new(Streamed { inner, limit, seen: 0, stall, timer: None, done: None }))
    }

    /// For a streamed body, a receiver that resolves once it is fully
    /// sent; `None` for bodies already in memory (sent at once).
    pub fn sent(&mut self) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let ProxyBody::Stream(s) = self else { return None };
        let (tx, rx) = tokio::sync::oneshot::channel();
        s.done = Some(tx);
        Some(rx)
    }

    /// Whether the body can be sent again (for a retry on another address).
    pub fn replayable(&self) -> Option<ProxyBody> {
        match self {
            ProxyBody::Empty => Some(ProxyBody::Empty),
            ProxyBody::Full(b) => Some(ProxyBody::Full(b.clone())),
            ProxyBody::Stream(_) => None,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            ProxyBody::Empty => Poll::Ready(None),
            ProxyBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ProxyBody::Stream(s) => s.poll(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Full(b) => b.is_none(),
            ProxyBody::Stream(s) => s.inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ProxyBody::Stream(s) => s.inner.size_hint(),
        }
    }
}

impl Streamed {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                self.timer = None;
                if let Some(data) = frame.data_ref() {
                    self.seen += data.len() as u64;
                    if self.seen > self.limit {
                        return Poll::Ready(Some(Err(BodyError::TooLarge(self.limit))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BodyError::Client(e)))),
            Poll::Ready(None) => {
                self.done = None;
                Poll::Ready(None)
            }
            Poll::Pending => {
                let stall = self.stall;
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyError::Stalled(stall)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

/// Reads a whole body into memory, up to `limit` bytes, with the stall
/// timeout between frames. Used when the size is not announced up front,
/// so that an oversized body never starts to reach the upstream.
///
/// Every byte buffered counts against `budget`, shared by all requests, so
/// that many slow bodies at once cannot exhaust memory; the returned
/// [`Held`] gives the bytes back when dropped.
pub async fn collect(
    inner: Incoming,
    limit: u64,
    stall: Duration,
    budget: &Budget,
) -> Result<(Bytes, Held), BodyError> {
    let mut body = ProxyBody::stream(inner, limit, stall);
    let mut buf = bytes::BytesMut::new();
    let mut held = Held { budget: budget.clone(), bytes: 0 };
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        if let Ok(data) = frame?.into_data() {
            if !held.grow(data.len() as u64) {
                return Err(BodyError::Overloaded);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((buf.freeze(), held))
}

/// Reads an upstream response body until it ends or more than `limit`
/// bytes arrived: the bytes read, and the rest of the body when it did not
/// end. Each frame must arrive within `stall`.
pub async fn read_prefix(
    mut body: Incoming,
    limit: usize,
    stall: Duration,
) -> Result<(Bytes, Option<Incoming>), String> {
    let mut buf = bytes::BytesMut::new();
    loop {
        if buf.len() > limit {
            return Ok((buf.freeze(), Some(body)));
        }
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout(stall, next).await {
            Err(_) => return Err("the upstream's response body stalled".into()),
            Ok(None) => return Ok((buf.freeze(), None)),
            Ok(Some(Err(e))) => return Err(e.to_string()),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

/// Bytes of request bodies buffered at once, all requests together.
#[derive(Clone)]
pub struct Budget {
    used: std::sync::Arc<std::sync::atomic::AtomicU64>,
    limit: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Budget { used: Default::default(), limit }
    }
}

/// Bytes taken from a [`Budget`], returned on drop.
pub struct Held {
    budget: Budget,
    bytes: u64,
}

impl Held {
    fn grow(&mut self, n: u64) -> bool {
        use std::sync::atomic::Ordering;
        let before = self.budget.used.fetch_add(n, Ordering::AcqRel);
        if before + n > self.budget.limit {
            self.budget.used.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        self.bytes += n;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A response body on its way to the client.
pub enum ResponseBody {
    /// The upstream's body, passed through.
    Upstream(Incoming),
    /// A body the gateway wrote (errors, redirects, admin pages).
    Full(Option<Bytes>),
    /// The part of the upstream's body the WAF read, then the rest.
    Prefixed(Option<Bytes>, Incoming),
}

impl ResponseBody {
    /// A body with `text`.
    pub fn text(text: impl Into<Bytes>) -> Self {
        ResponseBody::Full(Some(text.into()))
    }

    /// No body.
    pub fn empty() -> Self {
        ResponseBody::Full(None)
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream(b) => Pin::new(b).poll_frame(cx),
            ResponseBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Prefixed(head, rest) => match head.take() {
                Some(b) => Poll::Ready(Some(Ok(Frame::data(b)))),
                None => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(b) => b.is_end_stream(),
            ResponseBody::Full(b) => b.is_none(),
            ResponseBody::Prefixed(head, rest) => head.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(b) => b.size_hint(),
            ResponseBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseBody::Prefixed(head, rest) => {
                let n = head.as_ref().map_or(0, |b| b.len() as u64);
                let r = rest.size_hint();
                let mut h = SizeHint::new();
                h.set_lower(r.lower() + n);
                if let Some(u) = r.upper() {
                    h.set_upper(u + n);
                }
                h
            }
        }
    }
}
