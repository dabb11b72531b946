//! One multiplexed connection: the stream table, flow control, and the frames each event sends.
//!
//! Two tasks serve a connection: the [reader](reader) routes incoming frames to streams and never
//! waits on any one of them; the [writer](writer) drains the [outbox](outbox) of outgoing
//! frames, batching whatever is queued into one write. Calls talk to both through [`Shared`].

mod budget;
mod closing;
mod id_hash;
mod keepalive;
mod outbox;
pub(crate) mod reader;
mod send_stream;
pub(crate) mod writer;

pub(crate) use closing::Task;
pub(crate) use keepalive::keepalive;
pub(crate) use send_stream::{SendStreamError, send_stream};

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::frame::Frame;
use crate::handshake::PeerSettings;
use crate::message::PREFIX_LEN;
use crate::server::Router;
use crate::stream::run::Run;
use crate::stream::{MAX_CREDIT, Polled, Pushed, Stream};
use crate::{Code, Metadata, Status};
use budget::CancelBudget;
use id_hash::IdHashState;
use outbox::Outbox;
use writer::{WriteNow, Writing};

/// Highest stream id a client may use (ids are 31-bit so they never look negative to peers that
/// store them signed).
pub(crate) const MAX_STREAM_ID: u32 = i32::MAX as u32;

/// What the writer task is asked to do.
#[derive(Debug)]
pub(crate) enum Out {
    Frame(Frame),
    /// A frame the peer's own input called for (a PING answer, a refusal): counted, so a peer
    /// that sends such input without reading the answers cannot make the queue grow unbounded.
    Reply(Frame),
    /// Write everything queued so far, then close the write side.
    Shutdown,
}

/// How many answers to a peer's input may wait to be written. The reader stops reading (TCP
/// pushes back on the peer) while half of them wait, so only a burst within one frame could
/// reach the limit; past it the peer is disconnected.
pub(crate) const MAX_QUEUED_REPLIES: usize = 1024;

/// Frames in a row that carry nothing (PINGs; empty DATA from a client) a peer may send before
/// it is taken for a flood. Any frame that does work resets the count.
pub(crate) const MAX_EMPTY_FRAMES: u32 = 10_000;

/// Why a peer's input ends the connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// It broke the protocol: GOAWAY `InvalidArgument`.
    Protocol(String),
    /// It kept to the protocol but exhausted a budget meant to stop abuse: GOAWAY
    /// `ResourceExhausted`.
    Abuse(String),
}

impl From<String> for Violation {
    fn from(reason: String) -> Violation {
        Violation::Protocol(reason)
    }
}

impl From<&str> for Violation {
    fn from(reason: &str) -> Violation {
        Violation::Protocol(reason.to_string())
    }
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
    /// Bytes of received messages held for the application: queued, or being assembled.
    pub buffered_bytes: usize,
}

/// State of one connection shared by its reader, writer and calls.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) peer: PeerSettings,
    pub(crate) peer_addr: Option<SocketAddr>,
    pub(crate) role: Role,
    /// Frames waiting for the writer.
    pub(crate) outbox: Outbox,
    /// Client: the writing half, for a call alone on the connection to write its OPEN frame
    /// itself (see [`open`](Self::open)).
    writing: Option<Arc<dyn WriteNow>>,
    /// Client: calls opened whose handle has not been dropped yet.
    calls_held: AtomicUsize,
    table: Mutex<Table>,
    /// Connection-level credit the peer granted for our sends.
    send_window: Semaphore,
    /// Bytes received and not yet granted back at the connection level. Only the reader task
    /// touches it (connection credit is granted as bytes arrive), so no lock is needed.
    recv_outstanding: AtomicU32,
    /// Bytes held in stream buffers, for statistics.
    buffered: AtomicUsize,
    /// Frames of `Out::Reply` queued and not yet written to the socket.
    pub(crate) queued_replies: AtomicUsize,
    /// Woken when the writer has written answers.
    pub(crate) answers_written: Notify,
    /// Bytes received so far: the keepalive task's sign of life.
    pub(crate) bytes_received: AtomicU64,
    /// Frames in a row that carried nothing (only the reader touches it).
    empty_frames: AtomicU32,
    /// Cancelled once the connection is closed, for whatever reason.
    pub(crate) closed: CancellationToken,
    /// The same, for the reader and writer tasks, which wait on it all the time.
    pub(crate) closing: closing::Closing,
    running: AtomicUsize,
    /// Woken whenever a handler finishes once the server sent GOAWAY: a graceful shutdown
    /// waits on it for the calls to end.
    pub(crate) handler_done: Notify,
    /// No new streams: the server sent (or the client received) GOAWAY. Changed under the
    /// table's lock, read under it too except by `handler_finished`.
    going_away: AtomicBool,
    /// The connection runs on a single-threaded runtime: a call starts inline (see
    /// `server::dispatch::open`).
    pub(crate) single_threaded: bool,
}

#[derive(Debug)]
struct Table {
    streams: HashMap<u32, Arc<Stream>, IdHashState>,
    /// Client: the last id it opened. Server: the last id the client opened.
    last_id: u32,
    /// Why the connection closed, once it has.
    closed: Option<Status>,
    /// What the peer said in its GOAWAY, if it sent one.
    goaway: Option<Status>,
    /// Server: what the client may still cancel.
    cancels: CancelBudget,
}

