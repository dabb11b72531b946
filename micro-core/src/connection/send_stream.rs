//! Sending a whole stream of messages: every item that is ready goes into one payload, so a
//! fast producer costs one credit check, one queue push and one frame per batch, not per item.

use std::pin::pin;

use bytes::BytesMut;
use futures::{FutureExt, Stream, StreamExt};
use serde::Serialize;

use super::Shared;
use crate::stream::Stream as CallStream;
use crate::{Status, message};

/// A batch is sent once it holds this many bytes, or when no further item is ready.
const BATCH_BYTES: usize = 64 * 1024;
/// What a new batch's buffer starts with.
const BATCH_START: usize = 8 * 1024;

/// Why sending a stream stopped early.
#[derive(Debug)]
pub(crate) enum SendStreamError {
    /// An item was an error, did not encode, or was over the peer's size limit. The items
    /// before it were sent.
    Item(Status),
    /// The call or the connection ended; nothing more can be sent.
    Ended(Status),
}

impl Shared {
    /// Sends every item of `items` on `stream`, in order.
    pub(crate) async fn send_stream<T, S>(
        &self,
        stream: &CallStream,
        items: S,
    ) -> Result<(), SendStreamError>
    where
        T: Serialize,
        S: Stream<Item = Result<T, Status>>,
    {
        let mut items = pin!(items);
        let mut batch = BytesMut::new();
        loop {
            let Some(first) = items.next().await else {
                return Ok(());
            };
            // Room for a typical batch up front, instead of doubling from nothing.
            batch.reserve(BATCH_START);
            let mut failed = self.encode_item(&mut batch, first).err();
            let mut ended = false;
            // Then whatever is ready now, without waiting: waiting is for a batch's first item.
            while failed.is_none() && batch.len() < BATCH_BYTES {
                match items.next().now_or_never() {
                    Some(Some(item)) => failed = self.encode_item(&mut batch, item).err(),
                    Some(None) => {
                        ended = true;
                        break;
                    }
                    None => break,
                }
            }
            if !batch.is_empty() {
                // A fresh buffer per batch: an idle call must not keep its largest batch alive.
                self.send_data(stream, std::mem::take(&mut batch).freeze(), false)
                    .await
                    .map_err(SendStreamError::Ended)?;
            }
            if let Some(status) = failed {
                return Err(SendStreamError::Item(status));
            }
            if ended {
                return Ok(());
            }
        }
    }

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
