//! [`Server`]: accepts connections and runs calls on the services added to it.

mod call;
pub(crate) mod dispatch;
mod handler;
mod request_stream;
mod router;
mod stats;

pub use call::ServerCall;
pub use handler::{
    Replies, ok_items, serve_bidirectional, serve_client_streaming, serve_server_streaming,
    serve_unary, unknown_method,
};
pub use request_stream::RequestStream;
pub(crate) use router::Router;
pub use stats::{ServerSnapshot, ServerStats};

use std::future::{Future, pending};
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connection::writer::{self, Writing};
use crate::connection::{Role, Shared, keepalive, reader};
use crate::task::AbortOnDrop;
use crate::{Service, Status, handshake};

/// A micro server: the services it offers and the limits it enforces.
///
/// ```no_run
/// # use micro_core::Server;
/// # async fn run(service: impl micro_core::Service) -> std::io::Result<()> {
/// Server::builder()
///     .add_service(service)
///     .serve("127.0.0.1:8080")
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Starts configuring a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            router: Router::default(),
            config: Config::default(),
            grace_period: Duration::from_secs(30),
            stats: ServerStats::default(),
        }
    }
}

/// Configures and runs a [`Server`].
#[derive(Debug)]
#[must_use = "a server does nothing until one of the serve methods is awaited"]
pub struct ServerBuilder {
    router: Router,
    config: Config,
    grace_period: Duration,
    stats: ServerStats,
}

impl ServerBuilder {
    /// A handle on the counters of the server this builder will run: connections, open
    /// streams, running handlers, buffered bytes.
    pub fn stats(&self) -> ServerStats {
        self.stats.clone()
    }

    /// Offers `service` (a generated `<Name>Server`).
    ///
    /// # Panics
    ///
    /// If a service with the same name was added already.
    pub fn add_service<S: Service>(mut self, service: S) -> Self {
        self.router.add(&(Arc::new(service) as Arc<dyn Service>));
        self
    }

    /// Largest frame payload accepted, in bytes (default 2 MiB). Larger messages still pass,
    /// split across frames.
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// Largest message accepted, in bytes (default 4 MiB). A larger one fails its call with
    /// `ResourceExhausted`; the connection lives on.
    pub fn max_message_size(mut self, bytes: u32) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Largest metadata block a call may carry, in bytes (default 16 KiB); larger fails the call
    /// with `ResourceExhausted`.
    pub fn max_metadata_size(mut self, bytes: u32) -> Self {
        self.config.max_metadata_size = bytes;
        self
    }

    /// Calls run at once on one connection (default 1024). Calls over the limit are refused
    /// with `ResourceExhausted` and may be retried.
    pub fn max_concurrent_streams(mut self, calls: u32) -> Self {
        self.config.max_concurrent_streams = calls;
        self
    }

    /// How many running calls a client may cancel beyond those it lets finish (default twice
    /// [`max_concurrent_streams`](Self::max_concurrent_streams)). Every call the server
    /// finishes gives one back, and the budget refills at `calls` per second. A client that
    /// exhausts it, such as one that opens and cancels calls in a loop (the HTTP/2 "rapid
    /// reset" attack), is sent GOAWAY with `ResourceExhausted` and disconnected.
    pub fn cancel_budget(mut self, calls: u32) -> Self {
        self.config.cancel_budget = Some(calls);
        self
    }

    /// Bytes a client may send on one stream before the handler reads them (default 2 MiB).
    pub fn stream_window(mut self, bytes: u32) -> Self {
        self.config.stream_window = bytes;
        self
    }

    /// Bytes a client may have unread on all streams of a connection together (default 16 MiB).
    pub fn connection_window(mut self, bytes: u32) -> Self {
        self.config.connection_window = bytes;
        self
    }

