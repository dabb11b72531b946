//! One multiplexed connection: the stream table, flow control, and the frames each event sends.
//!
//! Two tasks serve a connection: the [reader](reader) routes incoming frames to streams and never
//! waits on any one of them; the [writer](writer) drains a queue of outgoing frames, batching
//! whatever is queued into one write. Calls talk to both through [`Shared`].

pub(crate) mod reader;
pub(crate) mod writer;

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::frame::Frame;
use crate::handshake::PeerSettings;
use crate::message::PREFIX_LEN;
use crate::server::Router;
use crate::stream::inbound::InboundError;
use crate::stream::{MAX_CREDIT, Pushed, Stream};
use crate::{Code, Metadata, Status};

/// Highest stream id a client may use (ids are 31-bit so they never look negative to peers that
/// store them signed).
pub(crate) const MAX_STREAM_ID: u32 = i32::MAX as u32;

/// What the writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Out {
    Frame(Frame),
    /// Write everything queued so far, then close the write side.
    Shutdown,
}

/// Which end of the connection this is.
#[derive(Debug)]
pub(crate) enum Role {
    Client,
    Server(Arc<Router>),
}

/// Counters describing a connection at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Streams in the table: calls that have not ended on this side.
    pub open_streams: usize,
    /// Server handlers still running (a handler can outlive its stream by an instant while it
    /// is being dropped).
    pub running_handlers: usize,
    /// Bytes received and not yet handed back to the peer as credit.
    pub buffered_bytes: usize,
}

/// State of one connection shared by its reader, writer and calls.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) peer: PeerSettings,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) role: Role,
    out: mpsc::UnboundedSender<Out>,
    table: Mutex<Table>,
    /// Connection-level credit the peer granted for our sends.
    send_window: Semaphore,
    recv_flow: Mutex<RecvFlow>,
    /// Cancelled once the connection is closed, for whatever reason.
    pub(crate) closed: CancellationToken,
    running: AtomicUsize,
    /// Woken whenever a handler finishes, for graceful shutdown.
    pub(crate) handler_done: Notify,
}

#[derive(Debug)]
struct Table {
    streams: HashMap<u32, Arc<Stream>>,
    /// Client: the last id it opened. Server: the last id the client opened.
    last_id: u32,
    /// Once set, no new streams: the server sent (or the client received) GOAWAY.
    going_away: bool,
    /// Why the connection closed, once it has.
    closed: Option<Status>,
}

#[derive(Debug, Default)]
struct RecvFlow {
    /// Bytes received on all streams and not yet granted back.
    outstanding: u32,
    /// Of those, bytes released (consumed or dropped) and not yet granted back.
    released: u32,
}

