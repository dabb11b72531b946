//! How the connection's reader and writer tasks learn that it closed.
//!
//! Both wait for their next frame and for the close at once, every time they wait. A
//! `CancellationToken`'s future locks the token's waiter list each time it is polled (nine
//! times per unary call, 3% of its instructions by callgrind); here a poll is an atomic load
//! and, when the task must sleep, a lock-free waker registration.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

/// The connection's closing, as its two tasks see it.
#[derive(Debug, Default)]
pub(crate) struct Closing {
    closed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

/// Which of the connection's tasks waits.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Task {
    Reader,
    Writer,
}

impl Closing {
    /// Marks the connection closed and wakes both tasks.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    /// Completes once the connection is closed. Only `task` may wait on it (one waker each).
    pub(crate) fn wait(&self, task: Task) -> Closed<'_> {
        Closed {
            closing: self,
            task,
        }
    }
}

/// The future of [`Closing::wait`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub(crate) struct Closed<'a> {
    closing: &'a Closing,
    task: Task,
}

impl Future for Closed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let closing = self.closing;
        if closing.closed.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        match self.task {
            Task::Reader => closing.reader.register(cx.waker()),
            Task::Writer => closing.writer.register(cx.waker()),
        }
        // Closed between the check and the registration: its wake may have missed the waker.
        if closing.closed.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn each_task_is_woken_by_the_close() {
        let closing = Arc::new(Closing::default());
        let reader = tokio::spawn({
            let closing = closing.clone();
            async move { closing.wait(Task::Reader).await }
        });
        let writer = tokio::spawn({
            let closing = closing.clone();
            async move { closing.wait(Task::Writer).await }
        });
        tokio::task::yield_now().await;
        assert!(!reader.is_finished() && !writer.is_finished());
        closing.close();
        reader.await.unwrap();
        writer.await.unwrap();
        // And a wait that starts after the close ends at once.
        closing.wait(Task::Reader).await;
    }
}
