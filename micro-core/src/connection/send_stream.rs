//! Sending a whole stream of messages: every item that is ready goes into one payload, so a
//! fast producer costs one credit check, one queue push and one frame per batch, not per item.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use bytes::BytesMut;
use futures::Stream;
use pin_project_lite::pin_project;
use serde::Serialize;

use super::Shared;
use crate::frame::Frame;
use crate::stream::Stream as CallStream;
use crate::{Status, message};

/// A batch is sent once it holds this many bytes, or when no further item is ready.
const BATCH_BYTES: usize = 64 * 1024;
/// What a new batch's buffer starts with.
const BATCH_START: usize = 8 * 1024;
/// A batch cut short by the task's cooperative budget while more items were ready is kept
/// for the next poll, until it holds this many bytes.
const HOLD_BYTES: usize = 16 * 1024;

/// Why sending a stream stopped early.
#[derive(Debug)]
pub(crate) enum SendStreamError {
    /// An item was an error, did not encode, or was over the peer's size limit. The items
    /// before it were sent.
    Item(Status),
    /// The call or the connection ended; nothing more can be sent.
    Ended(Status),
}

/// A batch waiting for credit, and what to do once it is sent: `Ok(true)` when the stream
/// ended, `Ok(false)` to go on, `Err` to stop.
type Sending = Pin<Box<dyn Future<Output = Result<bool, SendStreamError>> + Send>>;

/// Why a [`SendStream`] stopped between two polls with a batch in hand.
enum Paused {
    /// The batch waits for credit.
    Sending(Sending),
    /// The batch was cut short by the task's cooperative budget and waits for more items.
    Held(BytesMut),
}

pin_project! {
    /// The future of [`send_stream`].
    ///
    /// It lives as long as a streaming call (in every idle one), so it keeps only the
    /// connection, the stream, the items and, while a batch waits for credit or for more
    /// items, a box holding that batch.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct SendStream<C, S> {
        conn: C,
        stream: Arc<CallStream>,
        paused: Option<Box<Paused>>,
        #[pin]
        items: S,
    }
}

/// Sends every item of `items` on `stream`, in order.
///
/// # Cancel safety
///
/// As [`Shared::send_message`]: dropping the future while a batch is partly queued ends the
/// call.
pub(crate) fn send_stream<C, S, T>(conn: C, stream: Arc<CallStream>, items: S) -> SendStream<C, S>
where
    C: Deref<Target = Shared> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<T, Status>>,
    T: Serialize,
{
    SendStream {
        conn,
        stream,
        paused: None,
        items,
    }
}

