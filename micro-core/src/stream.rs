//! The state one stream shares between the connection's reader and the call's handles.

pub(crate) mod inbound;
pub(crate) mod run;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};

use bytes::Bytes;

use crate::Status;
use inbound::{Inbound, InboundError};
use run::Run;

/// One call's stream: what arrived for it and what it may still send.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: u32,
    /// What arrived was dropped unread (the call failed or ended here): a reader must not
    /// read on from a [`Run`] it took before. Read without the lock, once per message.
    discarded: AtomicBool,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    inbound: Inbound,
    recv_waker: Option<Waker>,
    send_waker: Option<Waker>,
    task_waker: Option<Waker>,
    /// The statuses the call ended with. Boxed: set when the call ends, and kept small in every
    /// open stream.
    ends: Option<Box<Ends>>,
    /// Bytes the peer allows this side to send.
    send_credit: u32,
    /// The peer's side ended after its last message (unless `ends.recv` says it failed).
    recv_done: bool,
    /// The server ended the call cleanly, so this side may send no more (unless `ends.send`
    /// says why otherwise). A flag, not a status in `ends`: every answered client call gets
    /// here, and needs the status only if it still tries to send.
    send_refused: bool,
    /// Client side: a frame came from the server, so the call was accepted or answered.
    started: bool,
}

/// How a call ended, side by side.
#[derive(Debug, Default)]
struct Ends {
    /// The peer's side failed: the call's status for the reader.
    recv: Option<Status>,
    /// Why this side can no longer send.
    send: Option<Status>,
    /// Server side: why the handler must stop (cancel, disconnect, bad input).
    abort: Option<Status>,
}

impl State {
    /// How the peer's side ended: `Ok` after its last message, `Err` if the call failed.
    fn recv_end(&self) -> Option<Result<(), &Status>> {
        match self.ends.as_ref().and_then(|ends| ends.recv.as_ref()) {
            Some(status) => Some(Err(status)),
            None => self.recv_done.then_some(Ok(())),
        }
    }

    /// Whether this side can no longer send.
    fn send_ended(&self) -> bool {
        self.send_refused || self.ends.as_ref().is_some_and(|ends| ends.send.is_some())
    }

    /// Why this side can no longer send, if it cannot.
    fn send_end(&self) -> Option<Status> {
        match self.ends.as_ref().and_then(|ends| ends.send.as_ref()) {
            Some(status) => Some(status.clone()),
            None => self.send_refused.then(|| {
                Status::failed_precondition(
                    "the server has ended the call and takes no more requests",
                )
            }),
        }
    }

    fn abort(&self) -> Option<&Status> {
        self.ends.as_ref().and_then(|ends| ends.abort.as_ref())
    }

    fn ends(&mut self) -> &mut Ends {
        self.ends.get_or_insert_with(Box::default)
    }
}

/// The most credit a stream may hold (the window field is a signed 31-bit quantity).
pub(crate) const MAX_CREDIT: u32 = i32::MAX as u32;

/// What taking a DATA payload caused.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pushed {
    /// Bytes now held in the stream's buffer (0 if they were dropped).
    pub(crate) stored: u32,
    /// A stream credit grant to send.
    pub(crate) grant: Option<u32>,
}

/// The outcome of polling a stream for its next message (or [`Run`] of messages), with the
/// flow-control work it caused.
#[derive(Debug)]
pub(crate) struct Polled<T = Bytes> {
    pub(crate) poll: Poll<Option<Result<T, Status>>>,
    /// Bytes that left the stream's buffer.
    pub(crate) taken: u32,
    /// A stream credit grant to send.
    pub(crate) grant: Option<u32>,
}

