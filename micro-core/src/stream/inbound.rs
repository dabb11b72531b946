//! The receive side of one stream: finds the messages in DATA payloads and keeps the
//! flow-control books.
//!
//! A payload's whole messages are queued as one entry, as they arrived; a message split across
//! payloads is assembled into an entry of its own. A unary reader takes one message at a time
//! ([`Inbound::pop`]), a streaming reader a whole entry ([`Inbound::take_run`]).
//!
//! Every byte a peer sends uses window. It is *released* when the application takes the message
//! that holds it (a streaming reader: when it comes back for more after its run), or, while the
//! application is waiting with nothing queued, when it belongs to the message being assembled,
//! so a message larger than the window still gets through. A stream whose application does not
//! read holds at most one window; one that waits for a large message, at most that message.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

use super::run::Run;
use crate::message::{self, PREFIX_LEN};

/// A peer's DATA that this stream cannot take.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InboundError {
    /// The peer sent more than the window it was granted: a protocol error.
    FlowControl { len: usize, available: u32 },
    /// A message's length prefix exceeds the limit.
    TooLarge { len: u32, max: u32 },
    /// DATA after the peer's own END_STREAM: a protocol error.
    AfterEnd,
}

impl InboundError {
    /// What the error means for stream `id`: `Ok(status)` fails that stream only (the
    /// connection lives on), `Err(reason)` is a protocol error that ends the connection.
    pub(crate) fn judge(self, id: u32) -> Result<crate::Status, String> {
        match self {
            InboundError::FlowControl { len, available } => Err(format!(
                "stream {id} sent {len} bytes, over its window of {available}"
            )),
            InboundError::AfterEnd => Err(format!("DATA on stream {id} after its END_STREAM")),
            InboundError::TooLarge { len, max } => Ok(crate::Status::resource_exhausted(format!(
                "a message of {len} bytes exceeds the limit of {max}"
            ))),
        }
    }
}

/// One or more whole messages, each with its length prefix, as they arrived: a run of messages
/// from one DATA payload stays one entry, and each is sliced off as the application takes it.
#[derive(Debug)]
struct Queued {
    wire: Bytes,
    /// Wire bytes of these messages not yet released: all of them, except in a single message
    /// assembled while the application waited for it.
    owed: u32,
}

#[derive(Debug, Default)]
enum Partial {
    #[default]
    None,
    Prefix {
        bytes: [u8; PREFIX_LEN],
        have: u8,
        owed: u32,
    },
    // Boxed: only a message split across frames needs it, and every stream holds a `Partial`.
    Body(Box<Body>),
}

/// A message being assembled, length prefix included.
#[derive(Debug)]
struct Body {
    buf: BytesMut,
    /// Its wire length: prefix and body.
    expected: usize,
    /// Wire bytes of this message not yet released.
    owed: u32,
}

/// Queued messages and window accounting of one stream.
#[derive(Debug)]
pub(crate) struct Inbound {
    queue: VecDeque<Queued>,
    partial: Partial,
    window: u32,
    max_message: u32,
    /// Bytes received and not yet granted back to the peer.
    outstanding: u32,
    /// Bytes released and not yet granted back.
    released: u32,
    /// The application found nothing to read and waits.
    waiting: bool,
    /// Wire bytes held in queued and partial messages (memory, for statistics).
    held: u32,
}

impl Inbound {
    pub(crate) fn new(window: u32, max_message: u32) -> Inbound {
        Inbound {
            queue: VecDeque::new(),
            partial: Partial::None,
            window,
            max_message,
            outstanding: 0,
            released: 0,
            waiting: false,
            held: 0,
        }
    }

    /// Takes the peer's last payload when it is exactly one message that nothing is queued
    /// before, within the window and the size limit: the message comes back for the
    /// application to take directly, and nothing is held. Otherwise `data` comes back as it
    /// was, for [`push`](Self::push) to queue or to judge.
    pub(crate) fn take_sole(&mut self, data: Bytes) -> Result<Bytes, Bytes> {
        let nothing_before = self.queue.is_empty() && matches!(self.partial, Partial::None);
        let within_window = data.len() <= (self.window - self.outstanding) as usize;
        let whole = message::body_len(&data).is_some_and(|len| {
            self.check_len(len).is_ok() && PREFIX_LEN + len as usize == data.len()
        });
        if !(nothing_before && within_window && whole) {
            return Err(data);
        }
        let mut body = data;
        body.advance(PREFIX_LEN);
        Ok(body)
    }