impl Shared {
    pub(crate) fn new(
        role: Role,
        config: Config,
        peer: PeerSettings,
        peer_addr: Option<SocketAddr>,
    ) -> (Arc<Shared>, mpsc::UnboundedReceiver<Out>) {
        let (out, rx) = mpsc::unbounded_channel();
        let shared = Shared {
            send_window: Semaphore::new(peer.connection_window.min(MAX_CREDIT) as usize),
            config,
            peer,
            peer_addr,
            role,
            out,
            table: Mutex::new(Table {
                streams: HashMap::new(),
                last_id: 0,
                going_away: false,
                closed: None,
            }),
            recv_flow: Mutex::new(RecvFlow::default()),
            closed: CancellationToken::new(),
            running: AtomicUsize::new(0),
            handler_done: Notify::new(),
        };
        (Arc::new(shared), rx)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame for the writer. After the connection closed this does nothing.
    pub(crate) fn push(&self, frame: Frame) {
        let _ = self.out.send(Out::Frame(frame));
    }

    /// Asks the writer to flush what is queued and close the write side.
    pub(crate) fn push_shutdown(&self) {
        let _ = self.out.send(Out::Shutdown);
    }

    /// Why the connection is unusable, if it is.
    pub(crate) fn closed_status(&self) -> Option<Status> {
        self.table().closed.clone()
    }

    /// Whether new calls can be opened on this connection.
    pub(crate) fn is_usable(&self) -> bool {
        let table = self.table();
        table.closed.is_none() && !table.going_away && table.last_id < MAX_STREAM_ID
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        let open_streams = self.table().streams.len();
        let flow = self.recv_flow.lock().unwrap_or_else(|e| e.into_inner());
        ConnectionStats {
            open_streams,
            running_handlers: self.running.load(Ordering::Acquire),
            buffered_bytes: (flow.outstanding - flow.released) as usize,
        }
    }

    // ----- client side -------------------------------------------------------------------

    /// Opens a call. The arguments travel inside the OPEN frame when the peer's credit allows
    /// (the usual case); otherwise they are returned to be sent as DATA.
    pub(crate) fn open(
        &self,
        method: &'static str,
        timeout: Option<Duration>,
        metadata: Metadata,
        args: Bytes,
        end_stream: bool,
    ) -> Result<(Arc<Stream>, Option<Bytes>), Status> {
        if let Some((key, _)) = metadata
            .iter()
            .find(|(k, v)| k.len() > u16::MAX as usize || v.len() > u32::MAX as usize)
        {
            return Err(Status::invalid_argument(format!(
                "metadata key {:?}… is longer than 65535 bytes",
                &key[..key.len().min(32)]
            )));
        }
        let header_len = 2 + method.len() + 8 + 4 + metadata.encoded_len();
        if header_len > self.peer.max_frame_size as usize {
            return Err(Status::resource_exhausted(format!(
                "the call's metadata makes an OPEN frame of {header_len} bytes, over the server's frame limit of {}",
                self.peer.max_frame_size
            )));
        }
        let mut table = self.table();
        if let Some(status) = &table.closed {
            return Err(status.clone());
        }
        if table.going_away || table.last_id >= MAX_STREAM_ID {
            return Err(Status::unavailable(
                "the connection is closing; open a new one",
            ));
        }
        let id = table.last_id + 1;
        let stream = Arc::new(Stream::new(
            id,
            self.config.stream_window,
            self.config.max_message_size,
            self.peer.stream_window.min(MAX_CREDIT),
        ));
        let len = args.len() as u32;
        let inline = header_len + args.len() <= self.peer.max_frame_size as usize
            && self.try_take_credit(&stream, len);
        table.last_id = id;
        table.streams.insert(id, stream.clone());
        let (data, rest) = if inline {
            (args, None)
        } else {
            (Bytes::new(), Some(args))
        };
        self.push(Frame::Open {
            id,
            end_stream: end_stream && inline,
            method: Bytes::from_static(method.as_bytes()),
            timeout,
            metadata,
            data,
        });
        Ok((stream, rest))
    }

    /// Half-closes the client's side of a call.
    pub(crate) fn close_send(&self, stream: &Stream) {
        if self.table().streams.contains_key(&stream.id) {
            self.push(Frame::Data {
                id: stream.id,
                end_stream: true,
                data: Bytes::new(),
            });
        }
    }

    /// Abandons a call from the client side: tells the server, forgets the stream.
    pub(crate) fn cancel(&self, stream: &Stream, status: Status) {
        let removed = self.table().streams.remove(&stream.id).is_some();
        if removed {
            self.push(Frame::Cancel {
                id: stream.id,
                code: status.code(),
            });
        }
        let released = stream.fail(status);
        self.release_dropped(released);
    }

    // ----- server side -------------------------------------------------------------------

    /// Registers a call the client opened. `Err` is a protocol error; `Ok(None)` means the call
    /// was refused with a CLOSE frame.
    pub(crate) fn accept(
        &self,
        id: u32,
        data: Bytes,
        end_stream: bool,
    ) -> Result<Accepted, String> {
        let len = data.len() as u32;
        self.receive(len)?;
        let mut table = self.table();
        check_new_id(id, table.last_id)?;
        table.last_id = id;
        if table.closed.is_some() {
            return Ok(Accepted::Refused);
        }
        let refuse = |status: Status| {
            self.push(Frame::Close {
                id,
                status,
                data: Bytes::new(),
            });
            self.release(len);
            Ok(Accepted::Refused)
        };
        if table.going_away {
            return refuse(Status::unavailable(
                "the server is shutting down; retry on a new connection",
            ));
        }
        let max = self.config.max_concurrent_streams as usize;
        if self.running.load(Ordering::Acquire) >= max {
            return refuse(Status::resource_exhausted(format!(
                "{max} calls are already running on this connection; retry when one finishes"
            )));
        }
        let stream = Arc::new(Stream::new(
            id,
            self.config.stream_window,
            self.config.max_message_size,
            self.peer.stream_window.min(MAX_CREDIT),
        ));
        match stream.push(data, end_stream) {
            Ok(pushed) => self.pushed(id, pushed),
            Err(InboundError::FlowControl { len, available }) => {
                return Err(format!(
                    "OPEN for stream {id} carries {len} bytes, over the window of {available}"
                ));
            }
            Err(InboundError::TooLarge { len: msg, max }) => {
                return refuse(Status::resource_exhausted(format!(
                    "a message of {msg} bytes exceeds the limit of {max}"
                )));
            }
        }
        table.streams.insert(id, stream.clone());
        self.running.fetch_add(1, Ordering::AcqRel);
        Ok(Accepted::Call(stream))
    }

    /// Refuses a call before it starts (unknown method, oversized metadata).
    pub(crate) fn refuse_open(&self, id: u32, status: Status, data_len: u32) -> Result<(), String> {
        if !matches!(self.role, Role::Server(_)) {
            return Err("the server sent OPEN; only clients open streams".into());
        }
        self.receive(data_len)?;
        let mut table = self.table();
        check_new_id(id, table.last_id)?;
        table.last_id = id;
        drop(table);
        self.push(Frame::Close {
            id,
            status,
            data: Bytes::new(),
        });
        self.release(data_len);
        Ok(())
    }

    /// Stops a call's handler with `status`, which `finish` then sends to the client.
    pub(crate) fn abort_call(&self, stream: &Stream, status: Status) {
        let released = stream.fail(status);
        self.release_dropped(released);
    }

    /// Counts a handler as finished.
    pub(crate) fn handler_finished(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        self.handler_done.notify_waiters();
    }

    /// Ends a call from the server side with its final status; `data` holds the last message
    /// (a unary reply), sent in the same frame when credit allows.
    pub(crate) async fn finish(&self, stream: &Stream, status: Status, data: Option<Bytes>) {
        let (status, data) = match data.map(|msg| self.check_size(msg)) {
            None => (self.fit_status(status), Bytes::new()),
            // A reply the client would refuse: the call fails with the reason instead.
            Some(Err(too_large)) => (self.fit_status(too_large), Bytes::new()),
            Some(Ok(msg)) => {
                let status = self.fit_status(status);
                let fits = 1 + 4 + status.message().len() + 4 + status.details().len() + msg.len()
                    <= self.peer.max_frame_size as usize;
                if fits && self.try_take_credit(stream, msg.len() as u32) {
                    (status, msg)
                } else {
                    if self.send_message(stream, msg, false).await.is_err() {
                        self.forget(stream);
                        return;
                    }
                    (status, Bytes::new())
                }
            }
        };
        if self.table().streams.remove(&stream.id).is_some() {
            self.push(Frame::Close {
                id: stream.id,
                status,
                data,
            });
        }
        let released = stream.discard();
        self.release_dropped(released);
    }

    /// Shortens a status so its CLOSE frame fits the peer's frame limit.
    fn fit_status(&self, status: Status) -> Status {
        let room = (self.peer.max_frame_size as usize).saturating_sub(64);
        if status.message().len() + status.details().len() <= room {
            return status;
        }
        let mut end = room.min(status.message().len());
        while !status.message().is_char_boundary(end) {
            end -= 1;
        }
        Status::new(status.code(), &status.message()[..end])
    }

    /// Drops a stream from the table without telling the peer (it already knows).
    pub(crate) fn forget(&self, stream: &Stream) {
        self.table().streams.remove(&stream.id);
        let released = stream.discard();
        self.release_dropped(released);
    }

    /// Stops accepting calls: answers new OPENs with `Unavailable` and tells the client.
    pub(crate) fn go_away(&self, reason: &str) {
        let mut table = self.table();
        if table.going_away || table.closed.is_some() {
            return;
        }
        table.going_away = true;
        let last_stream_id = table.last_id;
        drop(table);
        self.push(Frame::GoAway {
            last_stream_id,
            code: Code::Unavailable,
            reason: reason.into(),
        });
    }

    /// Whether no call is running or open.
    pub(crate) fn is_idle(&self) -> bool {
        self.running.load(Ordering::Acquire) == 0 && self.table().streams.is_empty()
    }

    // ----- both sides --------------------------------------------------------------------

    /// Takes `len` bytes of stream and connection credit now, or none at all.
    fn try_take_credit(&self, stream: &Stream, len: u32) -> bool {
        if !stream.try_credit(len) {
            return false;
        }
        match self.send_window.try_acquire_many(len) {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_) => {
                stream.return_credit(len);
                false
            }
        }
    }