impl Stream {
    pub(crate) fn new(id: u32, recv_window: u32, max_message: u32, send_credit: u32) -> Stream {
        Stream {
            id,
            discarded: AtomicBool::new(false),
            state: Mutex::new(State {
                inbound: Inbound::new(recv_window, max_message),
                recv_waker: None,
                send_waker: None,
                task_waker: None,
                ends: None,
                send_credit,
                recv_done: false,
                send_refused: false,
                started: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state half-updated in a way that
        // matters more than losing the call, so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a DATA payload from the peer.
    pub(crate) fn push(&self, data: Bytes, end: bool) -> Result<Pushed, InboundError> {
        let mut s = self.lock();
        s.started = true;
        match s.recv_end() {
            // The peer said it was done: more is a protocol error.
            Some(Ok(())) => return Err(InboundError::AfterEnd),
            // The call already ended on this side (e.g. failed); the bytes are dropped unread.
            Some(Err(_)) => {
                return Ok(Pushed {
                    stored: 0,
                    grant: None,
                });
            }
            None => {}
        }
        let stored = data.len() as u32;
        s.inbound.push(data)?;
        // Bytes of a message the reader is waiting for were released on arrival: grant them now,
        // or a message larger than the window would never complete.
        let grant = if end { None } else { s.inbound.take_grant() };
        if end {
            if s.inbound.mid_message() {
                s.ends().recv = Some(Status::invalid_argument(
                    "the stream ended in the middle of a message",
                ));
            } else {
                s.recv_done = true;
            }
        }
        wake(&mut s.recv_waker);
        Ok(Pushed { stored, grant })
    }

    /// Takes the peer's last payload (END_STREAM) when it is exactly one message, as
    /// [`Inbound::take_sole`] judges: the peer's side ends, and the message comes back for the
    /// application to take directly (a unary request on the server). Otherwise `data` comes
    /// back, for [`push`](Self::push).
    pub(crate) fn take_sole_message(&self, data: Bytes) -> Result<Bytes, Bytes> {
        let mut s = self.lock();
        if s.recv_end().is_some() {
            return Err(data);
        }
        let body = s.inbound.take_sole(data)?;
        s.recv_done = true;
        Ok(body)
    }

    /// Ends the peer's side (CLOSE on the client). Messages queued before stay readable.
    pub(crate) fn end_recv(&self, result: Result<(), Status>) {
        let mut s = self.lock();
        s.started = true;
        if s.recv_end().is_none() {
            match result {
                Ok(()) if s.inbound.mid_message() => {
                    s.ends().recv = Some(Status::internal(
                        "the server ended the call in the middle of a message",
                    ));
                }
                Ok(()) => s.recv_done = true,
                Err(status) => s.ends().recv = Some(status),
            }
        }
        if !s.send_ended() {
            // Sending on is pointless: say how the call ended.
            match s.recv_end() {
                Some(Err(status)) => {
                    let status = status.clone();
                    s.ends().send = Some(status);
                }
                _ => s.send_refused = true,
            }
        }
        wake(&mut s.recv_waker);
        wake(&mut s.send_waker);
    }

    /// Fails the call on this side: pending reads and sends see `status`, a server handler is
    /// stopped. Returns the bytes dropped from its buffer.
    pub(crate) fn fail(&self, status: Status) -> u32 {
        let mut s = self.lock();
        let dropped = self.discard_inbound(&mut s);
        s.started = true;
        let send_ended = s.send_ended();
        let ends = s.ends();
        if ends.recv.is_none() {
            ends.recv = Some(status.clone());
        }
        if !send_ended {
            ends.send = Some(status.clone());
        }
        if ends.abort.is_none() {
            ends.abort = Some(status);
        }
        wake(&mut s.recv_waker);
        wake(&mut s.send_waker);
        wake(&mut s.task_waker);
        dropped
    }

    /// Drops what is buffered once the stream left the table, and ends its receive side, so a
    /// DATA frame the reader routed here just before is dropped instead of buffered for no one.
    /// Returns the bytes dropped.
    pub(crate) fn discard(&self) -> u32 {
        let mut s = self.lock();
        if s.recv_end().is_none() {
            s.ends().recv = Some(Status::cancelled("the call has ended"));
        }
        self.discard_inbound(&mut s)
    }

    /// If the receiving side has ended, drops what is left unread and returns its size.
    pub(crate) fn discard_if_ended(&self) -> Option<u32> {
        let mut s = self.lock();
        s.recv_end().is_some().then(|| self.discard_inbound(&mut s))
    }

    /// Drops everything that arrived, a reader's [`Run`] included. Returns the bytes dropped
    /// from the buffer.
    fn discard_inbound(&self, s: &mut State) -> u32 {
        self.discarded.store(true, Ordering::Relaxed);
        s.inbound.discard()
    }

    /// Whether what arrived was dropped unread: a [`Run`] taken before must not be read on.
    #[inline]
    pub(crate) fn discarded(&self) -> bool {
        self.discarded.load(Ordering::Relaxed)
    }

    /// Bytes of send credit held now.
    #[cfg(test)]
    pub(crate) fn send_credit(&self) -> u32 {
        self.lock().send_credit
    }

    /// Why the handler was stopped, if it was (server side).
    pub(crate) fn abort_status(&self) -> Option<Status> {
        self.lock().abort().cloned()
    }

    /// The next message, the end of the peer's side (`None`), or why the call failed.
    pub(crate) fn poll_recv(&self, cx: &mut TaskContext<'_>) -> Polled {
        self.poll_take(cx, 0, |inbound| {
            inbound
                .pop()
                .map(|(body, _)| (crate::message::PREFIX_LEN + body.len(), body))
        })
    }

    /// Like [`poll_recv`](Self::poll_recv), for a reader of many messages: refills `run` with
    /// the next run of whole messages, all taken with one lock. The run's previous messages
    /// were read: their window is released now that the reader comes back for more.
    pub(crate) fn poll_run(&self, cx: &mut TaskContext<'_>, run: &mut Run) -> Polled<()> {
        self.poll_take(cx, run.take_owed(), |inbound| {
            inbound.take_run(run).map(|taken| (taken, ()))
        })
    }

    /// Polls for what `take` takes from the queue: with `taken` bytes, it is the next item.
    /// `release` bytes of window are released first.
    fn poll_take<T>(
        &self,
        cx: &mut TaskContext<'_>,
        release: u32,
        take: impl FnOnce(&mut Inbound) -> Option<(usize, T)>,
    ) -> Polled<T> {
        let mut s = self.lock();
        // Once the peer's side ended, no more credit is due (and a discard reset the books).
        let open = s.recv_end().is_none();
        if open {
            s.inbound.release(release);
        }
        // Messages that arrived before the end come first, even before an error (a local
        // failure discards them, so they are only ever the peer's).
        if let Some((taken, item)) = take(&mut s.inbound) {
            return Polled {
                poll: Poll::Ready(Some(Ok(item))),
                taken: taken as u32,
                grant: if open { s.inbound.take_grant() } else { None },
            };
        }
        let poll = match s.recv_end() {
            Some(Err(status)) => Poll::Ready(Some(Err(status.clone()))),
            Some(Ok(())) => Poll::Ready(None),
            None => Poll::Pending,
        };
        if poll.is_ready() {
            return Polled {
                poll,
                taken: 0,
                grant: None,
            };
        }
        // Nothing to read: the message being assembled is what the application waits for.
        s.inbound.wait();
        let grant = s.inbound.take_grant();
        set_waker(&mut s.recv_waker, cx);
        Polled {
            poll: Poll::Pending,
            taken: 0,
            grant,
        }
    }

    /// Ready once the server answered in any way (client side).
    pub(crate) fn poll_started(&self, cx: &mut TaskContext<'_>) -> Poll<()> {
        let mut s = self.lock();
        if s.started {
            Poll::Ready(())
        } else {
            set_waker(&mut s.recv_waker, cx);
            Poll::Pending
        }
    }

    /// The call's failure, if it failed before delivering any message (client side: lets
    /// `.await` on a streaming call return the server's error instead of a stream).
    pub(crate) fn early_error(&self) -> Option<Status> {
        let s = self.lock();
        match s.recv_end() {
            Some(Err(status)) if !s.inbound.has_message() => Some(status.clone()),
            _ => None,
        }
    }

    /// Takes up to `want` bytes of send credit, waiting while there is none.
    pub(crate) fn poll_credit(
        &self,
        cx: &mut TaskContext<'_>,
        want: u32,
    ) -> Poll<Result<u32, Status>> {
        let mut s = self.lock();
        if let Some(status) = s.send_end() {
            return Poll::Ready(Err(status));
        }
        if s.send_credit == 0 {
            set_waker(&mut s.send_waker, cx);
            return Poll::Pending;
        }
        let n = want.min(s.send_credit);
        s.send_credit -= n;
        Poll::Ready(Ok(n))
    }

    /// Takes exactly `want` bytes of credit if they are there now.
    pub(crate) fn try_credit(&self, want: u32) -> bool {
        let mut s = self.lock();
        if !s.send_ended() && s.send_credit >= want {
            s.send_credit -= want;
            true
        } else {
            false
        }
    }

    /// Gives back credit taken but not used.
    pub(crate) fn return_credit(&self, n: u32) {
        let mut s = self.lock();
        s.send_credit = s.send_credit.saturating_add(n).min(MAX_CREDIT);
    }

    /// Adds credit granted by the peer. `Err` if the peer pushed the window past its maximum.
    pub(crate) fn add_credit(&self, increment: u32) -> Result<(), ()> {
        let mut s = self.lock();
        match s.send_credit.checked_add(increment) {
            Some(credit) if credit <= MAX_CREDIT => {
                s.send_credit = credit;
                wake(&mut s.send_waker);
                Ok(())
            }
            _ => Err(()),
        }
    }

    /// Why the handler must stop, if it must (server side). Registers the task to be woken.
    pub(crate) fn poll_abort(&self, cx: &mut TaskContext<'_>) -> Poll<Status> {
        let mut s = self.lock();
        match s.abort() {
            Some(status) => Poll::Ready(status.clone()),
            None => {
                set_waker(&mut s.task_waker, cx);
                Poll::Pending
            }
        }
    }
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(w) = waker.take() {
        w.wake();
    }
}

fn set_waker(slot: &mut Option<Waker>, cx: &TaskContext<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use std::task::Waker;

    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut wire = (len as u32).to_be_bytes().to_vec();
        wire.extend(std::iter::repeat_n(9u8, len));
        wire
    }

    fn recv(stream: &Stream) -> Poll<Option<Result<Bytes, Status>>> {
        stream
            .poll_recv(&mut TaskContext::from_waker(Waker::noop()))
            .poll
    }

    #[test]
    fn a_message_larger_than_the_window_completes_while_the_reader_waits() {
        let stream = Stream::new(1, 16, 1024, 0);
        assert!(recv(&stream).is_pending(), "the reader waits");
        let wire = message(100);
        let (mut sent, mut credit) = (0, 16usize);
        while sent < wire.len() {
            let n = credit.min(wire.len() - sent);
            assert!(
                n > 0,
                "the sender stalled after {sent} bytes: no credit came back"
            );
            let pushed = stream
                .push(Bytes::copy_from_slice(&wire[sent..sent + n]), false)
                .unwrap();
            sent += n;
            credit = credit - n + pushed.grant.unwrap_or(0) as usize;
        }
        match recv(&stream) {
            Poll::Ready(Some(Ok(body))) => assert_eq!(body.len(), 100),
            other => panic!("{other:?}"),
        }
    }

    fn run(stream: &Stream, run: &mut Run) -> Polled<()> {
        stream.poll_run(&mut TaskContext::from_waker(Waker::noop()), run)
    }

    #[test]
    fn a_run_releases_its_window_when_the_reader_comes_back_for_more() {
        let stream = Stream::new(1, 40, 1024, 0);
        let mut wire = message(6);
        wire.extend(message(6));
        wire.extend(message(6)); // 30 bytes, three messages
        stream.push(Bytes::from(wire), false).unwrap();
        let mut taken = Run::default();
        let polled = run(&stream, &mut taken);
        assert!(matches!(polled.poll, Poll::Ready(Some(Ok(())))));
        assert_eq!(
            (polled.taken, polled.grant),
            (30, None),
            "taken, not released"
        );
        taken.read_next(|body| assert_eq!(body.len(), 6));
        // A reader that stopped here still holds the peer to one window.
        assert!(matches!(
            stream.push(Bytes::from(message(7)), false),
            Err(InboundError::FlowControl { .. })
        ));

        let stream = Stream::new(1, 40, 1024, 0);
        let mut wire = message(6);
        wire.extend(message(6));
        stream.push(Bytes::from(wire), false).unwrap();
        let mut taken = Run::default();
        assert_eq!(run(&stream, &mut taken).grant, None);
        while !taken.is_empty() {
            taken.read_next(|_| ());
        }
        let polled = run(&stream, &mut taken);
        assert!(polled.poll.is_pending());
        assert_eq!(
            polled.grant,
            Some(20),
            "released as the reader asks for more"
        );
    }

    #[test]
    fn messages_before_a_final_error_are_delivered_first() {
        let stream = Stream::new(1, 1024, 1024, 0);
        let mut wire = message(1);
        wire.extend(message(2));
        stream.push(Bytes::from(wire), false).unwrap();
        stream.end_recv(Err(Status::aborted("late failure")));
        for len in [1, 2] {
            match recv(&stream) {
                Poll::Ready(Some(Ok(body))) => assert_eq!(body.len(), len),
                other => panic!("{other:?}"),
            }
        }
        match recv(&stream) {
            Poll::Ready(Some(Err(status))) => assert_eq!(status.code(), crate::Code::Aborted),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_end_in_the_middle_of_a_message_is_an_error() {
        let stream = Stream::new(1, 1024, 1024, 0);
        stream
            .push(Bytes::from(message(10)[..7].to_vec()), false)
            .unwrap();
        stream.end_recv(Ok(()));
        match recv(&stream) {
            Poll::Ready(Some(Err(status))) => assert_eq!(status.code(), crate::Code::Internal),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_local_failure_discards_what_was_queued() {
        let stream = Stream::new(1, 1024, 1024, 0);
        stream.push(Bytes::from(message(3)), false).unwrap();
        assert_eq!(
            stream.fail(Status::cancelled("gone")),
            7,
            "the queued bytes are dropped"
        );
        assert!(matches!(recv(&stream), Poll::Ready(Some(Err(_)))));
    }
}