    /// Takes a DATA payload. Returns how many bytes were released at once (for the connection's
    /// books). After an error the stream is unusable: the caller discards it.
    pub(crate) fn push(&mut self, data: Bytes) -> Result<u32, InboundError> {
        let available = self.window - self.outstanding;
        if data.len() > available as usize {
            return Err(InboundError::FlowControl {
                len: data.len(),
                available,
            });
        }
        self.outstanding += data.len() as u32;
        self.held += data.len() as u32;
        let before = self.released;
        match self.cut(data) {
            Ok(()) => Ok(self.released - before),
            Err(err) => {
                // Not reported to the caller, so `discard` must count these bytes.
                self.released = before;
                Err(err)
            }
        }
    }

    fn cut(&mut self, mut data: Bytes) -> Result<(), InboundError> {
        while !data.is_empty() {
            match &mut self.partial {
                Partial::None => {
                    let whole = self.whole_messages(&data)?;
                    if whole > 0 {
                        // The run of whole messages is queued as it came: one entry, and no
                        // slicing until the application takes each.
                        let wire = if whole == data.len() {
                            std::mem::take(&mut data)
                        } else {
                            data.split_to(whole)
                        };
                        self.enqueue(Queued {
                            wire,
                            owed: whole as u32,
                        });
                        continue;
                    }
                    let n = data.len();
                    if n < PREFIX_LEN {
                        let mut bytes = [0; PREFIX_LEN];
                        bytes[..n].copy_from_slice(&data);
                        self.partial = Partial::Prefix {
                            bytes,
                            have: n as u8,
                            owed: 0,
                        };
                    } else {
                        let len = message::body_len(&data).expect("a whole prefix");
                        // Room for as much again as arrived (memory follows what arrives, at
                        // most doubling it), so a message just over one frame is not copied
                        // again when its last bytes come.
                        let expected = PREFIX_LEN + len as usize;
                        let room = (2 * n).max(16 << 10);
                        let mut buf = BytesMut::with_capacity(expected.min(room));
                        buf.extend_from_slice(&data);
                        self.partial = Partial::Body(Box::new(Body {
                            buf,
                            expected,
                            owed: 0,
                        }));
                    }
                    data.clear();
                    self.hold(n);
                }
                Partial::Prefix { bytes, have, .. } => {
                    let had = *have as usize;
                    let n = (PREFIX_LEN - had).min(data.len());
                    bytes[had..had + n].copy_from_slice(&data[..n]);
                    *have += n as u8;
                    data.advance(n);
                    if had + n == PREFIX_LEN {
                        let len = message::body_len(bytes).expect("a whole prefix");
                        let Partial::Prefix { owed, bytes, .. } = std::mem::take(&mut self.partial)
                        else {
                            unreachable!()
                        };
                        self.partial = Partial::Body(Box::new(Body {
                            buf: BytesMut::from(&bytes[..]),
                            expected: PREFIX_LEN + len as usize,
                            owed,
                        }));
                        self.check_len(len)?;
                    }
                    self.hold(n);
                }
                Partial::Body(body) => {
                    let Body { buf, expected, .. } = &mut **body;
                    let n = (*expected - buf.len()).min(data.len());
                    if buf.capacity() - buf.len() < n {
                        // Grow with what arrives, not with what the prefix promised.
                        let room = (*expected - buf.len()).min(buf.len().max(16 << 10));
                        buf.reserve(room.max(n));
                    }
                    buf.extend_from_slice(&data[..n]);
                    data.advance(n);
                    self.hold(n);
                }
            }
            self.complete_partial();
        }
        Ok(())
    }

    /// The wire length of the whole messages at the start of `data`, each length prefix
    /// checked against the limit, the prefix of a message cut short included.
    fn whole_messages(&self, data: &[u8]) -> Result<usize, InboundError> {
        let mut end = 0;
        while let Some(len) = message::body_len(&data[end..]) {
            self.check_len(len)?;
            let total = PREFIX_LEN + len as usize;
            if data.len() - end < total {
                break;
            }
            end += total;
        }
        Ok(end)
    }

    /// Accounts `n` bytes that went into the partial message: released now if the application
    /// is waiting for that message, owed otherwise.
    fn hold(&mut self, n: usize) {
        if self.queue.is_empty() && self.waiting {
            self.released += n as u32;
        } else {
            match &mut self.partial {
                Partial::Prefix { owed, .. } => *owed += n as u32,
                Partial::Body(body) => body.owed += n as u32,
                Partial::None => unreachable!("hold without a partial message"),
            }
        }
    }

