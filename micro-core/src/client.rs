//! [`Client`]: one multiplexed connection to a server, shared by cheap clones, and the call
//! builders generated clients return.

mod call;
mod duplex;
mod response;

pub(crate) use call::Request;
pub use call::{
    BidiStreamingCall, ClientStreamingCall, DuplexCall, ServerStreamingCall, UnaryCall, UnaryFuture,
};
pub use duplex::{Duplex, DuplexSender};
pub use response::ResponseStream;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, ToSocketAddrs, lookup_host};

use crate::Status;
use crate::config::Config;
use crate::connection::{Connection, ConnectionStats};

type Connect = Arc<dyn Fn(Config) -> BoxFuture<'static, Result<Connection, Status>> + Send + Sync>;

/// A connection to a micro server, shared by every clone.
///
/// Generated clients (`SayClient`) wrap one. Calls from all clones are multiplexed over the
/// same connection. If it is lost, or the server says it is going away, the next call opens a
/// new one (for clients made by [`connect`](Client::connect) or
/// [`connect_with`](ClientBuilder::connect_with)). After a failed attempt the next waits
/// (100 ms, doubling up to 5 s); calls in between fail at once with `Unavailable`.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    timeout: Option<Duration>,
    connect: Option<Connect>,
    current: Mutex<Option<Connection>>,
    /// Held while connecting, so one caller reconnects for all; remembers failures.
    reconnect: tokio::sync::Mutex<Backoff>,
}

/// After a failed connection attempt, the next one waits: 100 ms, doubling up to 5 s. Calls in
/// between fail at once with the last error instead of hammering a server that is down.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<tokio::time::Instant>,
    last_error: Option<Status>,
}

