//! A service built to be probed: every method exists to make one behaviour observable, and the
//! implementation counts what happens to its handlers.

// Test support: each test file uses a different part of it, and `pub` is the module's API.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use micro::{Context, Server, ServerBuilder, Status, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};

/// A blob of bytes encoded as MessagePack `bin`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blob {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

#[micro::service]
pub trait Lab {
    /// Returns its argument.
    async fn echo(&self, msg: String) -> Result<String, Status>;
    /// Several plain arguments.
    async fn add(&self, a: i64, b: i64) -> Result<i64, Status>;
    /// Reads a metadata value the client sent.
    async fn header(&self, ctx: &Context, key: String) -> Result<Option<String>, Status>;
    /// Streams `0..n`.
    async fn range(
        &self,
        n: u64,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status>;
    /// Streams `0..n`, then fails with `Aborted`.
    async fn range_then_fail(
        &self,
        n: u64,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status>;
    /// Counts and sums the client's items.
    async fn total(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<(u64, u64), Status>;
    /// Echoes every item back, ending when the client ends.
    async fn echo_stream(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status>;
    /// Reads one item, drops the request stream, sends `n` replies and ends.
    async fn take_one(
        &self,
        n: u64,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status>;
    /// Panics.
    async fn explode(&self) -> Result<(), Status>;
    /// Waits until cancelled; counts its start and its drop.
    async fn hold(&self) -> Result<(), Status>;
    /// Streams blobs of `size` bytes forever, counting each one produced.
    async fn flood(
        &self,
        size: u32,
    ) -> Result<impl Stream<Item = Result<Blob, Status>> + Send + 'static, Status>;
    /// Counts items as it reads them, waiting for `release` before it starts reading.
    async fn sink(
        &self,
        items: impl Stream<Item = Blob> + Send + Unpin + 'static,
    ) -> Result<u64, Status>;
    /// Returns a blob of `size` bytes.
    async fn blob(&self, size: u32) -> Result<Blob, Status>;
    /// Echoes a blob.
    async fn echo_blob(&self, blob: Blob) -> Result<Blob, Status>;
    /// Waits `ms` milliseconds, then answers.
    async fn nap(&self, ms: u64) -> Result<u64, Status>;
    /// Waits for ever holding a value whose destructor panics.
    async fn bomb(&self) -> Result<(), Status>;
    /// Reads the client's items, counting each and a clean end of the stream; then replies
    /// with the count.
    async fn until_end(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send, Status>;
}

/// What happened inside the server.
#[derive(Debug, Default)]
pub struct Probe {
    pub napping: AtomicUsize,
    pub received: AtomicU64,
    pub clean_ends: AtomicUsize,
    pub started: AtomicUsize,
    pub dropped: AtomicUsize,
    pub produced: AtomicU64,
    pub consumed: AtomicU64,
    pub started_notify: Notify,
    pub release: Notify,
}

impl Probe {
    /// Waits until `n` `hold` handlers have started.
    pub async fn wait_started(&self, n: usize) {
        loop {
            let notified = self.started_notify.notified();
            if self.started.load(Ordering::SeqCst) >= n {
                return;
            }
            notified.await;
        }
    }

    /// Waits until `n` `hold` handlers were dropped.
    pub async fn wait_dropped(&self, n: usize) {
        while self.dropped.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Waits until `counter` stops moving, and returns its value.
    pub async fn settle(counter: &AtomicU64) -> u64 {
        let mut last = counter.load(Ordering::SeqCst);
        let mut still = 0;
        while still < 20 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let now = counter.load(Ordering::SeqCst);
            if now == last {
                still += 1;
            } else {
                still = 0;
                last = now;
            }
        }
        last
    }
}

struct DropGuard(Arc<Probe>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.dropped.fetch_add(1, Ordering::SeqCst);
    }
}

#[derive(Clone, Debug, Default)]
pub struct LabImpl {
    pub probe: Arc<Probe>,
}

struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("a destructor in the handler panicked on purpose");
    }
}

impl Lab for LabImpl {
    async fn echo(&self, msg: String) -> Result<String, Status> {
        Ok(msg)
    }

    async fn add(&self, a: i64, b: i64) -> Result<i64, Status> {
        a.checked_add(b)
            .ok_or_else(|| Status::out_of_range("overflow"))
    }

    async fn header(&self, ctx: &Context, key: String) -> Result<Option<String>, Status> {
        Ok(ctx.metadata().get(&key).map(str::to_string))
    }

    async fn range(
        &self,
        n: u64,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        Ok(futures::stream::iter((0..n).map(Ok)))
    }

    async fn range_then_fail(
        &self,
        n: u64,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        Ok(futures::stream::iter(
            (0..n)
                .map(Ok)
                .chain([Err(Status::aborted("failed after the items"))]),
        ))
    }

    async fn total(
        &self,
        mut items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<(u64, u64), Status> {
        let (mut count, mut sum) = (0, 0);
        while let Some(item) = items.next().await {
            count += 1;
            sum += item;
        }
        Ok((count, sum))
    }

    async fn echo_stream(
        &self,
        items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        Ok(items.map(Ok))
    }

    async fn take_one(
        &self,
        n: u64,
        mut items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send + 'static, Status> {
        let first = items
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("no item"))?;
        drop(items);
        Ok(futures::stream::iter((first..first + n).map(Ok)))
    }

    async fn explode(&self) -> Result<(), Status> {
        panic!("the handler exploded on purpose");
    }

    async fn hold(&self) -> Result<(), Status> {
        let _guard = DropGuard(self.probe.clone());
        self.probe.started.fetch_add(1, Ordering::SeqCst);
        self.probe.started_notify.notify_waiters();
        std::future::pending::<()>().await;
        Ok(())
    }

    async fn flood(
        &self,
        size: u32,
    ) -> Result<impl Stream<Item = Result<Blob, Status>> + Send + 'static, Status> {
        let probe = self.probe.clone();
        let guard = DropGuard(self.probe.clone());
        Ok(futures::stream::repeat(()).map(move |()| {
            let _alive = &guard;
            probe.produced.fetch_add(1, Ordering::SeqCst);
            Ok(Blob {
                data: vec![7; size as usize],
            })
        }))
    }

    async fn sink(
        &self,
        mut items: impl Stream<Item = Blob> + Send + Unpin + 'static,
    ) -> Result<u64, Status> {
        self.probe.release.notified().await;
        let mut n = 0;
        while items.next().await.is_some() {
            self.probe.consumed.fetch_add(1, Ordering::SeqCst);
            n += 1;
        }
        Ok(n)
    }

    async fn blob(&self, size: u32) -> Result<Blob, Status> {
        Ok(Blob {
            data: vec![1; size as usize],
        })
    }

    async fn echo_blob(&self, blob: Blob) -> Result<Blob, Status> {
        Ok(blob)
    }

    async fn bomb(&self) -> Result<(), Status> {
        let _bomb = PanicOnDrop;
        std::future::pending::<()>().await;
        Ok(())
    }

    async fn until_end(
        &self,
        mut items: impl Stream<Item = u64> + Send + Unpin + 'static,
    ) -> Result<impl Stream<Item = Result<u64, Status>> + Send, Status> {
        let probe = self.probe.clone();
        Ok(async_stream::stream! {
            let mut n = 0;
            while items.next().await.is_some() {
                probe.received.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
            probe.clean_ends.fetch_add(1, Ordering::SeqCst);
            yield Ok(n);
        })
    }

    async fn nap(&self, ms: u64) -> Result<u64, Status> {
        let _guard = DropGuard(self.probe.clone());
        self.probe.napping.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }
}

/// Waits until `done` holds, checking every 5 ms for at most 10 s (a bound, never a measure:
/// for counters that settle once the last tasks have run); whether it came to hold.
pub async fn eventually(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..2_000 {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    done()
}

/// Which transport a test runs on.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Tcp,
    Memory,
}

/// A running `Lab` server and a client connected to it.
pub struct Harness {
    pub client: LabClient,
    pub probe: Arc<Probe>,
    pub stats: micro::ServerStats,
    pub addr: Option<std::net::SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Harness {
    pub async fn start(transport: Transport) -> Harness {
        Harness::with(transport, |b| b, micro::Client::builder()).await
    }

    /// Starts a server configured by `configure` and a client built from `client`.
    pub async fn with(
        transport: Transport,
        configure: impl FnOnce(ServerBuilder) -> ServerBuilder,
        client: micro::ClientBuilder,
    ) -> Harness {
        let lab = LabImpl::default();
        let probe = lab.probe.clone();
        let builder = configure(Server::builder().add_service(LabServer::new(lab)));
        let stats = builder.stats();
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal = async {
            let _ = signal.await;
        };
        let (server, client, addr) = match transport {
            Transport::Tcp => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let addr = listener.local_addr().unwrap();
                let server = tokio::spawn(builder.serve_listener_with_shutdown(listener, signal));
                (server, client.connect(addr).await.unwrap(), Some(addr))
            }
            Transport::Memory => {
                let (listener, connector) = micro::transport::memory();
                let server = tokio::spawn(builder.serve_incoming(listener, signal));
                let client = client
                    .connect_with(move || std::future::ready(connector.connect()))
                    .await
                    .unwrap();
                (server, client, None)
            }
        };
        Harness {
            client: LabClient::new(client),
            probe,
            stats,
            addr,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Starts a graceful shutdown; returns the server task to await.
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        self.shutdown.take().unwrap().send(()).ok();
        self.server.take().unwrap()
    }
}

/// Runs each named `async fn(Transport)` once over TCP and once over the in-memory transport
/// on a multi-threaded runtime, and over TCP on a single-threaded one, where the server starts
/// each call inline before it becomes a task (`server::dispatch::open`).
#[macro_export]
macro_rules! on_both_transports {
    ($($name:ident),* $(,)?) => {
        mod single_threaded {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::common::Transport::Tcp).await;
                }
            )*
        }
        mod tcp {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Transport::Tcp).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Transport::Memory).await;
                }
            )*
        }
    };
}