    fn complete_partial(&mut self) {
        if let Partial::Body(body) = &self.partial
            && body.buf.len() == body.expected
        {
            let Partial::Body(body) = std::mem::take(&mut self.partial) else {
                unreachable!()
            };
            let Body { buf, owed, .. } = *body;
            self.enqueue(Queued {
                wire: buf.freeze(),
                owed,
            });
        }
    }

    fn enqueue(&mut self, queued: Queued) {
        if self.queue.capacity() == 0 {
            // Room for one message, not the four a first push reserves: most streams hold one
            // at a time (a call's arguments), and an idle stream keeps this buffer.
            self.queue.reserve_exact(1);
        }
        self.queue.push_back(queued);
    }

    fn check_len(&self, len: u32) -> Result<(), InboundError> {
        if len > self.max_message {
            Err(InboundError::TooLarge {
                len,
                max: self.max_message,
            })
        } else {
            Ok(())
        }
    }

    /// Takes the next complete message. Returns it with the bytes this released.
    pub(crate) fn pop(&mut self) -> Option<(Bytes, u32)> {
        let front = self.queue.front_mut()?;
        let total = PREFIX_LEN + message::body_len(&front.wire).expect("a whole message") as usize;
        let (mut body, owed) = if total == front.wire.len() {
            // The entry's last message: it takes the entry's bytes and what they still owe.
            let Queued { wire, owed } = self.queue.pop_front().expect("a front entry");
            (wire, owed)
        } else {
            front.owed -= total as u32;
            (front.wire.split_to(total), total as u32)
        };
        body.advance(PREFIX_LEN);
        self.waiting = false;
        self.held -= total as u32;
        self.released += owed;
        Some((body, owed))
    }

    /// Moves every message of the front entry (one DATA payload's run, or one reassembled
    /// message) into a streaming reader's `run`, and returns their size. Their bytes leave the
    /// buffer, but their window is released only when the reader hands the run's `owed` back
    /// to [`release`](Self::release).
    pub(crate) fn take_run(&mut self, run: &mut Run) -> Option<usize> {
        let Queued { wire, owed } = self.queue.pop_front()?;
        self.waiting = false;
        let taken = wire.len();
        self.held -= taken as u32;
        run.fill(wire, owed);
        Some(taken)
    }

    /// Releases the window of a run the reader used up.
    pub(crate) fn release(&mut self, owed: u32) {
        self.released += owed;
    }

    /// The application found no message and will wait: from now on the message being
    /// assembled is what it waits for, so its bytes are released. Returns the bytes released.
    pub(crate) fn wait(&mut self) -> u32 {
        self.waiting = true;
        if !self.queue.is_empty() {
            return 0;
        }
        // An idle stream keeps no queue buffer: most wait far longer than they hold a message.
        if self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
        let released = match &mut self.partial {
            Partial::Prefix { owed, .. } => std::mem::take(owed),
            Partial::Body(body) => std::mem::take(&mut body.owed),
            Partial::None => 0,
        };
        self.released += released;
        released
    }