impl Shared {
    pub(crate) fn new(
        role: Role,
        config: Config,
        peer: PeerSettings,
        peer_addr: Option<SocketAddr>,
        writing: Option<Arc<dyn WriteNow>>,
    ) -> Arc<Shared> {
        let cancels = CancelBudget::new(config.cancel_budget(), Instant::now());
        let shared = Shared {
            send_window: Semaphore::new(peer.connection_window.min(MAX_CREDIT) as usize),
            config,
            peer,
            peer_addr,
            role,
            outbox: Outbox::default(),
            writing,
            calls_held: AtomicUsize::new(0),
            table: Mutex::new(Table {
                streams: HashMap::with_hasher(IdHashState::new()),
                last_id: 0,
                closed: None,
                goaway: None,
                cancels,
            }),
            recv_outstanding: AtomicU32::new(0),
            buffered: AtomicUsize::new(0),
            queued_replies: AtomicUsize::new(0),
            answers_written: Notify::new(),
            bytes_received: AtomicU64::new(0),
            empty_frames: AtomicU32::new(0),
            closed: CancellationToken::new(),
            closing: closing::Closing::default(),
            running: AtomicUsize::new(0),
            handler_done: Notify::new(),
            going_away: AtomicBool::new(false),
            single_threaded: tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
                runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread
            }),
        };
        Arc::new(shared)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame for the writer. After the connection closed this does nothing.
    pub(crate) fn push(&self, frame: Frame) {
        self.outbox.push(Out::Frame(frame));
    }

    /// Queues a frame the peer's input called for. `Err` once too many are waiting: the peer
    /// does not read.
    fn reply(&self, frame: Frame) -> Result<(), String> {
        if self.queued_replies.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_REPLIES {
            return Err(format!(
                "the peer keeps sending while {MAX_QUEUED_REPLIES} answers wait for it to read"
            ));
        }
        self.outbox.push(Out::Reply(frame));
        Ok(())
    }

    /// Asks the writer to flush what is queued and close the write side.
    pub(crate) fn push_shutdown(&self) {
        self.outbox.push(Out::Shutdown);
    }

    /// Why the connection is unusable, if it is.
    pub(crate) fn closed_status(&self) -> Option<Status> {
        self.table().closed.clone()
    }

    /// Whether new calls can be opened on this connection.
    pub(crate) fn is_usable(&self) -> bool {
        let table = self.table();
        table.closed.is_none()
            && !self.going_away.load(Ordering::SeqCst)
            && table.last_id < MAX_STREAM_ID
    }

    pub(crate) fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            open_streams: self.table().streams.len(),
            running_handlers: self.running.load(Ordering::Acquire),
            buffered_bytes: self.buffered.load(Ordering::Acquire),
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
        if self.going_away.load(Ordering::SeqCst) || table.last_id >= MAX_STREAM_ID {
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
        let open = Out::Frame(Frame::Open {
            id,
            end_stream: end_stream && inline,
            method: Bytes::from_static(method.as_bytes()),
            timeout,
            metadata,
            data,
        });
        // A call alone on the connection has nothing to share a write with: it writes its OPEN
        // itself rather than wake the writer task for it (a fourteenth of a sequential unary
        // call's instructions, by callgrind). Calls that overlap go through the writer, which
        // batches them. Alone means no other call's handle exists, not just no other call in
        // the table: callers that run in step (every call answered in one read, then each
        // caller starts its next) still hold their ended calls while the first starts anew.
        let held = self.calls_held.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.writing {
            Some(writing) if held == 1 => {
                self.outbox.push_unwoken(open);
                drop(table);
                writing.write_now(self);
            }
            _ => self.outbox.push(open),
        }
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
        self.unbuffer(stream.fail(status));
    }

    // ----- server side -------------------------------------------------------------------

    /// Registers a call the client opened. `Err` is a protocol error.
    pub(crate) fn accept(
        &self,
        id: u32,
        data: Bytes,
        end_stream: bool,
    ) -> Result<Accepted, String> {
        self.arrive(data.len() as u32)?;
        let mut table = self.table();
        check_new_id(id, table.last_id)?;
        table.last_id = id;
        if table.closed.is_some() {
            return Ok(Accepted::Refused);
        }
        let refuse = |status: Status| {
            self.reply(Frame::Close {
                id,
                status: self.fit_status(status),
                data: Bytes::new(),
            })?;
            Ok(Accepted::Refused)
        };
        if self.going_away.load(Ordering::SeqCst) {
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
        // A unary request (the arguments, then the end) goes to the handler as it is: queueing
        // it in the stream only for the handler to take it out again costs an allocation.
        let (args, queue) = match end_stream {
            true => match stream.take_sole_message(data) {
                Ok(args) => (Some(args), None),
                Err(data) => (None, Some(data)),
            },
            false => (None, Some(data)),
        };
        if let Some(data) = queue {
            match stream.push(data, end_stream) {
                Ok(pushed) => self.pushed(id, pushed),
                Err(err) => return refuse(err.judge(id)?),
            }
        }
        table.streams.insert(id, stream.clone());
        self.running.fetch_add(1, Ordering::AcqRel);
        Ok(Accepted::Call { stream, args })
    }

    /// Refuses a call before it starts (unknown method, oversized metadata).
    pub(crate) fn refuse_open(&self, id: u32, status: Status, data_len: u32) -> Result<(), String> {
        if !matches!(self.role, Role::Server(_)) {
            return Err("the server sent OPEN; only clients open streams".into());
        }
        self.arrive(data_len)?;
        let mut table = self.table();
        check_new_id(id, table.last_id)?;
        table.last_id = id;
        drop(table);
        self.reply(Frame::Close {
            id,
            status: self.fit_status(status),
            data: Bytes::new(),
        })
    }

    /// Stops a call's handler with `status`, which `finish` then sends to the client.
    pub(crate) fn abort_call(&self, stream: &Stream, status: Status) {
        self.unbuffer(stream.fail(status));
    }

    /// Counts a handler as finished.
    pub(crate) fn handler_finished(&self) {
        // Sequentially consistent with `go_away` and `is_idle`: either this sees the GOAWAY
        // and wakes the shutdown, or the shutdown's check after it sees this handler gone.
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.going_away.load(Ordering::SeqCst) {
            self.handler_done.notify_waiters();
        }
    }

    /// Ends a call from the server side with its final status; `data` holds the last message
    /// (a unary reply), sent in the same frame when credit allows. If the call was stopped
    /// (bad input, a limit), the reason is sent instead of the reply.
    ///
    /// `Some` when the reply must go out as DATA first, which may wait for credit: the call
    /// then ends with [`finish_sending`](Self::finish_sending).
    pub(crate) fn finish(
        &self,
        stream: &Stream,
        status: Status,
        data: Option<Bytes>,
    ) -> Option<(Status, Bytes)> {
        let (status, data) = match stream.abort_status() {
            Some(abort) => (abort, None),
            None => (status, data),
        };
        let (status, data) = match data.map(|msg| self.check_size(msg)) {
            None => (status, Bytes::new()),
            // A reply the client would refuse: the call fails with the reason instead.
            Some(Err(too_large)) => (too_large, Bytes::new()),
            Some(Ok(msg)) => {
                // A reply comes with `Ok` and no message, so the status needs no shortening
                // here (`close_call` shortens every status it sends).
                let fits = 1 + 4 + status.message().len() + 4 + status.details().len() + msg.len()
                    <= self.peer.max_frame_size as usize;
                if fits && self.try_take_credit(stream, msg.len() as u32) {
                    (status, msg)
                } else {
                    return Some((status, msg));
                }
            }
        };
        self.close_call(stream, status, data);
        None
    }

    /// Ends a call whose reply [`finish`](Self::finish) could not put in the CLOSE frame: sends
    /// it as DATA, then closes.
    pub(crate) async fn finish_sending(&self, stream: &Stream, status: Status, reply: Bytes) {
        let status = match self.send_message(stream, reply, false).await {
            Ok(()) => status,
            // Still in the table (not cancelled): the client learns why.
            Err(err) => err,
        };
        self.close_call(stream, status, Bytes::new());
    }

    /// Both steps of ending a call, for tests.
    #[cfg(test)]
    pub(crate) async fn finish_all(&self, stream: &Stream, status: Status, data: Option<Bytes>) {
        if let Some((status, reply)) = self.finish(stream, status, data) {
            self.finish_sending(stream, status, reply).await;
        }
    }

    /// Sends a call's CLOSE, unless it was cancelled meanwhile, and forgets its stream.
    fn close_call(&self, stream: &Stream, status: Status, data: Bytes) {
        let finished = {
            let mut table = self.table();
            let finished = table.streams.remove(&stream.id).is_some();
            if finished {
                table.cancels.refund();
            }
            finished
        };
        if finished {
            self.push(Frame::Close {
                id: stream.id,
                status: self.fit_status(status),
                data,
            });
        } else if !data.is_empty() {
            // Cancelled meanwhile: the reply's connection credit was taken but never used, and
            // the peer will not grant it back.
            self.send_window.add_permits(data.len());
        }
        self.unbuffer(stream.discard());
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

    /// The handle of a call [`open`](Self::open) returned is gone.
    pub(crate) fn call_dropped(&self) {
        self.calls_held.fetch_sub(1, Ordering::Relaxed);
    }

    /// Lets go of a client call the server has ended, or of any call that failed: `false` if
    /// the call is still running (the caller must cancel it).
    ///
    /// Whatever ended the call took its stream out of the table already (a CLOSE, a
    /// cancellation, a GOAWAY, the connection closing), so this only drops unread messages.
    pub(crate) fn release(&self, stream: &Stream) -> bool {
        let Some(unread) = stream.discard_if_ended() else {
            return false;
        };
        debug_assert!(!self.table().streams.contains_key(&stream.id));
        self.unbuffer(unread);
        true
    }

    /// Stops accepting calls: answers new OPENs with `Unavailable` and tells the client.
    pub(crate) fn go_away(&self, reason: &str) {
        let table = self.table();
        if table.closed.is_some() || self.going_away.swap(true, Ordering::SeqCst) {
            return;
        }
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
        self.running.load(Ordering::SeqCst) == 0 && self.table().streams.is_empty()
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
        self.check_len(msg.len() - PREFIX_LEN)?;
        Ok(msg)
    }

    /// Refuses a message body of `len` bytes if the peer does not accept it.
    pub(crate) fn check_len(&self, len: usize) -> Result<(), Status> {
        if len > self.peer.max_message_size as usize {
            return Err(Status::resource_exhausted(format!(
                "a message of {len} bytes exceeds the peer's limit of {}",
                self.peer.max_message_size
            )));
        }
        Ok(())
    }

    /// Sends one encoded message (prefix included) on `stream`, in as many DATA frames as the
    /// peer's frame size and credit require, waiting for credit as needed.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before any of the message is queued gives its credit back and
    /// leaves the call as it was. Dropping it after part of the message is queued would leave
    /// a torn message on the wire, so the call is ended instead: cancelled (client) or stopped
    /// with `Internal` (server).
    pub(crate) async fn send_message(
        &self,
        stream: &Stream,
        msg: Bytes,
        end_stream: bool,
    ) -> Result<(), Status> {
        let msg = self.check_size(msg)?;
        self.send_data(stream, msg, end_stream).await
    }

    /// Sends encoded messages (each checked against the peer's size limit already) on
    /// `stream`: several messages in one payload go out in as few frames as credit allows.
    ///
    /// # Cancel safety
    ///
    /// As [`send_message`](Self::send_message).
    pub(crate) async fn send_data(
        &self,
        stream: &Stream,
        mut msg: Bytes,
        end_stream: bool,
    ) -> Result<(), Status> {
        let mut guard = SendGuard {
            conn: self,
            stream,
            credit: 0,
            torn: false,
        };
        let sent = async {
            loop {
                let want = (msg.len() as u32).min(self.peer.max_frame_size);
                guard.credit = poll_fn(|cx| stream.poll_credit(cx, want)).await?;
                let n = self.take_connection_credit(guard.credit).await?;
                // Whatever stream credit the connection could not match goes back.
                stream.return_credit(guard.credit - n);
                guard.credit = 0;
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
                guard.torn = true;
            }
        }
        .await;
        // Finished, one way or the other: only a future dropped half way tears the message.
        // (An error means the call or the connection has ended already.)
        guard.torn = false;
        sent
    }

    /// Takes between 1 and `want` bytes of connection credit: what is there, or the first byte
    /// that comes. Never waiting for all of `want` at once means a peer with a small connection
    /// window is never waited on for more than it can grant.
    async fn take_connection_credit(&self, want: u32) -> Result<u32, Status> {
        let closed = || {
            self.closed_status()
                .unwrap_or_else(|| Status::unavailable("connection closed"))
        };
        loop {
            let available = self.send_window.available_permits().min(want as usize) as u32;
            if available > 0 {
                match self.send_window.try_acquire_many(available) {
                    Ok(permit) => {
                        permit.forget();
                        return Ok(available);
                    }
                    // Closed with permits left: `available_permits` keeps counting them.
                    Err(tokio::sync::TryAcquireError::Closed) => return Err(closed()),
                    // Another sender took them first.
                    Err(tokio::sync::TryAcquireError::NoPermits) => continue,
                }
            }
            if self.send_window.is_closed() {
                return Err(closed());
            }
            match self.send_window.acquire().await {
                Ok(permit) => {
                    permit.forget();
                    let more = self.send_window.available_permits().min(want as usize - 1) as u32;
                    if more > 0
                        && let Ok(permit) = self.send_window.try_acquire_many(more)
                    {
                        permit.forget();
                        return Ok(1 + more);
                    }
                    return Ok(1);
                }
                Err(_) => return Err(closed()),
            }
        }
    }

    /// Ends a call whose message was abandoned half sent.
    fn tear(&self, stream: &Stream) {
        let status = Status::cancelled("a message was abandoned half sent");
        match self.role {
            Role::Client => self.cancel(stream, status),
            Role::Server(_) => self.abort_call(stream, Status::internal(status.message())),
        }
    }

    /// The next message of `stream`, granting credit back as the application consumes.
    pub(crate) fn poll_recv(
        &self,
        stream: &Stream,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Bytes, Status>>> {
        // Each message taken counts against the task's cooperative budget: a reader that has a
        // window of messages queued would otherwise keep its thread until it had taken them
        // all, and every other task there (another call's reply) would wait for it.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let poll = self.settle(stream.id, stream.poll_recv(cx));
        if poll.is_ready() {
            coop.made_progress();
        }
        poll
    }

    /// The next message of `stream` for a reader of many messages (a streaming call's items),
    /// read by `read` out of the reader's `run`. The run is refilled from the stream's queue
    /// only when used up, so the messages of one DATA payload cost one lock of the stream
    /// between them, and each is read where it arrived.
    pub(crate) fn poll_read<R>(
        &self,
        stream: &Stream,
        run: &mut Run,
        cx: &mut TaskContext<'_>,
        read: impl FnOnce(&[u8]) -> R,
    ) -> Poll<Option<Result<R, Status>>> {
        // Each message counts against the task's cooperative budget, as in `poll_recv`.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        loop {
            if !run.is_empty() {
                if !stream.discarded() {
                    coop.made_progress();
                    return Poll::Ready(Some(Ok(run.read_next(read))));
                }
                // The call failed or ended here: the rest of the run is dropped with what
                // was queued, and the reader gets the call's end below.
                run.take_owed();
            }
            let end = match std::task::ready!(self.settle(stream.id, stream.poll_run(cx, run))) {
                Some(Ok(())) => continue,
                Some(Err(status)) => Some(Err(status)),
                None => None,
            };
            coop.made_progress();
            return Poll::Ready(end);
        }
    }

    /// Does the flow-control work of taking from a stream: the credit to grant, the bytes that
    /// left its buffer.
    fn settle<T>(&self, id: u32, polled: Polled<T>) -> Poll<Option<Result<T, Status>>> {
        if let Some(increment) = polled.grant {
            self.push(Frame::Credit { id, increment });
        }
        self.unbuffer(polled.taken);
        polled.poll
    }

    /// Does the flow-control work a DATA payload caused.
    fn pushed(&self, id: u32, pushed: Pushed) {
        if let Some(increment) = pushed.grant {
            self.push(Frame::Credit { id, increment });
        }
        self.buffered
            .fetch_add(pushed.stored as usize, Ordering::AcqRel);
    }

    /// Bytes left the stream buffers.
    fn unbuffer(&self, n: u32) {
        if n > 0 {
            self.buffered.fetch_sub(n as usize, Ordering::AcqRel);
        }
    }

    /// Counts `len` bytes arriving against the connection window, and grants them back in
    /// batches of a quarter window: they now belong to a stream, whose own window bounds them
    /// (so an unread stream never stalls the others). Called by the reader only.
    fn arrive(&self, len: u32) -> Result<(), String> {
        if len == 0 {
            return Ok(());
        }
        let outstanding = self.recv_outstanding.load(Ordering::Relaxed);
        let available = self.config.connection_window - outstanding;
        if len > available {
            return Err(format!(
                "the peer sent {len} bytes past the connection window ({available} left)"
            ));
        }
        if outstanding + len >= self.config.connection_window / 4 {
            self.recv_outstanding.store(0, Ordering::Relaxed);
            self.push(Frame::Credit {
                id: 0,
                increment: outstanding + len,
            });
        } else {
            self.recv_outstanding
                .store(outstanding + len, Ordering::Relaxed);
        }
        Ok(())
    }

    fn lookup(&self, id: u32) -> Result<Option<Arc<Stream>>, String> {
        let table = self.table();
        match table.streams.get(&id) {
            Some(stream) => Ok(Some(stream.clone())),
            None => not_in_table(id, table.last_id),
        }
    }

    /// Takes stream `id` out of the table, as [`lookup`](Self::lookup) finds it.
    fn remove(&self, id: u32) -> Result<Option<Arc<Stream>>, String> {
        let mut table = self.table();
        match table.streams.remove(&id) {
            Some(stream) => Ok(Some(stream)),
            None => not_in_table(id, table.last_id),
        }
    }

    /// Fails one stream because of what its peer sent, keeping the connection.
    fn fail_stream(&self, stream: &Stream, status: Status) {
        if let Role::Client = self.role {
            // Tell the server to stop; the handler sees the status through its own stream.
            self.cancel(stream, status);
        } else {
            // The handler task is stopped and answers the client with `status`.
            self.abort_call(stream, status);
        }
    }

    /// Handles one frame from the peer. `Err`: the connection must end, for that reason.
    pub(crate) fn on_frame(self: &Arc<Self>, frame: Frame) -> Result<(), Violation> {
        self.count_empty(&frame)?;
        match frame {
            Frame::Open {
                id,
                end_stream,
                method,
                timeout,
                metadata,
                data,
            } => match &self.role {
                Role::Server(router) => Ok(crate::server::dispatch::open(
                    self, router, id, end_stream, &method, timeout, metadata, data,
                )?),
                Role::Client => Err("the server sent OPEN; only clients open streams".into()),
            },
            Frame::Data {
                id,
                end_stream,
                data,
            } => {
                self.arrive(data.len() as u32)?;
                let is_server = matches!(self.role, Role::Server(_));
                if let Some(stream) = self.lookup(id)? {
                    match stream.push(data, end_stream && is_server) {
                        Ok(pushed) => self.pushed(id, pushed),
                        Err(err) => self.fail_stream(&stream, err.judge(id)?),
                    }
                }
                Ok(())
            }
            Frame::Close { id, status, data } => {
                if !matches!(self.role, Role::Client) {
                    return Err("the client sent CLOSE; only servers close streams".into());
                }
                self.arrive(data.len() as u32)?;
                let Some(stream) = self.remove(id)? else {
                    return Ok(());
                };
                match stream.push(data, false) {
                    // Closed: nothing to grant any more.
                    Ok(pushed) => self.pushed(
                        id,
                        Pushed {
                            grant: None,
                            ..pushed
                        },
                    ),
                    Err(err) => {
                        self.unbuffer(stream.fail(err.judge(id)?));
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
                    let within_budget = {
                        let mut table = self.table();
                        table.streams.remove(&id);
                        table.cancels.spend(Instant::now())
                    };
                    self.abort_call(&stream, Status::new(code, "the client cancelled the call"));
                    if !within_budget {
                        return Err(Violation::Abuse(format!(
                            "the client cancelled more than {} running calls beyond those it let \
                             finish (the cancel budget); calls cancelled faster than they finish \
                             look like a rapid-reset attack",
                            self.config.cancel_budget()
                        )));
                    }
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
                    return Err(format!("CREDIT overflows the window of stream {id}").into());
                }
                Ok(())
            }
            Frame::Ping {
                ack: false,
                payload,
            } => Ok(self.reply(Frame::Ping { ack: true, payload })?),
            Frame::Ping { ack: true, .. } => Ok(()),
            Frame::GoAway {
                last_stream_id,
                code,
                reason,
            } => {
                let status = Status::new(code, reason);
                if let Role::Client = self.role {
                    self.peer_going_away(last_stream_id, &status);
                }
                self.table().goaway = Some(status);
                Ok(())
            }
        }
    }

    /// Counts frames in a row that carry nothing; too many is a flood.
    fn count_empty(&self, frame: &Frame) -> Result<(), String> {
        let empty = match frame {
            Frame::Ping { ack: false, .. } => true,
            // A server's empty DATA accepts a streaming call; a client's has no use.
            Frame::Data {
                end_stream: false,
                data,
                ..
            } => data.is_empty() && matches!(self.role, Role::Server(_)),
            // Credit and ping answers are the peer's side of our own traffic.
            Frame::Credit { .. } | Frame::Ping { ack: true, .. } => return Ok(()),
            _ => false,
        };
        if !empty {
            self.empty_frames.store(0, Ordering::Relaxed);
        } else if self.empty_frames.fetch_add(1, Ordering::Relaxed) >= MAX_EMPTY_FRAMES {
            return Err(format!(
                "the peer sent {MAX_EMPTY_FRAMES} frames in a row that carry nothing"
            ));
        }
        Ok(())
    }

    /// The server will take no stream above `last`: those fail as retryable, the rest go on.
    fn peer_going_away(&self, last: u32, status: &Status) {
        let mut table = self.table();
        self.going_away.store(true, Ordering::SeqCst);
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
            self.unbuffer(stream.fail(Status::unavailable(format!(
                "the server is going away ({status}) and did not start this call; it is safe to retry"
            ))));
        }
    }

    /// Why the peer closed the connection, with what it said in a GOAWAY if it sent one.
    pub(crate) fn peer_closed(&self, what: &str) -> Status {
        match &self.table().goaway {
            Some(goaway) => Status::unavailable(format!("{what} after GOAWAY: {goaway}")),
            None => Status::unavailable(what.to_string()),
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
            self.unbuffer(stream.fail(status.clone()));
        }
        self.send_window.close();
        self.closing.close();
        self.closed.cancel();
    }

    /// Ends the connection after a protocol violation by the peer: GOAWAY with the reason, then
    /// close.
    pub(crate) fn protocol_error(&self, reason: &str) {
        self.disconnect(&Violation::Protocol(reason.to_string()));
    }

    /// Ends the connection over what the peer sent: GOAWAY with the code and reason, then close.
    pub(crate) fn disconnect(&self, violation: &Violation) {
        let (code, what, reason) = match violation {
            Violation::Protocol(reason) => (Code::InvalidArgument, "protocol error", reason),
            Violation::Abuse(reason) => (Code::ResourceExhausted, "budget exceeded", reason),
        };
        tracing::warn!(peer = ?self.peer_addr, %reason, "closing connection: {what}");
        let last_stream_id = self.table().last_id;
        self.push(Frame::GoAway {
            last_stream_id,
            code,
            reason: reason.clone(),
        });
        self.push_shutdown();
        self.close(&Status::unavailable(format!("{what}: {reason}")));
    }
}

/// Gives back stream credit taken for a chunk that was never queued, and ends the call if a
/// message was left half sent, when a `send_message` future is dropped.
struct SendGuard<'a> {
    conn: &'a Shared,
    stream: &'a Stream,
    credit: u32,
    torn: bool,
}