const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Client {
    /// Connects to a server over TCP.
    ///
    /// # Errors
    ///
    /// `Unavailable` if no address `addr` resolves to accepts the connection and handshake.
    pub async fn connect(addr: impl ToSocketAddrs) -> Result<Client, Status> {
        Client::builder().connect(addr).await
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: Config::default(),
            timeout: None,
        }
    }

    /// Counters of the current connection, if there is one.
    pub fn stats(&self) -> Option<ConnectionStats> {
        self.current().map(|conn| conn.stats())
    }

    fn current(&self) -> Option<Connection> {
        self.inner
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The default timeout for calls that set none.
    pub(crate) fn default_timeout(&self) -> Option<Duration> {
        self.inner.timeout
    }

    /// The current connection, if new calls can use it.
    pub(crate) fn usable_connection(&self) -> Option<Connection> {
        self.current().filter(|c| c.is_usable())
    }

    /// The connection new calls should use, reconnecting if the last one is gone.
    pub(crate) async fn connection(&self) -> Result<Connection, Status> {
        if let Some(conn) = self.usable_connection() {
            return Ok(conn);
        }
        let Some(connect) = &self.inner.connect else {
            let why = self.current().and_then(|c| c.closed_status());
            return Err(why.unwrap_or_else(|| Status::unavailable("the connection is closed")));
        };
        let mut backoff = self.inner.reconnect.lock().await;
        if let Some(conn) = self.usable_connection() {
            return Ok(conn);
        }
        let now = tokio::time::Instant::now();
        if let (Some(retry_at), Some(error)) = (backoff.retry_at, &backoff.last_error)
            && now < retry_at
        {
            return Err(Status::unavailable(format!(
                "{} (reconnecting in {:?})",
                error.message(),
                retry_at - now
            )));
        }
        match connect_within(connect, &self.inner.config).await {
            Ok(conn) => {
                *backoff = Backoff::default();
                *self.inner.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
                Ok(conn)
            }
            Err(error) => {
                let delay = BACKOFF_FIRST
                    .saturating_mul(1 << backoff.failures.min(16))
                    .min(BACKOFF_MAX);
                backoff.failures += 1;
                backoff.retry_at = Some(tokio::time::Instant::now() + delay);
                backoff.last_error = Some(error.clone());
                Err(error)
            }
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.current().and_then(|c| c.peer_addr))
            .field("reconnects", &self.inner.connect.is_some())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`].
#[derive(Debug)]
#[must_use = "a builder does nothing until a connect method is awaited"]
pub struct ClientBuilder {
    config: Config,
    timeout: Option<Duration>,
}

impl ClientBuilder {
    /// The timeout of calls that set none (default: none).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long connecting and the handshake may take, for the first connection and every
    /// reconnection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Pings a connection that has been silent for `interval`, and treats it as lost (failing
    /// its calls with `Unavailable`; the next call reconnects) when the ping goes unanswered for
    /// the [`keepalive_timeout`](Self::keepalive_timeout). `None` turns it off (default 60 s).
    pub fn keepalive(mut self, interval: Option<Duration>) -> Self {
        self.config.keepalive_interval = interval;
        self
    }

    /// How long a keepalive ping may go unanswered (default 20 s).
    pub fn keepalive_timeout(mut self, timeout: Duration) -> Self {
        self.config.keepalive_timeout = timeout;
        self
    }

    /// Largest frame payload accepted from the server, in bytes (default 2 MiB).
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.config.max_frame_size = bytes;
        self
    }

    /// Largest response message accepted, in bytes (default 4 MiB).
    pub fn max_message_size(mut self, bytes: u32) -> Self {
        self.config.max_message_size = bytes;
        self
    }

    /// Bytes the server may send on one stream before the caller reads them (default 2 MiB).
    pub fn stream_window(mut self, bytes: u32) -> Self {
        self.config.stream_window = bytes;
        self
    }

    /// Bytes the server may have unread on all streams together (default 16 MiB).
    pub fn connection_window(mut self, bytes: u32) -> Self {
        self.config.connection_window = bytes;
        self
    }

    /// Connects over TCP to the first address `addr` resolves to that answers.
    ///
    /// # Errors
    ///
    /// `Unavailable` if none does, `InvalidArgument` for unusable settings.
    pub async fn connect(self, addr: impl ToSocketAddrs) -> Result<Client, Status> {
        let addrs: Vec<SocketAddr> = lookup_host(addr)
            .await
            .map_err(|err| {
                Status::unavailable(format!("cannot resolve the server's address: {err}"))
            })?
            .collect();
        let addrs: Arc<[SocketAddr]> = addrs.into();
        self.connect_with_fn(Arc::new(move |config| {
            Box::pin(connect_tcp(addrs.clone(), config))
        }))
        .await
    }

    /// Connects through `connect`, called again whenever the connection must be replaced: the
    /// way to use another transport (the in-memory one, TLS, a Unix socket).
    ///
    /// # Errors
    ///
    /// `Unavailable` if the first connection fails, `InvalidArgument` for unusable settings.
    pub async fn connect_with<F, Fut, IO>(self, connect: F) -> Result<Client, Status>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = io::Result<IO>> + Send + 'static,
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let connect = Arc::new(connect);
        self.connect_with_fn(Arc::new(move |config| {
            let io = connect();
            Box::pin(async move {
                let io = io
                    .await
                    .map_err(|err| Status::unavailable(format!("cannot connect: {err}")))?;
                Connection::client(io, config, None).await
            })
        }))
        .await
    }

    /// Runs the protocol over one established connection. The client cannot reconnect: once
    /// that connection is gone, calls fail with `Unavailable`.
    ///
    /// # Errors
    ///
    /// `Unavailable` if the handshake fails, `InvalidArgument` for unusable settings.
    pub async fn connect_io<IO>(self, io: IO) -> Result<Client, Status>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.check()?;
        let handshake = Connection::client(io, self.config.clone(), None);
        let conn = tokio::time::timeout(self.config.handshake_timeout, handshake)
            .await
            .map_err(|_| {
                Status::unavailable("the server did not complete the handshake in time")
            })??;
        Ok(self.finish(None, Some(conn)))
    }

    fn check(&self) -> Result<(), Status> {
        self.config.validate().map_err(Status::invalid_argument)
    }

    async fn connect_with_fn(self, connect: Connect) -> Result<Client, Status> {
        self.check()?;
        let conn = connect_within(&connect, &self.config).await?;
        Ok(self.finish(Some(connect), Some(conn)))
    }

    fn finish(self, connect: Option<Connect>, conn: Option<Connection>) -> Client {
        Client {
            inner: Arc::new(Inner {
                config: self.config,
                timeout: self.timeout,
                connect,
                current: Mutex::new(conn),
                reconnect: tokio::sync::Mutex::new(Backoff::default()),
            }),
        }
    }
}

/// Connects, failing with `Unavailable` past the configured timeout.
async fn connect_within(connect: &Connect, config: &Config) -> Result<Connection, Status> {
    match tokio::time::timeout(config.handshake_timeout, connect(config.clone())).await {
        Ok(result) => result,
        Err(_) => Err(Status::unavailable(format!(
            "no connection and handshake within {:?}",
            config.handshake_timeout
        ))),
    }
}

async fn connect_tcp(addrs: Arc<[SocketAddr]>, config: Config) -> Result<Connection, Status> {
    let mut last_err = None;
    for addr in addrs.iter() {
        match TcpStream::connect(addr).await {
            Ok(socket) => {
                let _ = socket.set_nodelay(true);
                return Connection::client(socket, config, Some(*addr)).await;
            }
            Err(err) => last_err = Some(err),
        }
    }
    Err(Status::unavailable(match last_err {
        Some(err) => format!("cannot connect to {addrs:?}: {err}"),
        None => "the server's address resolved to nothing".to_string(),
    }))
}