    /// Whether a complete message is waiting.
    pub(crate) fn has_message(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether the peer stopped in the middle of a message.
    pub(crate) fn mid_message(&self) -> bool {
        !matches!(self.partial, Partial::None)
    }

    /// A credit grant for the peer, once enough bytes were released to be worth a frame.
    pub(crate) fn take_grant(&mut self) -> Option<u32> {
        if self.released > 0 && self.released >= self.window / 2 {
            let grant = std::mem::take(&mut self.released);
            self.outstanding -= grant;
            Some(grant)
        } else {
            None
        }
    }

    /// Drops everything buffered. Returns the wire bytes it held.
    pub(crate) fn discard(&mut self) -> u32 {
        self.queue.clear();
        self.partial = Partial::None;
        self.outstanding = 0;
        self.released = 0;
        std::mem::take(&mut self.held)
    }

    /// Wire bytes held in queued or partial messages.
    #[cfg(test)]
    pub(crate) fn outstanding(&self) -> u32 {
        self.outstanding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(body: &[u8]) -> Vec<u8> {
        let mut v = (body.len() as u32).to_be_bytes().to_vec();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_payloads_whole_messages_are_one_entry_sliced_without_copying() {
        let mut inbound = Inbound::new(1024, 1024);
        let mut wire = msg(b"one");
        wire.extend(msg(b""));
        wire.extend(msg(b"three"));
        wire.extend(&msg(b"four")[..5]);
        let data = Bytes::from(wire);
        assert_eq!(inbound.push(data.clone()).unwrap(), 0);
        assert_eq!(inbound.queue.len(), 1, "three whole messages, one entry");
        assert!(inbound.mid_message());
        let (first, released) = inbound.pop().unwrap();
        assert_eq!((&first[..], released), (&b"one"[..], 7));
        assert_eq!(
            first.as_ptr(),
            data[4..].as_ptr(),
            "a slice of the frame, not a copy"
        );
        assert_eq!(inbound.pop().unwrap(), (Bytes::new(), 4));
        assert_eq!(inbound.pop().unwrap(), (Bytes::from_static(b"three"), 9));
        assert!(inbound.pop().is_none());
        inbound.push(Bytes::from_static(b"our")).unwrap();
        assert_eq!(inbound.pop().unwrap(), (Bytes::from_static(b"four"), 8));
        assert_eq!((inbound.held, inbound.has_message()), (0, false));
    }

    #[test]
    fn messages_split_anywhere_are_reassembled() {
        let mut wire = msg(b"hello world");
        wire.extend(msg(b"!"));
        for cut_a in 0..wire.len() {
            for cut_b in cut_a..wire.len() {
                let mut inbound = Inbound::new(1024, 1024);
                for part in [&wire[..cut_a], &wire[cut_a..cut_b], &wire[cut_b..]] {
                    inbound.push(Bytes::copy_from_slice(part)).unwrap();
                }
                assert_eq!(
                    inbound.pop().unwrap().0,
                    &b"hello world"[..],
                    "cuts {cut_a} {cut_b}"
                );
                assert_eq!(inbound.pop().unwrap().0, &b"!"[..]);
                assert!(!inbound.mid_message());
            }
        }
    }

    #[test]
    fn sending_past_the_window_is_a_flow_control_error() {
        let mut inbound = Inbound::new(10, 1024);
        inbound.push(Bytes::from(msg(b"abc"))).unwrap();
        let err = inbound.push(Bytes::from(msg(b"abc"))).unwrap_err();
        assert_eq!(
            err,
            InboundError::FlowControl {
                len: 7,
                available: 3
            }
        );
    }

    #[test]
    fn oversized_length_prefix_is_refused_before_the_body_arrives() {
        let mut inbound = Inbound::new(1024, 100);
        let err = inbound
            .push(Bytes::from_static(&[0, 0, 0, 101]))
            .unwrap_err();
        assert_eq!(err, InboundError::TooLarge { len: 101, max: 100 });
        let mut inbound = Inbound::new(1024, 100);
        inbound.push(Bytes::from_static(&[0, 0])).unwrap();
        let err = inbound.push(Bytes::from_static(&[1, 0])).unwrap_err();
        assert_eq!(err, InboundError::TooLarge { len: 256, max: 100 });
    }

    #[test]
    fn credit_is_granted_as_the_application_consumes() {
        let mut inbound = Inbound::new(20, 1024);
        inbound.push(Bytes::from(msg(b"0123456"))).unwrap(); // 11 bytes
        assert_eq!(inbound.take_grant(), None, "nothing consumed yet");
        inbound.pop().unwrap();
        assert_eq!(inbound.take_grant(), Some(11));
        assert_eq!(inbound.outstanding(), 0);
    }

    #[test]
    fn a_message_larger_than_the_window_gets_through_when_awaited() {
        let body = vec![7u8; 50];
        let wire = msg(&body);
        let mut inbound = Inbound::new(16, 1024);
        assert_eq!(
            inbound.wait(),
            0,
            "the application waits; nothing is held yet"
        );
        let mut sent = 0;
        while sent < wire.len() {
            let n = (wire.len() - sent).min(16 - inbound.outstanding() as usize);
            assert!(n > 0, "stalled: the peer has no credit");
            inbound
                .push(Bytes::copy_from_slice(&wire[sent..sent + n]))
                .unwrap();
            sent += n;
            while let Some(grant) = inbound.take_grant() {
                assert!(grant > 0);
            }
        }
        assert_eq!(inbound.pop().unwrap().0, &body[..]);
    }

    #[test]
    fn only_exactly_one_message_within_the_window_and_the_limit_is_taken_whole() {
        let mut inbound = Inbound::new(100, 10);
        let body = inbound.take_sole(Bytes::from(msg(b"abc"))).unwrap();
        assert_eq!(body, &b"abc"[..]);
        assert_eq!(inbound.take_sole(Bytes::from(msg(b""))).unwrap(), &b""[..]);
        assert_eq!((inbound.held, inbound.has_message()), (0, false));

        let mut two = msg(b"a");
        two.extend_from_slice(&msg(b"b"));
        let over_limit = msg(&[1; 11]);
        let cut_short = msg(b"abc")[..6].to_vec();
        for data in [two, over_limit, cut_short, vec![0, 0, 0]] {
            let back = inbound.take_sole(Bytes::from(data.clone())).unwrap_err();
            assert_eq!(back, data, "handed back as it was");
        }
        // Over the window: left for `push`, which calls it a flow-control error.
        let mut small = Inbound::new(6, 10);
        let data = Bytes::from(msg(b"abc"));
        let back = small.take_sole(data).unwrap_err();
        assert!(matches!(
            small.push(back),
            Err(InboundError::FlowControl { .. })
        ));
        // Behind a message already queued or being assembled: its place is after it.
        let mut queued = Inbound::new(100, 10);
        queued.push(Bytes::from(msg(b"x")[..3].to_vec())).unwrap();
        assert!(queued.take_sole(Bytes::from(msg(b"y"))).is_err());
    }

    #[test]
    fn a_message_just_over_one_frame_is_assembled_without_growing() {
        let body = vec![3u8; 100_000];
        let wire = msg(&body);
        let mut inbound = Inbound::new(1 << 20, 1 << 20);
        inbound
            .push(Bytes::copy_from_slice(&wire[..wire.len() - 10]))
            .unwrap();
        let Partial::Body(partial) = &inbound.partial else {
            panic!("assembling")
        };
        assert!(
            partial.buf.capacity() >= body.len(),
            "room for the last bytes: {}",
            partial.buf.capacity()
        );
        let start = partial.buf.as_ptr();
        inbound
            .push(Bytes::copy_from_slice(&wire[wire.len() - 10..]))
            .unwrap();
        let (message, _) = inbound.pop().unwrap();
        assert_eq!(
            (message.as_ptr(), &message[..]),
            (start.wrapping_add(PREFIX_LEN), &body[..])
        );
    }

    #[test]
    fn partial_bytes_are_released_only_while_the_application_waits() {
        let mut inbound = Inbound::new(100, 1024);
        let mut wire = msg(b"ab"); // 6 bytes, complete
        wire.extend(&msg(b"0123456789")[..8]); // 8 bytes of a 14-byte message
        assert_eq!(
            inbound.push(Bytes::from(wire)).unwrap(),
            0,
            "nobody waits: nothing released"
        );
        let (_, released) = inbound.pop().unwrap();
        assert_eq!(released, 6, "the complete message only");
        assert_eq!(inbound.wait(), 8, "now the partial message is awaited");
        assert_eq!(
            inbound.push(Bytes::from_static(b"456789")).unwrap(),
            6,
            "released on arrival"
        );
        let (body, released) = inbound.pop().unwrap();
        assert_eq!((&body[..], released), (&b"0123456789"[..], 0));
    }

    #[test]
    fn an_application_that_does_not_read_holds_at_most_a_window() {
        let mut inbound = Inbound::new(64, 1 << 20);
        // A large message arrives while the application is busy: its bytes stay owed, so the
        // peer runs out of credit after one window.
        let wire = msg(&[1u8; 1000]);
        assert_eq!(
            inbound.push(Bytes::copy_from_slice(&wire[..64])).unwrap(),
            0
        );
        assert_eq!(inbound.take_grant(), None);
        let err = inbound
            .push(Bytes::copy_from_slice(&wire[64..65]))
            .unwrap_err();
        assert_eq!(
            err,
            InboundError::FlowControl {
                len: 1,
                available: 0
            }
        );
    }

    #[test]
    fn discard_releases_every_unreleased_byte() {
        let mut inbound = Inbound::new(100, 1024);
        inbound.push(Bytes::from(msg(b"abc"))).unwrap();
        inbound.push(Bytes::from(msg(b"de"))).unwrap();
        inbound.pop().unwrap();
        assert_eq!(inbound.discard(), 6);
    }
}
