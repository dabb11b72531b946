//! The least multiplexing a unary call can have: the baseline's frames, with the replies read by
//! a task of their own and handed to each caller by request id.
//!
//! A client that lets many calls share one connection cannot read its reply in the caller: the
//! next frame may be anyone's. Something reads every frame and hands each to its call: one
//! wake-up per reply, of a caller that then runs as a task of its own (under `block_on`, after
//! the runtime's driver is polled once more). This client has only that. It writes in the
//! caller, under a lock, with no writer task and no batching (the cheapest write for one call
//! in flight); it keeps no call state but a `oneshot` per call in a map; and it talks to the
//! baseline server, which answers inline. What it costs over the baseline is what multiplexing
//! itself costs: `micro-bench floor` measures it against both (see [`crate::workloads::w1`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::Result;
use crate::baseline::{self, Reader, Writer};
use crate::messages::{SRequest, SResponse};

/// The callers waiting for a reply, by request id.
type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<BytesMut>>>>;

/// A multiplexed client of the baseline server; see the module documentation.
#[derive(Debug)]
pub(crate) struct MuxClient {
    writer: tokio::sync::Mutex<Writer>,
    waiting: Waiting,
    next_id: std::sync::atomic::AtomicU64,
    reader: JoinHandle<()>,
}

impl MuxClient {
    /// Connects to the baseline server at `addr` and starts the reader task.
    pub(crate) async fn connect(addr: SocketAddr, flush: baseline::Flush) -> Result<MuxClient> {
        let (reader, writer) = baseline::connect(addr, flush).await?;
        let waiting = Waiting::default();
        let reader = tokio::spawn(route(reader, waiting.clone()));
        Ok(MuxClient {
            writer: tokio::sync::Mutex::new(writer),
            waiting,
            next_id: Default::default(),
            reader,
        })
    }

    /// One unary call: `request` out, its one-message reply back.
    pub(crate) async fn call(&self, request: &SRequest) -> Result<SResponse> {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().expect("not poisoned").insert(id, tx);
        let sent = async {
            let frame = baseline::message(id, request)?;
            self.writer.lock().await.send(frame).await?;
            Result::Ok(())
        };
        if let Err(err) = sent.await {
            self.waiting.lock().expect("not poisoned").remove(&id);
            return Err(err);
        }
        let frame = rx
            .await
            .map_err(|_| "the connection ended before the reply")?;
        match baseline::parse(&frame)? {
            (_, Some(body)) => baseline::decode(body),
            (_, None) => Err(format!("an end frame instead of the reply to {id}").into()),
        }
    }
}

impl Drop for MuxClient {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The reader task: hands every frame to the caller waiting for its id. At the end of the
/// connection the map is emptied, and every caller still waiting learns it.
async fn route(mut reader: Reader, waiting: Waiting) {
    while let Ok(frame) = baseline::next_frame(&mut reader).await {
        let Ok((id, _)) = baseline::parse(&frame) else {
            break;
        };
        let caller = waiting.lock().expect("not poisoned").remove(&id);
        if let Some(caller) = caller {
            let _ = caller.send(frame);
        }
    }
    waiting.lock().expect("not poisoned").clear();
}

#[cfg(test)]
mod tests {
    use tokio::net::TcpListener;

    use super::*;

    #[tokio::test]
    async fn replies_reach_their_callers_and_a_lost_connection_fails_the_waiting_call() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(baseline::serve(
            listener,
            baseline::Service::Unary,
            baseline::Flush::Batched,
        ));
        let mux = MuxClient::connect(addr, baseline::Flush::Batched)
            .await
            .unwrap();
        let three = SRequest { count: 3 };
        let (a, b) = tokio::join!(mux.call(&SRequest::ONE_WORD), mux.call(&three));
        a.unwrap().check(1).unwrap();
        b.unwrap().check(3).unwrap();
        assert!(mux.waiting.lock().unwrap().is_empty());

        // A server that reads the request and closes without answering.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut socket = socket;
            let mut buf = [0; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
        });
        let mux = MuxClient::connect(addr, baseline::Flush::Batched)
            .await
            .unwrap();
        // The reader task empties the waiting map when the connection ends: without that the
        // call would wait forever, so it is given a time limit.
        let call = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            mux.call(&SRequest::ONE_WORD),
        );
        assert!(call.await.expect("failed, not hung").is_err());
        server.abort();
    }
}