impl<C, S, T> Future for SendStream<C, S>
where
    C: Deref<Target = Shared> + Clone + Send + Sync + 'static,
    S: Stream<Item = Result<T, Status>>,
    T: Serialize,
{
    type Output = Result<(), SendStreamError>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Some(paused) = this.paused
                && let Paused::Sending(sending) = &mut **paused
            {
                let ended = ready!(sending.as_mut().poll(cx));
                *this.paused = None;
                if ended? {
                    return Poll::Ready(Ok(()));
                }
            }
            let (mut batch, mut failed) = match this.paused.take().map(|paused| *paused) {
                Some(Paused::Held(held)) => (held, None),
                Some(Paused::Sending(_)) => unreachable!("a finished send is cleared above"),
                None => {
                    // Waiting is for a batch's first item only.
                    let Some(first) = ready!(this.items.as_mut().poll_next(cx)) else {
                        return Poll::Ready(Ok(()));
                    };
                    // Room for a typical batch up front, instead of doubling from nothing.
                    let mut batch = BytesMut::with_capacity(BATCH_START);
                    let failed = this.conn.encode_item(&mut batch, first).err();
                    (batch, failed)
                }
            };
            let (mut ended, mut waiting, mut out_of_budget) = (false, false, false);
            // Then whatever is ready now, without waiting, and while the task's cooperative
            // budget lasts: a stream that is always ready must not keep its thread from the
            // other calls on it.
            while failed.is_none() && batch.len() < BATCH_BYTES {
                if batch.len() >= BATCH_START / 2 && batch.capacity() < BATCH_BYTES {
                    // Items half filled the first buffer without waiting: grow straight to a
                    // full batch (with room for the item that crosses its end), one copy of
                    // 4 KiB instead of the 56 KiB that doubling to 64 copies.
                    batch.reserve(BATCH_BYTES + BATCH_START - batch.len());
                }
                let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) else {
                    (waiting, out_of_budget) = (true, true);
                    break;
                };
                coop.made_progress();
                match this.items.as_mut().poll_next(cx) {
                    Poll::Ready(Some(item)) => {
                        failed = this.conn.encode_item(&mut batch, item).err();
                    }
                    Poll::Ready(None) => {
                        ended = true;
                        break;
                    }
                    Poll::Pending => {
                        // The items (another call's messages, say) may have run out of the
                        // same budget, with more ready.
                        (waiting, out_of_budget) =
                            (true, !tokio::task::coop::has_budget_remaining());
                        break;
                    }
                }
            }
            if out_of_budget && batch.len() < HOLD_BYTES {
                // Stopped by the budget with more ready: a small batch waits for what the next
                // polls add. Sent now, each yield's 128 small items would be a write of their
                // own, a few KiB, which costs the kernel twice per message what an 8 KiB write
                // does (W3, measured with perf); held, the other calls still get their turn at
                // every yield. The task is polled again soon: the budget deferred its wake, and
                // a yield (deferred the same way, once) makes sure of it when the items ran out
                // instead, since what they wait on may not be tokio's and arrange nothing.
                let _ = std::pin::pin!(tokio::task::yield_now()).poll(cx);
                *this.paused = Some(Box::new(Paused::Held(batch)));
                return Poll::Pending;
            }
            let after = move || match failed {
                Some(status) => Err(SendStreamError::Item(status)),
                None => Ok(ended),
            };
            if batch.is_empty() {
                if after()? {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // A fresh buffer per batch: an idle call must not keep its largest batch alive.
            let batch = batch.freeze();
            let len = batch.len();
            if len <= this.conn.peer.max_frame_size as usize
                && this.conn.try_take_credit(this.stream, len as u32)
            {
                // The usual case: the credit is there, the batch goes out as one frame now.
                this.conn.push(Frame::Data {
                    id: this.stream.id,
                    end_stream: false,
                    data: batch,
                });
                if after()? {
                    return Poll::Ready(Ok(()));
                }
                if waiting {
                    // The items' waker is registered already.
                    return Poll::Pending;
                }
                continue;
            }
            let (conn, stream) = (this.conn.clone(), this.stream.clone());
            *this.paused = Some(Box::new(Paused::Sending(Box::pin(async move {
                conn.send_data(&stream, batch, false)
                    .await
                    .map_err(SendStreamError::Ended)?;
                after()
            }))));
        }
    }
}

