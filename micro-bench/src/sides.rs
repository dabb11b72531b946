//! The two sides of every measurement: a single-threaded tokio runtime each, on OS threads of
//! their own, standing in for two single-core processes.
//!
//! The client side is the main thread ([`client_runtime`]); the server side is a
//! [`ServerThread`] that every workload's servers are spawned onto.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use futures::channel::oneshot;
use tokio::net::TcpListener;
use tokio::runtime::{Builder, Handle, Runtime};
use tokio::task::AbortHandle;

use crate::Result;

/// A single-worker runtime: everything it runs shares one thread.
pub(crate) fn client_runtime() -> io::Result<Runtime> {
    Builder::new_current_thread().enable_all().build()
}

/// The server side: a single-worker runtime driven by a thread of its own until dropped.
#[derive(Debug)]
pub(crate) struct ServerThread {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Starts the thread and its runtime.
    pub(crate) fn start() -> io::Result<ServerThread> {
        let runtime = client_runtime()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("server".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        Ok(ServerThread {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Binds a fresh port on 127.0.0.1 on the server thread and runs `serve` on it there. The
    /// server stops when the returned guard is dropped.
    pub(crate) async fn spawn<F, Fut>(&self, serve: F) -> Result<RunningServer>
    where
        F: FnOnce(TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (bound, addr) = oneshot::channel();
        let task = self.handle.spawn(async move {
            match TcpListener::bind("127.0.0.1:0").await {
                Ok(listener) => {
                    let _ = bound.send(listener.local_addr());
                    serve(listener).await;
                }
                Err(err) => {
                    let _ = bound.send(Err(err));
                }
            }
        });
        let addr = addr.await.map_err(|_| "the server thread is gone")??;
        Ok(RunningServer {
            addr,
            task: task.abort_handle(),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A server spawned by [`ServerThread::spawn`]; dropping it stops the server.
#[derive(Debug)]
pub(crate) struct RunningServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    task: AbortHandle,
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