impl Drop for SendGuard<'_> {
    fn drop(&mut self) {
        if self.credit > 0 {
            self.stream.return_credit(self.credit);
        }
        if self.torn {
            self.conn.tear(self.stream);
        }
    }
}

/// A client connection for unit tests, whose peer announces frames of up to `max_frame_size`
/// bytes, messages of up to 1 MiB and windows of `window` bytes.
#[cfg(test)]
pub(crate) fn test_client(max_frame_size: u32, window: u32) -> Arc<Shared> {
    let peer = PeerSettings {
        max_frame_size,
        max_message_size: 1 << 20,
        stream_window: window,
        connection_window: window,
    };
    Shared::new(Role::Client, Config::default(), peer, None, None)
}

/// A client connection for unit tests whose writing half goes into a pipe, with the pipe's
/// other end. No writer task runs: only what a call alone writes itself reaches the pipe.
#[cfg(test)]
pub(crate) fn test_wired_client() -> (Connection, tokio::io::DuplexStream) {
    let (write, wire) = tokio::io::duplex(1 << 16);
    let peer = PeerSettings {
        max_frame_size: 64 << 10,
        max_message_size: 1 << 20,
        stream_window: 1 << 20,
        connection_window: 1 << 20,
    };
    let writing: Arc<dyn WriteNow> = Writing::new(write);
    let shared = Shared::new(Role::Client, Config::default(), peer, None, Some(writing));
    (Connection(Arc::new(Handle(shared))), wire)
}

