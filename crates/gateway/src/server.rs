//! Listeners and connections: accept, connection limits, IP policy, PROXY
//! protocol, TLS handshake, then HTTP/1.1 or HTTP/2 through hyper with the
//! configured limits; graceful shutdown and idle connection reaping.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rampart_core::{Event, Outcome};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio_rustls::TlsAcceptor;

use crate::netset::canonical;
use crate::proxy::{ConnInfo, Handler};
use crate::proxy_protocol;
use crate::reject::Reason;
use crate::Shared;

/// The answer to a plain-HTTP connection over a connection limit.
const OVERLOADED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 41\r\nretry-after: 1\r\nconnection: close\r\n\r\nrefused by rampart: too many connections\n";

/// Counts live connection tasks so shutdown can wait for them.
#[derive(Default)]
pub struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

struct Live(Arc<Tracker>);

impl Drop for Live {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tracker {
    fn enter(self: &Arc<Self>) -> Live {
        self.live.fetch_add(1, Ordering::AcqRel);
        Live(self.clone())
    }

    /// Waits until no connection is left, or `limit` passes.
    pub async fn drained(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.idle.notified();
            if self.live.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.live.load(Ordering::Acquire) == 0;
            }
        }
    }
}

/// An accepted connection on its way to a worker.
pub struct Accepted {
    stream: std::net::TcpStream,
    addr: SocketAddr,
    tls: Option<Arc<TlsAcceptor>>,
    live: Live,
}

/// One listener's accept loop: hands connections to the workers in turn,
/// so each worker serves the same number of connections (a shared listening
/// socket would let whichever thread wakes first take them, unevenly).
pub async fn accept_loop(
    listener: TcpListener,
    tls: Option<Arc<TlsAcceptor>>,
    workers: Vec<tokio::sync::mpsc::UnboundedSender<Accepted>>,
    mut shutdown: watch::Receiver<bool>,
    tracker: Arc<Tracker>,
) {
    let mut next = 0usize;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(stream) = stream.into_std() else { continue };
        let conn = Accepted { stream, addr, tls: tls.clone(), live: tracker.enter() };
        if workers.is_empty() {
            return;
        }
        let _ = workers[next % workers.len()].send(conn);
        next = next.wrapping_add(1);
    }
}