    /// Refuses a message (prefix included) larger than the peer accepts, before sending any of it.
    pub(crate) fn check_size(&self, msg: Bytes) -> Result<Bytes, Status> {
        let body = msg.len() - PREFIX_LEN;
        if body > self.peer.max_message_size as usize {
            return Err(Status::resource_exhausted(format!(
                "a message of {body} bytes exceeds the peer's limit of {}",
                self.peer.max_message_size
            )));
        }
        Ok(msg)
    }

    /// Sends one encoded message (prefix included) on `stream`, in as many DATA frames as the
    /// peer's frame size and credit require, waiting for credit as needed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future may leave a message partly sent; only do so when abandoning the call.
    pub(crate) async fn send_message(
        &self,
        stream: &Stream,
        msg: Bytes,
        end_stream: bool,
    ) -> Result<(), Status> {
        let mut msg = self.check_size(msg)?;
        loop {
            let want = (msg.len() as u32).min(self.peer.max_frame_size);
            let n = poll_fn(|cx| stream.poll_credit(cx, want)).await?;
            match self.send_window.acquire_many(n).await {
                Ok(permit) => permit.forget(),
                Err(_) => {
                    return Err(self
                        .closed_status()
                        .unwrap_or_else(|| Status::unavailable("connection closed")));
                }
            }
            let chunk = msg.split_to(n as usize);
            let last = msg.is_empty();
            self.push(Frame::Data {
                id: stream.id,
                end_stream: end_stream && last,
                data: chunk,
            });
            if last {
                return Ok(());
            }
        }
    }