/// Reads one frame off the wire of [`test_wired_client`].
#[cfg(test)]
pub(crate) async fn read_frame(wire: &mut tokio::io::DuplexStream) -> Frame {
    use tokio::io::AsyncReadExt;
    let read = async {
        let len = wire.read_u32().await.unwrap() as usize;
        let mut body = vec![0; len];
        wire.read_exact(&mut body).await.unwrap();
        Frame::decode(Bytes::from(body), 1024).unwrap()
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("a frame was written")
}

/// What a frame for stream `id`, not in the table, means when `last_id` was the last opened: a
/// stream that ended on this side, whose frames already in flight are dropped (`None`), or a
/// protocol error.
fn not_in_table(id: u32, last_id: u32) -> Result<Option<Arc<Stream>>, String> {
    if id <= last_id {
        Ok(None)
    } else {
        Err(format!("a frame for stream {id}, which was never opened"))
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
    /// The call is admitted. `args` holds its one message when the OPEN frame carried all of
    /// the client's side; the stream then has nothing queued.
    Call {
        stream: Arc<Stream>,
        args: Option<Bytes>,
    },
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
        let (read, write) = crate::transport::split(io);
        let writing = Writing::new(write);
        let shared = Shared::new(
            Role::Client,
            config,
            peer,
            peer_addr,
            Some(writing.clone() as Arc<dyn WriteNow>),
        );
        tokio::spawn(writer::run(shared.clone(), writing.clone()));
        tokio::spawn(reader::run(shared.clone(), read, writing));
        if let Some(interval) = shared.config.keepalive_interval {
            tokio::spawn(keepalive(
                shared.clone(),
                interval,
                shared.config.keepalive_timeout,
            ));
        }
        Ok(Connection(Arc::new(Handle(shared))))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::task::Waker;

    use super::*;

    fn msg(body: &[u8]) -> Bytes {
        let mut wire = (body.len() as u32).to_be_bytes().to_vec();
        wire.extend_from_slice(body);
        Bytes::from(wire)
    }

    fn peer(stream_window: u32, connection_window: u32) -> PeerSettings {
        PeerSettings {
            max_frame_size: 1 << 20,
            max_message_size: 4 << 20,
            stream_window,
            connection_window,
        }
    }

    fn server() -> Arc<Shared> {
        let role = Role::Server(Arc::new(Router::default()));
        Shared::new(
            role,
            Config::default(),
            peer(256 << 10, 16 << 20),
            None,
            None,
        )
    }

    fn closes(conn: &Shared) -> Vec<Status> {
        let mut found = Vec::new();
        while let Some(out) = conn.outbox.try_pop() {
            if let Out::Frame(Frame::Close { status, .. })
            | Out::Reply(Frame::Close { status, .. }) = out
            {
                found.push(status);
            }
        }
        found
    }

    /// What `accept` made of an OPEN's payload: the arguments handed over whole, and the
    /// messages the stream then yields.
    async fn accepted(id: u32, data: Bytes, end_stream: bool) -> (Option<Bytes>, Vec<Bytes>) {
        let conn = server();
        let Accepted::Call { stream, args } = conn.accept(id, data, end_stream).unwrap() else {
            panic!("call {id} refused")
        };
        let mut queued = Vec::new();
        while let Some(msg) = poll_fn(|cx| conn.poll_recv(&stream, cx)).await {
            queued.push(msg.unwrap());
        }
        (args, queued)
    }

    #[tokio::test]
    async fn only_a_whole_unary_request_skips_the_stream_queue() {
        // One message, then the end: handed over, and the stream has ended with nothing queued.
        let (args, queued) = accepted(1, msg(b"\x91\x01"), true).await;
        assert_eq!(args.as_deref(), Some(&b"\x91\x01"[..]));
        assert!(queued.is_empty());

        // Two messages, or one cut short, go through the stream, which judges them.
        let mut two = msg(b"\x91\x01").to_vec();
        two.extend_from_slice(&msg(b"\x91\x02"));
        let (args, queued) = accepted(1, Bytes::from(two), true).await;
        assert_eq!((args, queued.len()), (None, 2));
        let conn = server();
        let short = msg(b"\x91\x01").slice(..5);
        let Accepted::Call { stream, args } = conn.accept(1, short, true).unwrap() else {
            panic!()
        };
        assert!(args.is_none());
        let cut = poll_fn(|cx| conn.poll_recv(&stream, cx)).await;
        assert!(
            matches!(&cut, Some(Err(s)) if s.code() == Code::InvalidArgument),
            "{cut:?}"
        );

        // A stream that goes on keeps its first message in the queue.
        let conn = server();
        let Accepted::Call { stream, args } = conn.accept(1, msg(b"\xc0"), false).unwrap() else {
            panic!()
        };
        assert!(args.is_none());
        assert_eq!(conn.stats().buffered_bytes, 5);
        let first = poll_fn(|cx| conn.poll_recv(&stream, cx)).await;
        assert_eq!(first.unwrap().unwrap(), &b"\xc0"[..]);
    }

    #[tokio::test]
    async fn a_streaming_reader_reads_a_payload_as_one_run_until_the_call_fails_here() {
        let conn = server();
        let mut wire = msg(b"\x01").to_vec();
        wire.extend_from_slice(&msg(b"\x02"));
        wire.extend_from_slice(&msg(b"\x03"));
        let Accepted::Call { stream, .. } = conn.accept(1, Bytes::from(wire), false).unwrap()
        else {
            panic!()
        };
        let mut run = Run::default();
        let mut next =
            async || poll_fn(|cx| conn.poll_read(&stream, &mut run, cx, <[u8]>::to_vec)).await;
        assert_eq!(next().await.unwrap().unwrap(), [1]);
        assert_eq!(
            conn.stats().buffered_bytes,
            0,
            "the whole payload left the stream's buffer at once"
        );
        assert_eq!(next().await.unwrap().unwrap(), [2]);
        // The handler fails the call: the message left in its run goes with the rest.
        conn.abort_call(&stream, Status::cancelled("gone"));
        let failed = next().await;
        assert!(
            matches!(&failed, Some(Err(s)) if s.code() == Code::Cancelled),
            "{failed:?}"
        );
    }

    #[test]
    fn a_whole_unary_request_over_the_stream_window_is_still_a_flow_control_error() {
        // The server's window (`Config::default`) is 2 MiB; its message limit is 4 MiB.
        let conn = server();
        let body = vec![0u8; (2 << 20) + 1];
        let err = conn.accept(1, msg(&body), true).unwrap_err();
        assert!(err.contains("over its window"), "{err}");
    }

    #[tokio::test]
    async fn data_routed_to_a_stream_that_just_finished_is_dropped_not_kept() {
        let conn = server();
        let Accepted::Call { stream, .. } = conn.accept(1, msg(b"\xc0"), false).unwrap() else {
            panic!()
        };
        assert!(matches!(
            poll_fn(|cx| conn.poll_recv(&stream, cx)).await,
            Some(Ok(_))
        ));
        // The reader looked the stream up just before the call task finished it...
        let looked_up = conn.lookup(1).unwrap().expect("open");
        conn.finish_all(&stream, Status::new(Code::Ok, ""), None)
            .await;
        // ...and only then hands it the frame.
        let pushed = looked_up.push(msg(&[7; 1000]), false).unwrap();
        conn.pushed(1, pushed);
        let stats = conn.stats();
        assert_eq!(
            (stats.open_streams, stats.buffered_bytes),
            (0, 0),
            "{stats:?}"
        );
    }

    #[tokio::test]
    async fn a_stream_error_before_the_reply_still_sends_a_close() {
        let conn = server();
        let Accepted::Call { stream, .. } = conn.accept(1, msg(b"\xc0"), false).unwrap() else {
            panic!()
        };
        let _ = poll_fn(|cx| conn.poll_recv(&stream, cx)).await;
        // The client sends a message over the limit while the handler finishes.
        conn.on_frame(Frame::Data {
            id: 1,
            end_stream: false,
            data: Bytes::from_static(&[0xff; 4]),
        })
        .unwrap();
        conn.finish_all(&stream, Status::new(Code::Ok, ""), Some(msg(b"\x01")))
            .await;
        let closes = closes(&conn);
        assert_eq!(closes.len(), 1, "{closes:?}");
        assert_eq!(closes[0].code(), Code::ResourceExhausted);
    }

    /// A client whose peer grants 64 KiB of stream credit but only 4096 bytes for the connection.
    fn client_with_4096_of_connection_credit() -> Arc<Shared> {
        Shared::new(
            Role::Client,
            Config::default(),
            peer(64 << 10, 4096),
            None,
            None,
        )
    }

    #[tokio::test]
    async fn a_send_dropped_while_waiting_for_connection_credit_gives_its_credit_back() {
        let conn = client_with_4096_of_connection_credit();
        // The arguments take the whole connection window.
        let (stream, _) = conn
            .open("S.m", None, Metadata::new(), msg(&[0; 4092]), false)
            .unwrap();
        let before = stream.send_credit();
        {
            let send = pin!(conn.send_message(&stream, msg(&[1; 2000]), false));
            let mut cx = TaskContext::from_waker(Waker::noop());
            // Stream credit is there, connection credit is not.
            assert!(send.poll(&mut cx).is_pending());
        }
        assert_eq!(
            stream.send_credit(),
            before,
            "the credit of a chunk never sent is given back"
        );
        assert_eq!(
            conn.stats().open_streams,
            1,
            "nothing was sent, so the call goes on"
        );
    }

    #[tokio::test]
    async fn a_send_dropped_half_way_through_a_message_ends_the_call() {
        let conn = client_with_4096_of_connection_credit();
        let (stream, _) = conn
            .open("S.m", None, Metadata::new(), msg(b"\xc0"), false)
            .unwrap();
        {
            // 6000 bytes: what the connection window has left goes out, the rest waits.
            let send = pin!(conn.send_message(&stream, msg(&[1; 6000]), false));
            let mut cx = TaskContext::from_waker(Waker::noop());
            assert!(send.poll(&mut cx).is_pending());
        }
        assert_eq!(
            conn.stats().open_streams,
            0,
            "a torn message cancels the call"
        );
        let mut cancelled = false;
        while let Some(out) = conn.outbox.try_pop() {
            cancelled |= matches!(out, Out::Frame(Frame::Cancel { .. }));
        }
        assert!(cancelled);
    }

    #[tokio::test]
    async fn answers_to_a_peer_that_does_not_read_are_bounded() {
        let conn = server();
        let mut result = Ok(());
        for payload in 0..=MAX_QUEUED_REPLIES as u64 {
            result = conn.on_frame(Frame::Ping {
                ack: false,
                payload,
            });
            if result.is_err() {
                break;
            }
        }
        let Err(Violation::Protocol(reason)) = result else {
            panic!("{result:?}")
        };
        assert!(reason.contains("answers wait"), "{reason}");
    }

    /// Opens call `id` and, when `cancel`, cancels it as a client would; otherwise finishes it.
    /// `Err` is what the cancel did to the connection.
    async fn run_call(conn: &Arc<Shared>, id: u32, cancel: bool) -> Result<(), Violation> {
        let Accepted::Call { stream, .. } = conn.accept(id, msg(b"\xc0"), false).unwrap() else {
            panic!("call {id} refused")
        };
        let result = if cancel {
            conn.on_frame(Frame::Cancel {
                id,
                code: Code::Cancelled,
            })
        } else {
            conn.finish_all(&stream, Status::new(Code::Ok, ""), None)
                .await;
            Ok(())
        };
        conn.handler_finished();
        result
    }

    #[tokio::test]
    async fn a_client_that_cancels_every_call_it_opens_is_disconnected() {
        let conn = server();
        let budget = conn.config.cancel_budget();
        let mut id = 1;
        let violation = loop {
            if let Err(violation) = run_call(&conn, id, true).await {
                break violation;
            }
            id += 1;
            assert!(id < 100_000, "never cut off");
        };
        let Violation::Abuse(why) = &violation else {
            panic!("{violation:?}")
        };
        assert!(why.contains("cancel budget"), "{why}");
        // What the reader does with it.
        conn.disconnect(&violation);
        let cancelled = id;
        assert!(
            (budget..100_000).contains(&cancelled),
            "{cancelled} cancels, budget {budget}"
        );
        let mut goaway = None;
        while let Some(out) = conn.outbox.try_pop() {
            if let Out::Frame(Frame::GoAway { code, reason, .. }) = out {
                goaway = Some((code, reason));
            }
        }
        let (code, reason) = goaway.expect("GOAWAY");
        assert_eq!(code, Code::ResourceExhausted);
        assert!(reason.contains("cancel budget"), "{reason}");
    }

    #[tokio::test]
    async fn a_client_that_cancels_half_its_calls_is_not() {
        let conn = server();
        // Ten budgets' worth of cancels, each paid for by a call that finished.
        let calls = conn.config.cancel_budget() * 20;
        for id in 1..=calls {
            run_call(&conn, id, id % 2 == 0).await.unwrap();
        }
        assert!(conn.closed_status().is_none());
        assert_eq!(conn.stats().open_streams, 0);
    }

    #[test]
    fn taking_credit_on_a_closed_connection_fails_at_once() {
        // close() closes the connection window with permits left; a sender that was about to
        // take some must fail, not spin on the permits a closed semaphore still reports.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            runtime.block_on(async {
                let conn = server();
                conn.close(&Status::unavailable("gone"));
                let taken = conn.take_connection_credit(100).await;
                done.send(taken.map_err(|status| status.code())).unwrap();
            });
        });
        let taken = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("take_connection_credit spun on a closed connection");
        assert_eq!(taken, Err(Code::Unavailable));
    }
}