impl Shared {
    /// Appends one item to the batch, or says why it cannot be sent.
    fn encode_item<T: Serialize>(
        &self,
        batch: &mut BytesMut,
        item: Result<T, Status>,
    ) -> Result<(), Status> {
        let start = batch.len();
        let len = message::encode_into(batch, &item?)?;
        if let Err(too_large) = self.check_len(len) {
            batch.truncate(start);
            return Err(too_large);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use bytes::Bytes;
    use futures::StreamExt;

    use super::*;
    use crate::Metadata;
    use crate::connection::{Out, test_client};

    /// DATA payload sizes on the writer's queue, in order.
    fn data_sizes(conn: &Shared) -> Vec<usize> {
        let mut sizes = Vec::new();
        while let Some(out) = conn.outbox.try_pop() {
            if let Out::Frame(Frame::Data { data, .. }) = out {
                sizes.push(data.len());
            }
        }
        sizes
    }

    /// `n` items that count against the task's budget themselves, as another call's messages
    /// do.
    fn budgeted(mut n: u32) -> impl futures::Stream<Item = Result<u32, Status>> {
        futures::stream::poll_fn(move |cx| {
            if n == 0 {
                return Poll::Ready(None);
            }
            let coop = ready!(tokio::task::coop::poll_proceed(cx));
            coop.made_progress();
            n -= 1;
            Poll::Ready(Some(Ok(n)))
        })
    }

    /// Bytes of the items `0..n` as messages.
    fn encoded_len(n: u32) -> usize {
        (0..n).map(|i| message::encode(&i).unwrap().len()).sum()
    }

    /// A client connection with one open call, whose peer grants 8 MiB of credit.
    fn open_call() -> (Arc<Shared>, Arc<CallStream>) {
        let conn = test_client(1 << 20, 8 << 20);
        let (stream, _) = conn
            .open("S.m", None, Metadata::new(), Bytes::new(), false)
            .unwrap();
        (conn, stream)
    }

    async fn sent_sizes(items: impl futures::Stream<Item = Result<u32, Status>>) -> Vec<usize> {
        let (conn, stream) = open_call();
        send_stream(conn.clone(), stream, items).await.unwrap();
        data_sizes(&conn)
    }

    #[tokio::test]
    async fn items_that_run_out_of_budget_themselves_are_batched_too() {
        let sizes = sent_sizes(budgeted(20_000)).await;
        let (_, full) = sizes.split_last().unwrap();
        assert!(full.iter().all(|&n| n >= HOLD_BYTES), "{sizes:?}");
        assert_eq!(sizes.iter().sum::<usize>(), encoded_len(20_000));
    }

    /// One item, then (second poll) uses up the task's budget without deferring a wake and
    /// waits on something that never wakes it.
    fn then_stuck() -> impl futures::Stream<Item = Result<u32, Status>> {
        let mut polls = 0;
        futures::stream::poll_fn(move |cx| {
            polls += 1;
            if polls == 1 {
                return Poll::Ready(Some(Ok(7)));
            }
            if polls == 2 {
                while tokio::task::coop::has_budget_remaining() {
                    if let Poll::Ready(coop) = tokio::task::coop::poll_proceed(cx) {
                        coop.made_progress();
                    }
                }
            }
            Poll::Pending
        })
    }

    #[tokio::test]
    async fn a_batch_held_when_the_items_wait_for_good_is_still_sent() {
        let (conn, stream) = open_call();
        let sender = tokio::spawn(send_stream(conn.clone(), stream, then_stuck()));
        let sent = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            loop {
                let sizes = data_sizes(&conn);
                if !sizes.is_empty() {
                    return sizes;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the held item was never sent");
        assert_eq!(sent, [message::encode(&7u32).unwrap().len()]);
        sender.abort();
    }

    #[tokio::test]
    async fn an_always_ready_stream_yields_often_but_sends_full_batches() {
        let (conn, stream) = open_call();
        let items = 20_000u32;
        let mut send = std::pin::pin!(send_stream(
            conn.clone(),
            stream,
            futures::stream::iter(0..items).map(Ok::<_, Status>),
        ));
        let mut polls = 0;
        poll_fn(|cx| {
            polls += 1;
            send.as_mut().poll(cx)
        })
        .await
        .unwrap();
        // The task's cooperative budget stopped it every 128 items...
        assert!(polls > 100, "{polls} polls");
        // ...but what it sent went out in batches of at least HOLD_BYTES, except the last.
        let sizes = data_sizes(&conn);
        let (last, full) = sizes.split_last().unwrap();
        assert!(full.iter().all(|&n| n >= HOLD_BYTES), "{sizes:?}");
        // Every item arrived, in order (each is a 4-byte prefix and a MessagePack integer).
        let total: usize = sizes.iter().sum();
        assert_eq!((total, *last > 0), (encoded_len(items), true));
    }
}
