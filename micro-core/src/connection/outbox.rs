//! The queue of frames waiting to be written, and the hold under which the reader writes the
//! answers it queued itself.
//!
//! Frames are pushed from anywhere (calls, the reader, keepalive) and normally wake the writer
//! task. While the reader task is being polled it holds the outbox: pushes queue without a
//! wake, and when the poll ends the reader either writes them itself (an answer is among them,
//! see [`Writing::write_now`](super::writer::Writing::write_now)) or wakes the writer once. On a
//! single-threaded runtime the writer would only have run after the reader's poll anyway, so
//! the same frames go out in the same write; what is saved is waking, scheduling and polling a
//! second task for every request answered at once (a fifth of a unary call's instructions on
//! the server, by callgrind).

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use super::Out;
use crate::frame::Frame;

/// Frames for the writer, in order.
#[derive(Debug, Default)]
pub(crate) struct Outbox(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Out>,
    /// The writer task, while it waits for work.
    writer: Option<Waker>,
    /// The writer has work outside the queue: a batch the reader could not finish writing.
    kicked: bool,
    /// The reader is being polled: pushes do not wake the writer (see [`Outbox::hold`]).
    held: bool,
    /// An answer was pushed during the hold.
    answer: bool,
    /// The writer is gone: what is pushed is dropped.
    closed: bool,
}

impl Outbox {
    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `out` for the writer; after the writer ended this does nothing.
    pub(crate) fn push(&self, out: Out) {
        let writer = {
            let mut state = self.state();
            if state.closed {
                return;
            }
            let writer = if state.held {
                state.answer |= matches!(out, Out::Reply(_) | Out::Frame(Frame::Close { .. }));
                None
            } else {
                state.writer.take()
            };
            state.queue.push_back(out);
            writer
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Queues `out` without waking the writer: the caller writes it at once with
    /// [`Writing::write_now`](super::writer::Writing::write_now), which wakes the writer for
    /// whatever it cannot write.
    pub(crate) fn push_unwoken(&self, out: Out) {
        let mut state = self.state();
        if !state.closed {
            state.queue.push_back(out);
        }
    }

    /// The writer task: ready once there is work, from the queue or [`kick`](Self::kick).
    pub(crate) fn poll_work(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.state();
        if !state.queue.is_empty() || std::mem::take(&mut state.kicked) {
            return Poll::Ready(());
        }
        match &mut state.writer {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.state().queue.is_empty()
    }

    /// Moves everything queued into `into`, which is empty: one lock for a whole batch, and
    /// the two buffers trade places, so neither is allocated again.
    pub(crate) fn take_all(&self, into: &mut VecDeque<Out>) {
        debug_assert!(
            into.is_empty(),
            "taken frames go after those not yet written"
        );
        std::mem::swap(&mut self.state().queue, into);
    }

    /// Wakes the writer for work it would not find in the queue.
    pub(crate) fn kick(&self) {
        let writer = {
            let mut state = self.state();
            state.kicked = true;
            state.writer.take()
        };
        if let Some(writer) = writer {
            writer.wake();
        }
    }

    /// Starts the reader's hold: until [`release`](Self::release), pushes do not wake the
    /// writer.
    pub(crate) fn hold(&self) {
        let mut state = self.state();
        state.held = true;
        state.answer = false;
    }

    /// Ends the hold. `true` if an answer was pushed during it: the caller writes what is
    /// queued now. Otherwise the writer is woken if anything was.
    pub(crate) fn release(&self) -> bool {
        let writer = {
            let mut state = self.state();
            state.held = false;
            if std::mem::take(&mut state.answer) {
                return true;
            }
            if state.queue.is_empty() {
                None
            } else {
                state.writer.take()
            }
        };
        if let Some(writer) = writer {
            writer.wake();
        }
        false
    }

    /// The writer ended: drops what is queued, and everything pushed from now on.
    pub(crate) fn close(&self) {
        let dropped = {
            let mut state = self.state();
            state.closed = true;
            std::mem::take(&mut state.queue)
        };
        drop(dropped);
    }

    /// Slots the queue has room for, for tests.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.state().queue.capacity()
    }

    /// Takes the oldest queued item, for tests that read what a connection sent.
    #[cfg(test)]
    pub(crate) fn try_pop(&self) -> Option<Out> {
        self.state().queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use bytes::Bytes;

    use super::*;

    /// A waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn wakes(counter: &Arc<Counter>) -> usize {
        counter.0.load(Ordering::SeqCst)
    }

    fn credit() -> Out {
        Out::Frame(Frame::Credit {
            id: 1,
            increment: 1,
        })
    }

    fn close() -> Out {
        Out::Frame(Frame::Close {
            id: 1,
            status: crate::Status::new(crate::Code::Ok, ""),
            data: Bytes::new(),
        })
    }

    /// An outbox whose writer waits, with the counter of its wakes.
    fn waiting() -> (Outbox, Arc<Counter>) {
        let outbox = Outbox::default();
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        assert!(
            outbox
                .poll_work(&mut Context::from_waker(&waker))
                .is_pending()
        );
        (outbox, counter)
    }

    #[test]
    fn a_push_wakes_the_waiting_writer_once_and_it_finds_the_work() {
        let (outbox, counter) = waiting();
        outbox.push(credit());
        outbox.push(credit());
        assert_eq!(wakes(&counter), 1, "woken by the first push only");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(outbox.poll_work(&mut cx).is_ready());
        let mut taken = VecDeque::new();
        outbox.take_all(&mut taken);
        assert_eq!(taken.len(), 2);
        assert!(outbox.poll_work(&mut cx).is_pending(), "nothing left");
    }

    #[test]
    fn pushes_during_the_hold_wake_the_writer_when_it_ends() {
        let (outbox, counter) = waiting();
        outbox.hold();
        outbox.push(credit());
        assert_eq!(wakes(&counter), 0, "held: no wake");
        assert!(!outbox.release(), "no answer among them: the writer's job");
        assert_eq!(wakes(&counter), 1, "woken by the release");
    }

    #[test]
    fn an_answer_pushed_during_the_hold_is_left_to_the_reader() {
        let (outbox, counter) = waiting();
        outbox.hold();
        outbox.push(credit());
        outbox.push(close());
        assert!(outbox.release(), "an answer: the reader writes it");
        assert_eq!(wakes(&counter), 0);
        // The next hold starts without it.
        outbox.hold();
        assert!(!outbox.release());
        assert_eq!(
            wakes(&counter),
            1,
            "the frames still queued go to the writer"
        );
    }

    #[test]
    fn a_kick_wakes_the_writer_with_an_empty_queue() {
        let (outbox, counter) = waiting();
        outbox.kick();
        assert_eq!(wakes(&counter), 1);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(outbox.poll_work(&mut cx).is_ready());
        assert!(
            outbox.poll_work(&mut cx).is_pending(),
            "one kick, one wake-up"
        );
    }

    #[test]
    fn after_the_writer_ended_pushes_are_dropped() {
        let outbox = Outbox::default();
        outbox.push(credit());
        outbox.close();
        outbox.push(credit());
        assert!(outbox.try_pop().is_none());
    }
}