    /// The next message of `stream`, granting credit back as the application consumes.
    pub(crate) fn poll_recv(
        &self,
        stream: &Stream,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        match stream.poll_recv(cx) {
            Poll::Ready(Some(Ok(received))) => {
                if let Some(increment) = received.grant {
                    self.push(Frame::Credit {
                        id: stream.id,
                        increment,
                    });
                }
                self.release(received.released);
                Poll::Ready(Some(Ok(received.body)))
            }
            Poll::Ready(Some(Err(status))) => Poll::Ready(Some(Err(status))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Does the flow-control work a DATA payload caused.
    fn pushed(&self, id: u32, pushed: Pushed) {
        if let Some(increment) = pushed.grant {
            self.push(Frame::Credit { id, increment });
        }
        self.release(pushed.released);
    }

    /// Counts `len` bytes arriving against the connection window.
    fn receive(&self, len: u32) -> Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let mut flow = self.recv_flow.lock().unwrap_or_else(|e| e.into_inner());
        let available = self.config.connection_window - flow.outstanding;
        if len > available {
            return Err(format!(
                "the peer sent {len} bytes past the connection window ({available} left)"
            ));
        }
        flow.outstanding += len;
        Ok(())
    }

    /// Marks `n` received bytes as consumed, granting connection credit in batches.
    fn release(&self, n: u32) {
        self.release_with(n, self.config.connection_window / 4);
    }

    /// Marks the bytes of a stream that is gone as consumed, granting them back at once: a
    /// peer stalled on the connection window gets going as soon as the stalling stream is
    /// dropped.
    fn release_dropped(&self, n: u32) {
        self.release_with(n, 1);
    }

    fn release_with(&self, n: u32, threshold: u32) {
        if n == 0 {
            return;
        }
        let mut flow = self.recv_flow.lock().unwrap_or_else(|e| e.into_inner());
        flow.released += n;
        if flow.released >= threshold {
            let increment = std::mem::take(&mut flow.released);
            flow.outstanding -= increment;
            drop(flow);
            self.push(Frame::Credit { id: 0, increment });
        }
    }

    fn lookup(&self, id: u32) -> Result<Option<Arc<Stream>>, String> {
        let table = self.table();
        match table.streams.get(&id) {
            Some(stream) => Ok(Some(stream.clone())),
            // A stream that ended on this side; frames already in flight are dropped.
            None if id <= table.last_id => Ok(None),
            None => Err(format!("a frame for stream {id}, which was never opened")),
        }
    }

    /// Fails one stream because of what its peer sent, keeping the connection.
    fn fail_stream(&self, stream: &Stream, status: Status) {
        if let Role::Client = self.role {
            // Tell the server to stop; the handler sees the status through its own stream.
            self.cancel(stream, status);
        } else {
            // The handler task is stopped and answers the client with `status`.
            let released = stream.fail(status);
            self.release_dropped(released);
        }
    }

    /// Handles one frame from the peer. `Err` is a protocol error: the connection must end.
    pub(crate) fn on_frame(self: &Arc<Self>, frame: Frame) -> Result<(), String> {
        match frame {
            Frame::Open {
                id,
                end_stream,
                method,
                timeout,
                metadata,
                data,
            } => match &self.role {
                Role::Server(router) => crate::server::dispatch::open(
                    self, router, id, end_stream, &method, timeout, metadata, data,
                ),
                Role::Client => Err("the server sent OPEN; only clients open streams".into()),
            },
            Frame::Data {
                id,
                end_stream,
                data,
            } => {
                let len = data.len() as u32;
                self.receive(len)?;
                let is_server = matches!(self.role, Role::Server(_));
                match self.lookup(id)? {
                    Some(stream) => match stream.push(data, end_stream && is_server) {
                        Ok(pushed) => self.pushed(id, pushed),
                        Err(InboundError::FlowControl { len, available }) => {
                            return Err(format!(
                                "stream {id} sent {len} bytes, over its window of {available}"
                            ));
                        }
                        Err(InboundError::TooLarge { len, max }) => {
                            self.fail_stream(
                                &stream,
                                Status::resource_exhausted(format!(
                                    "a message of {len} bytes exceeds the limit of {max}"
                                )),
                            );
                        }
                    },
                    None => self.release(len),
                }
                Ok(())
            }
            Frame::Close { id, status, data } => {
                if !matches!(self.role, Role::Client) {
                    return Err("the client sent CLOSE; only servers close streams".into());
                }
                let len = data.len() as u32;
                self.receive(len)?;
                let Some(stream) = self.lookup(id)? else {
                    self.release(len);
                    return Ok(());
                };
                self.table().streams.remove(&id);
                match stream.push(data, false) {
                    Ok(pushed) => self.release(pushed.released),
                    Err(InboundError::FlowControl { len, available }) => {
                        return Err(format!(
                            "stream {id} sent {len} bytes, over its window of {available}"
                        ));
                    }
                    Err(InboundError::TooLarge { len, max }) => {
                        let released = stream.fail(Status::resource_exhausted(format!(
                            "a message of {len} bytes exceeds the limit of {max}"
                        )));
                        self.release_dropped(released);
                        return Ok(());
                    }
                }
                let result = if status.code() == Code::Ok {
                    Ok(())
                } else {
                    Err(status)
                };
                stream.end_recv(result);
                Ok(())
            }
            Frame::Cancel { id, code } => {
                if !matches!(self.role, Role::Server(_)) {
                    return Err("the server sent CANCEL; servers end calls with CLOSE".into());
                }
                if let Some(stream) = self.lookup(id)? {
                    self.table().streams.remove(&id);
                    let released = stream.fail(Status::new(code, "the client cancelled the call"));
                    self.release_dropped(released);
                }
                Ok(())
            }
            Frame::Credit { id: 0, increment } => {
                if self.send_window.available_permits() as u64 + increment as u64
                    > MAX_CREDIT as u64
                {
                    return Err("connection CREDIT overflows the window".into());
                }
                self.send_window.add_permits(increment as usize);
                Ok(())
            }
            Frame::Credit { id, increment } => {
                if let Some(stream) = self.lookup(id)?
                    && stream.add_credit(increment).is_err()
                {
                    return Err(format!("CREDIT overflows the window of stream {id}"));
                }
                Ok(())
            }
            Frame::Ping {
                ack: false,
                payload,
            } => {
                self.push(Frame::Ping { ack: true, payload });
                Ok(())
            }
            Frame::Ping { ack: true, .. } => Ok(()),
            Frame::GoAway {
                last_stream_id,
                code,
                reason,
            } => {
                if let Role::Client = self.role {
                    self.peer_going_away(last_stream_id, &Status::new(code, reason));
                }
                Ok(())
            }
        }
    }

    /// The server will take no stream above `last`: those fail as retryable, the rest go on.
    fn peer_going_away(&self, last: u32, status: &Status) {
        let mut table = self.table();
        table.going_away = true;
        let unprocessed: Vec<Arc<Stream>> = table
            .streams
            .values()
            .filter(|s| s.id > last)
            .cloned()
            .collect();
        for stream in &unprocessed {
            table.streams.remove(&stream.id);
        }
        drop(table);
        for stream in unprocessed {
            let released = stream.fail(Status::unavailable(format!(
                "the server is going away ({status}) and did not start this call; it is safe to retry"
            )));
            self.release_dropped(released);
        }
    }

    /// Closes the connection: every open call fails with `status`, both tasks stop.
    pub(crate) fn close(&self, status: &Status) {
        let streams = {
            let mut table = self.table();
            if table.closed.is_some() {
                return;
            }
            table.closed = Some(status.clone());
            std::mem::take(&mut table.streams)
        };
        for stream in streams.into_values() {
            stream.fail(status.clone());
        }
        self.send_window.close();
        self.closed.cancel();
    }

    /// Ends the connection after a protocol violation by the peer: GOAWAY with the reason, then
    /// close.
    pub(crate) fn protocol_error(&self, reason: &str) {
        tracing::warn!(peer = ?self.peer_addr, %reason, "closing connection: protocol error");
        let last_stream_id = self.table().last_id;
        self.push(Frame::GoAway {
            last_stream_id,
            code: Code::InvalidArgument,
            reason: reason.to_string(),
        });
        self.push_shutdown();
        self.close(&Status::unavailable(format!("protocol error: {reason}")));
    }
}

/// Stream ids a client opens must go up, and stay within 31 bits.
fn check_new_id(id: u32, last: u32) -> Result<(), String> {
    if id > MAX_STREAM_ID {
        Err(format!(
            "OPEN for stream {id}, above the highest stream id {MAX_STREAM_ID}"
        ))
    } else if id <= last {
        Err(format!(
            "OPEN for stream {id}, which is not above the last opened stream {last}"
        ))
    } else {
        Ok(())
    }
}

/// The outcome of an OPEN frame on the server.
#[derive(Debug)]
pub(crate) enum Accepted {
    Call(Arc<Stream>),
    Refused,
}

/// A client's handle on a connection; the connection closes when the last one is dropped.
#[derive(Clone, Debug)]
pub(crate) struct Connection(Arc<Handle>);

#[derive(Debug)]
struct Handle(Arc<Shared>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.push_shutdown();
        self.0.close(&Status::cancelled("the client was dropped"));
    }
}

impl Deref for Connection {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0.0
    }
}

impl Connection {
    /// Runs the client handshake on `io` and starts the connection's tasks.
    pub(crate) async fn client<IO>(
        mut io: IO,
        config: Config,
        peer_addr: Option<SocketAddr>,
    ) -> Result<Connection, Status>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let peer = crate::handshake::client(&mut io, &config)
            .await
            .map_err(|err| {
                if err.kind() == std::io::ErrorKind::InvalidData {
                    Status::unavailable(format!("handshake failed: {err}"))
                } else {
                    Status::unavailable(format!("handshake failed: connection error: {err}"))
                }
            })?;
        let (read, write) = tokio::io::split(io);
        let (shared, rx) = Shared::new(Role::Client, config, peer, peer_addr);
        tokio::spawn(writer::run(shared.clone(), rx, write));
        tokio::spawn(reader::run(shared.clone(), read));
        Ok(Connection(Arc::new(Handle(shared))))
    }
}