/// A worker's side: serves the connections handed to it until `stop`.
pub async fn serve_handed(
    shared: Arc<Shared>,
    mut incoming: tokio::sync::mpsc::UnboundedReceiver<Accepted>,
    shutdown: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let a = tokio::select! {
            a = incoming.recv() => match a { Some(a) => a, None => break },
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(stream) = TcpStream::from_std(a.stream) else { continue };
        let (shared, shutdown, live) = (shared.clone(), shutdown.clone(), a.live);
        tokio::spawn(async move {
            connection(shared, stream, a.addr, a.tls, shutdown).await;
            drop(live);
        });
    }
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    addr: SocketAddr,
    tls: Option<Arc<TlsAcceptor>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let rt = shared.runtime.load_full();
    let peer = canonical(addr.ip());
    let limits = &rt.limits;
    // A trusted load balancer carries many clients on its connections: the
    // per-address cap would throttle all of them together.
    let per_ip = if rt.ip_policy.is_trusted(peer) { usize::MAX } else { limits.max_connections_per_ip };
    let _slot = match shared.conns.acquire(peer, rt.config.ip_policy.ipv6_prefix, limits.max_connections, per_ip) {
        Ok(g) => g,
        Err(reason) => {
            if tls.is_none() {
                // Plain HTTP: a canned 503 costs one write. (Over TLS it
                // would cost a handshake, which is what we are refusing.)
                let _ = tokio::time::timeout(Duration::from_millis(100), stream.write_all(OVERLOADED)).await;
            }
            return refuse_connection(&shared, peer, reason);
        }
    };
    shared.metrics.connection_opened();
    let _closed = OnDrop(|| shared.metrics.connection_closed());
    let _ = stream.set_nodelay(true);

    let mut client = peer;
    if rt.config.listen.proxy_protocol && rt.ip_policy.is_trusted(peer) {
        match proxy_protocol::read_header(&mut stream, limits.header_read_timeout.get()).await {
            Ok(proxy_protocol::Header::Proxied(a)) => client = canonical(a.ip()),
            Ok(proxy_protocol::Header::Local) => {}
            Err(e) => {
                tracing::debug!(peer = %peer, error = %e, "bad PROXY header");
                return refuse_connection(&shared, peer, Reason::Malformed);
            }
        }
    }
    if let Some(reason) = rt.ip_policy.check(client) {
        return refuse_connection(&shared, client, reason);
    }

    let activity = Arc::new(Moves::default());
    let io = Activity { inner: stream, moves: activity.clone() };
    let header_timeout = limits.header_read_timeout.get();
    let idle_timeout = limits.idle_timeout.get();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers.max(1))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_pending_accept_reset_streams(64)
        .max_local_error_reset_streams(256)
        // No keep-alive PINGs: they would count as traffic and keep idle
        // connections from being reaped; the idle watchdog closes them.
        .keep_alive_interval(None);
    drop(rt);

    let is_tls = tls.is_some();
    let handler = Arc::new(Handler { shared: shared.clone(), conn: ConnInfo { peer, client, tls: is_tls } });
    let service = service_fn(move |req| handler.clone().serve(req));

    let result = match tls {
        Some(acceptor) => {
            let stream = match tokio::time::timeout(header_timeout, acceptor.accept(io)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    shared.metrics.tls_failure();
                    tracing::debug!(client = %client, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    shared.metrics.tls_failure();
                    return refuse_connection(&shared, client, Reason::HeaderTimeout);
                }
            };
            drive(builder.serve_connection(TokioIo::new(stream), service), &mut shutdown, &activity, idle_timeout).await
        }
        None => {
            drive(builder.serve_connection(TokioIo::new(io), service), &mut shutdown, &activity, idle_timeout).await
        }
    };
    if let Err(e) = result {
        classify_and_report(&shared, client, &*e, activity.unanswered.load(Ordering::Relaxed));
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs a connection to completion, shutting it down gracefully on the
/// shutdown signal or once no byte moved either way for `idle` (checked
/// every `idle / 2`, so a quiet connection goes after 1 to 1.5 times
/// `idle`), and dropping it if it still hangs on for another `idle`.
async fn drive<C>(
    conn: C,
    shutdown: &mut watch::Receiver<bool>,
    activity: &Moves,
    idle: Duration,
) -> Result<(), BoxError>
where
    C: std::future::Future<Output = Result<(), BoxError>> + GracefulConn,
{
    tokio::pin!(conn);
    let mut closing = false;
    let period = (idle / 2).max(Duration::from_millis(50));
    let mut check = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let (mut seen, mut quiet) = (0u64, 0u32);
    loop {
        tokio::select! {
            biased;
            r = conn.as_mut() => return r,
            _ = shutdown.changed(), if !closing => {
                closing = true;
                conn.as_mut().start_graceful();
            }
            _ = check.tick() => {
                let now = activity.count.load(Ordering::Relaxed);
                if now == seen {
                    quiet += 1;
                } else {
                    (seen, quiet) = (now, 0);
                }
                if quiet == 2 && !closing {
                    closing = true;
                    conn.as_mut().start_graceful();
                } else if quiet >= 4 {
                    return Ok(());
                }
            }
        }
    }
}

/// Lets [`drive`] start a graceful shutdown on hyper-util's connection.
pub trait GracefulConn {
    /// Starts a graceful shutdown.
    fn start_graceful(self: Pin<&mut Self>);
}

impl<I, S, E> GracefulConn for auto::Connection<'_, I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<BoxError>,
    S::ResBody: http_body::Body + Send + 'static,
    <S::ResBody as http_body::Body>::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn start_graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// `unanswered`: the client had sent bytes not yet answered. A header
/// timeout without them is a keep-alive (or preconnected) connection that
/// went quiet, which browsers do all the time: closed, not held against
/// anyone.
fn classify_and_report(shared: &Shared, client: IpAddr, e: &(dyn std::error::Error + 'static), unanswered: bool) {
    let Some(h) = find::<hyper::Error>(e) else {
        return;
    };
    let reason = if h.is_parse_too_large() {
        Reason::HeadersTooLarge
    } else if h.is_parse() || h.is_parse_status() {
        Reason::Malformed
    } else if h.is_timeout() && unanswered {
        Reason::HeaderTimeout
    } else {
        return; // Client went away, reset, and the like: not a refusal.
    };
    refuse_connection(shared, client, reason);
}

fn find<'a, T: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a T> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<T>() {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// A connection refused (or cut) before any request could be answered:
/// metric, event, ban points.
fn refuse_connection(shared: &Shared, client: IpAddr, reason: Reason) {
    shared.metrics.rejection(reason);
    let rt = shared.runtime.load();
    shared.event_gate.emit(
        &shared.audit,
        rt.ip_policy.client_key(client),
        Event::new("network", "connection-rejected")
            .outcome(Outcome::Failure)
            .reason(reason.as_str())
            .source_ip(client)
            .rule(format!("gateway.{}", reason.as_str()), "-"),
    );
    let points = match reason.offense() {
        crate::reject::Offense::Limit => rt.bans.config.limit_score,
        _ => 0,
    };
    if points > 0 && rt.bans.config.enabled {
        let bans = shared.bans.clone();
        let policy = rt.bans.clone();
        tokio::spawn(async move { bans.offend(client, points, reason.as_str(), &policy).await });
    }
}

struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// What a connection's stream has done, shared with its watchdog.
#[derive(Default)]
struct Moves {
    /// Reads and writes that moved bytes (idle reaping).
    count: AtomicU64,
    /// Bytes were read since the last write: a request is (partly) in.
    unanswered: std::sync::atomic::AtomicBool,
}

/// A stream that counts the reads and writes that moved bytes, for idle
/// reaping, and notes whether the client sent something not yet answered
/// (a header timeout on a quiet keep-alive connection is not an offense).
struct Activity<T> {
    inner: T,
    moves: Arc<Moves>,
}

impl<T> Activity<T> {
    /// One writer (the connection's own task): a load and a store suffice;
    /// no clock is read.
    fn touch(&self, read: bool) {
        let c = &self.moves.count;
        c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        if self.moves.unanswered.load(Ordering::Relaxed) != read {
            self.moves.unanswered.store(read, Ordering::Relaxed);
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Activity<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch(true);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Activity<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch(false);
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch(false);
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Binds a listener with a deep backlog and SO_REUSEADDR. Each worker
/// thread registers a clone of it with its own event loop.
pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        let _ = socket.set_only_v6(false);
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
