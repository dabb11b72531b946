//! The service the `server` target serves: one method of every call kind, each doing what its
//! (fuzzed) request asks within small bounds, deterministically, and never panicking (a panic
//! anywhere aborts the fuzzer, even one micro would catch).

use std::time::Duration;

use futures::{Stream, StreamExt};
use micro::{Code, Context, Status};
use serde::{Deserialize, Serialize};

/// Most items a streaming reply sends per request.
pub const MAX_ITEMS: u32 = 64;
/// Largest reply item, in bytes.
pub const MAX_SIZE: u32 = 4096;
/// Longest a handler sleeps (virtual time).
pub const MAX_SLEEP_MS: u32 = 10_000;

/// What a request asks the handler to do. Every field may be missing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Job {
    /// Replies to send (streaming) before ending.
    #[serde(default)]
    pub count: u32,
    /// Bytes in each reply.
    #[serde(default)]
    pub size: u32,
    /// Milliseconds to wait before each reply.
    #[serde(default)]
    pub sleep_ms: u32,
    /// End with this status code instead of success (0 is success).
    #[serde(default)]
    pub fail: Option<u8>,
}

/// One method of each kind, plus the argument shapes: none but a context, one, several.
#[micro::service]
pub trait Fuzz {
    /// Unary: one reply of `job.size` bytes after `job.sleep_ms`, or `job.fail`.
    async fn unary(&self, job: Job) -> Result<String, Status>;

    /// Unary with two plain arguments (a map on the wire), one of them optional.
    async fn add(&self, a: i64, b: Option<i64>) -> Result<i64, Status>;

    /// Unary reading the call's metadata.
    async fn meta(&self, ctx: &Context, key: String) -> Result<Vec<String>, Status>;

    /// Server streaming: `job.count` replies, then `job.fail` if set.
    async fn items(
        &self,
        job: Job,
    ) -> Result<impl Stream<Item = Result<String, Status>> + Send, Status>;

    /// Client streaming: adds up what the client streams.
    async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;

    /// Bidirectional: every request job is answered with its replies.
    async fn chat(
        &self,
        jobs: impl Stream<Item = Job> + Send + Unpin,
    ) -> Result<impl Stream<Item = Result<String, Status>> + Send, Status>;
}

/// The implementation.
#[derive(Debug, Default)]
pub struct FuzzImpl;

fn failure(code: u8) -> Status {
    Status::new(Code::from_u8(code), "the request asked to fail")
}

fn blob(size: u32) -> String {
    "x".repeat(size.min(MAX_SIZE) as usize)
}

async fn nap(ms: u32) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(u64::from(ms.min(MAX_SLEEP_MS)))).await;
    }
}

/// The replies a job asks for.
fn replies(job: Job) -> impl Stream<Item = Result<String, Status>> + Send {
    let count = job.count.min(MAX_ITEMS);
    futures::stream::unfold(0u32, move |i| {
        let job = job.clone();
        async move {
            if i < count {
                nap(job.sleep_ms).await;
                Some((Ok(blob(job.size)), i + 1))
            } else if i == count {
                match job.fail {
                    Some(code) if code != 0 => Some((Err(failure(code)), i + 1)),
                    _ => None,
                }
            } else {
                None
            }
        }
    })
}

impl Fuzz for FuzzImpl {
    async fn unary(&self, job: Job) -> Result<String, Status> {
        nap(job.sleep_ms).await;
        match job.fail {
            Some(code) if code != 0 => Err(failure(code)),
            _ => Ok(blob(job.size)),
        }
    }

    async fn add(&self, a: i64, b: Option<i64>) -> Result<i64, Status> {
        a.checked_add(b.unwrap_or(0))
            .ok_or_else(|| Status::out_of_range("overflow"))
    }

    async fn meta(&self, ctx: &Context, key: String) -> Result<Vec<String>, Status> {
        Ok(ctx.metadata().get_all(&key).map(str::to_string).collect())
    }

    async fn items(
        &self,
        job: Job,
    ) -> Result<impl Stream<Item = Result<String, Status>> + Send, Status> {
        if job.count > MAX_ITEMS * 2 {
            return Err(Status::invalid_argument("too many items"));
        }
        Ok(replies(job))
    }

    async fn sum(&self, mut nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status> {
        let mut total = 0i64;
        while let Some(n) = nums.next().await {
            total = total
                .checked_add(n)
                .ok_or_else(|| Status::out_of_range("the sum overflows"))?;
            if total == 42 {
                // An early answer, before the client half-closes.
                return Ok(total);
            }
        }
        Ok(total)
    }

    async fn chat(
        &self,
        jobs: impl Stream<Item = Job> + Send + Unpin,
    ) -> Result<impl Stream<Item = Result<String, Status>> + Send, Status> {
        Ok(jobs.flat_map(replies))
    }
}
