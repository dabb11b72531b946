//! [`Run`]: whole messages a streaming reader took from its stream in one go.
//!
//! A stream's queue keeps the messages of one DATA payload together (see
//! [`Inbound`](super::inbound::Inbound)). A reader of many messages takes such a run at once,
//! with one lock of the stream, then decodes its messages one at a time straight from the
//! payload's bytes: no lock, no reference count and no queue entry per message.

use bytes::{Buf, Bytes};

use crate::message::{self, PREFIX_LEN};

/// Whole messages, each with its length prefix, that a reader took and has not read yet.
///
/// Their flow-control bytes are released only when the reader comes back for more (see
/// [`Stream::poll_run`](super::Stream::poll_run)), so a reader that stops reading still holds
/// the peer to one window.
///
/// Boxed, and only from the first run on: every open streaming call holds a `Run`, most of
/// them idle, and the box is kept for the next run rather than allocated per run.
#[derive(Debug, Default)]
pub(crate) struct Run(Option<Box<Taken>>);

#[derive(Debug)]
struct Taken {
    wire: Bytes,
    /// Wire bytes to release once the run is used up.
    owed: u32,
}

impl Run {
    /// Makes the messages in `wire`, owing `owed` bytes of window, the run to read. `wire` is
    /// an entry of the stream's queue, which holds whole messages only.
    pub(crate) fn fill(&mut self, wire: Bytes, owed: u32) {
        debug_assert!(self.is_empty(), "a run is replaced once it is read");
        match &mut self.0 {
            Some(taken) => **taken = Taken { wire, owed },
            None => self.0 = Some(Box::new(Taken { wire, owed })),
        }
    }

    /// Whether every message was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.as_ref().is_none_or(|taken| taken.wire.is_empty())
    }

    /// Reads the next message: `read` gets its body.
    ///
    /// # Panics
    ///
    /// If the run is empty.
    pub(crate) fn read_next<R>(&mut self, read: impl FnOnce(&[u8]) -> R) -> R {
        let wire = &mut self.0.as_mut().expect("a run").wire;
        let end = PREFIX_LEN + message::body_len(wire).expect("a message") as usize;
        let read = read(&wire[PREFIX_LEN..end]);
        wire.advance(end);
        read
    }

    /// Ends the run (read or not): the window bytes it owes, for the stream to release.
    pub(crate) fn take_owed(&mut self) -> u32 {
        match &mut self.0 {
            Some(taken) => {
                taken.wire = Bytes::new();
                std::mem::take(&mut taken.owed)
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_read_in_order_from_the_run_itself() {
        let wire = Bytes::from_static(b"\0\0\0\x03one\0\0\0\0\0\0\0\x05three");
        let mut run = Run::default();
        run.fill(wire.clone(), 7);
        let mut bodies = Vec::new();
        while !run.is_empty() {
            run.read_next(|body| bodies.push((body.to_vec(), body.as_ptr())));
        }
        assert_eq!(
            bodies,
            [
                (b"one".to_vec(), wire[4..].as_ptr()),
                (vec![], wire[11..].as_ptr()),
                (b"three".to_vec(), wire[15..].as_ptr()),
            ],
            "each body read where it arrived"
        );
        assert_eq!(run.take_owed(), 7);
        assert_eq!(run.take_owed(), 0, "owed once");
    }

    #[test]
    fn ending_a_run_early_drops_its_messages() {
        let mut run = Run::default();
        run.fill(Bytes::from_static(b"\0\0\0\x01a\0\0\0\x01b"), 10);
        run.read_next(|_| ());
        assert_eq!(run.take_owed(), 10);
        assert!(run.is_empty());
    }
}