    /// How long a new connection may take to send its handshake (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Pings a connection that has been silent for `interval`, and closes it (cancelling its
    /// calls) when the ping goes unanswered for the [`keepalive_timeout`](Self::keepalive_timeout):
    /// how a client that vanished without closing is noticed. `None` turns it off
    /// (default 60 s).
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.config.keepalive_interval = interval;
        self
    }

    /// How long a keepalive ping may go unanswered (default 20 s).
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.config.keepalive_timeout = timeout;
        self
    }

    /// How long a shutdown lets calls in flight finish before cancelling them (default 30 s).
    pub fn grace_period(mut self, grace: Duration) -> Self {
        self.grace_period = grace;
        self
    }

    /// Binds `addr` and serves for as long as the future is polled. Failed accepts (such as
    /// running out of file descriptors) are logged and retried, so it only returns early with
    /// an error.
    ///
    /// # Errors
    ///
    /// If `addr` cannot be bound, or the settings are unusable.
    pub async fn serve(self, addr: impl ToSocketAddrs) -> io::Result<()> {
        self.serve_with_shutdown(addr, pending()).await
    }

    /// Binds `addr` and serves until `signal` completes, then shuts down gracefully: no new
    /// connections, GOAWAY to every client, calls in flight get the grace period to finish.
    ///
    /// # Errors
    ///
    /// If `addr` cannot be bound, or the settings are unusable.
    pub async fn serve_with_shutdown(
        self,
        addr: impl ToSocketAddrs,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_listener_with_shutdown(listener, signal).await
    }

    /// Serves on a listener bound already (to learn the port of `127.0.0.1:0`, say).
    ///
    /// # Errors
    ///
    /// If the settings are unusable.
    pub async fn serve_listener(self, listener: TcpListener) -> io::Result<()> {
        self.serve_listener_with_shutdown(listener, pending()).await
    }

    /// [`serve_listener`](Self::serve_listener) with a graceful shutdown on `signal`.
    ///
    /// # Errors
    ///
    /// If the settings are unusable.
    pub async fn serve_listener_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(socket, addr)| {
                let _ = socket.set_nodelay(true);
                (socket, Some(addr))
            });
            Some((accepted, listener))
        });
        self.serve_connections(incoming, signal).await
    }

    /// Serves connections from any source — such as the in-memory transport's
    /// [`MemoryListener`](crate::transport::MemoryListener) — until `signal` completes.
    ///
    /// # Errors
    ///
    /// If the settings are unusable.
    pub async fn serve_incoming<S, IO>(
        self,
        incoming: S,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: Stream<Item = io::Result<IO>>,
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.serve_connections(incoming.map(|io| io.map(|io| (io, None))), signal)
            .await
    }

    /// Serves one already-established connection until it closes.
    ///
    /// # Errors
    ///
    /// If the settings are unusable.
    pub async fn serve_connection<IO>(self, io: IO) -> io::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.check()?;
        let never = CancellationToken::new();
        serve_connection(
            io,
            None,
            Arc::new(self.router),
            self.config,
            never.clone(),
            never,
            self.stats,
        )
        .await;
        Ok(())
    }

    fn check(&self) -> io::Result<()> {
        self.config
            .validate()
            .map_err(|msg| io::Error::new(io::ErrorKind::InvalidInput, msg))
    }

    async fn serve_connections<S, IO>(
        self,
        incoming: S,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()>
    where
        S: Stream<Item = io::Result<(IO, Option<SocketAddr>)>>,
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.check()?;
        let router = Arc::new(self.router);
        let drain = CancellationToken::new();
        let hard_stop = CancellationToken::new();
        let mut connections = JoinSet::new();
        {
            let mut incoming = pin!(incoming);
            let mut signal = pin!(signal);
            loop {
                tokio::select! {
                    _ = &mut signal => break,
                    next = incoming.next() => match next {
                        Some(Ok((io, addr))) => {
                            connections.spawn(serve_connection(
                                io, addr, router.clone(), self.config.clone(), drain.clone(), hard_stop.clone(),
                                self.stats.clone(),
                            ));
                        }
                        Some(Err(err)) => {
                            // Usually out of file descriptors: back off instead of spinning.
                            tracing::warn!(%err, "accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        None => break,
                    },
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        } // the listener is dropped here: no new connections
        drain.cancel();
        let drained = tokio::time::timeout(self.grace_period, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(grace = ?self.grace_period, "grace period over; cancelling the calls still running");
            hard_stop.cancel();
            while connections.join_next().await.is_some() {}
        }
        Ok(())
    }
}

/// Serves one connection: handshake, then frames until the peer leaves, or until a drain
/// finishes its calls.
async fn serve_connection<IO>(
    mut io: IO,
    peer_addr: Option<SocketAddr>,
    router: Arc<Router>,
    config: Config,
    drain: CancellationToken,
    hard_stop: CancellationToken,
    stats: ServerStats,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let handshake = tokio::time::timeout(
        config.handshake_timeout,
        handshake::server(&mut io, &config),
    );
    let peer = tokio::select! {
        result = handshake => match result {
            Ok(Ok(peer)) => peer,
            Ok(Err(err)) => {
                tracing::info!(peer = ?peer_addr, %err, "handshake failed");
                return;
            }
            Err(_) => {
                tracing::info!(peer = ?peer_addr, "handshake timed out");
                return;
            }
        },
        // A shutdown does not wait for a connection that has not even said hello.
        _ = drain.cancelled() => return,
    };
    let (read, write) = crate::transport::split(io);
    let writing = Writing::new(write);
    let conn = Shared::new(Role::Server(router), config, peer, peer_addr, None);
    stats.register(&conn);
    // However this task ends, even dropped mid-way, the connection's calls and writer end too.
    let _close = CloseOnDrop(conn.clone());
    let mut writer = tokio::spawn(writer::run(conn.clone(), writing.clone()));
    if let Some(interval) = conn.config.keepalive_interval {
        tokio::spawn(keepalive(
            conn.clone(),
            interval,
            conn.config.keepalive_timeout,
        ));
    }
    // The reader is a task of its own, not a branch of the loop below: it is woken for every
    // read, and each wake of this loop would poll the shutdown tokens too (a lock each).
    let mut reader = AbortOnDrop::spawn(reader::run(conn.clone(), read, writing));
    let mut draining = false;
    loop {
        let handler_done = conn.handler_done.notified();
        let mut handler_done = pin!(handler_done);
        handler_done.as_mut().enable();
        if draining && conn.is_idle() {
            // Every call has ended: say the last frames, then close.
            conn.push_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), &mut writer).await;
            // The client may still be reading those frames, and granting credit for the
            // replies among them. Closing now would fail its writes (or reset TCP) and make it
            // drop what it has not read yet: read on, ignoring it all, until it closes.
            let _ = tokio::time::timeout(DRAIN_LINGER, &mut reader).await;
            conn.close(&Status::unavailable("the server shut down"));
            break;
        }
        tokio::select! {
            _ = &mut reader => break,
            _ = drain.cancelled(), if !draining => {
                draining = true;
                conn.go_away("the server is shutting down");
            }
            _ = handler_done, if draining => {}
            _ = hard_stop.cancelled() => {
                conn.close(&Status::unavailable("the server shut down before the call finished"));
                break;
            }
        }
    }
}

/// How long a drained connection keeps reading, after its last frame, for the client to close.
const DRAIN_LINGER: Duration = Duration::from_secs(1);

/// Closes a connection when dropped.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(&Status::unavailable(
            "the server stopped serving this connection",
        ));
    }
}
