//! The `Say` service of the go-micro stream article, shared by the `say`, `say_server` and
//! `say_client` examples.

use std::time::{SystemTime, UNIX_EPOCH};

use micro::{Status, Stream};
use serde::{Deserialize, Serialize};

/// How many words to send back.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SRequest {
    pub(crate) count: i64,
}

/// One random word.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SResponse {
    pub(crate) value: Vec<String>,
}

/// The article's service, plus a unary and a client-streaming method.
#[micro::service]
pub(crate) trait Say {
    /// Greets `name`.
    async fn hello(&self, name: String) -> Result<String, Status>;

    /// Sends `req.count` random words.
    async fn stream(
        &self,
        req: SRequest,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status>;

    /// Adds up the numbers the client streams.
    async fn sum(&self, nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status>;

    /// For every request, sends `count` random words; ends when the client closes its side.
    async fn bidirectional_stream(
        &self,
        reqs: impl Stream<Item = SRequest> + Send + Unpin,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status>;
}

/// The server's implementation.
#[derive(Debug, Default)]
pub(crate) struct MySay;

impl Say for MySay {
    async fn hello(&self, name: String) -> Result<String, Status> {
        Ok(format!("hello, {name}"))
    }

    async fn stream(
        &self,
        req: SRequest,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status> {
        if req.count < 0 {
            return Err(Status::invalid_argument("count must not be negative"));
        }
        let mut words = Words::seeded();
        Ok(async_stream::stream! {
            for _ in 0..req.count {
                yield Ok(SResponse { value: vec![words.next()] });
            }
        })
    }

    async fn sum(&self, mut nums: impl Stream<Item = i64> + Send + Unpin) -> Result<i64, Status> {
        use futures::StreamExt;
        let mut total = 0i64;
        while let Some(n) = nums.next().await {
            total = total
                .checked_add(n)
                .ok_or_else(|| Status::out_of_range("the sum overflows i64"))?;
        }
        Ok(total)
    }

    async fn bidirectional_stream(
        &self,
        mut reqs: impl Stream<Item = SRequest> + Send + Unpin,
    ) -> Result<impl Stream<Item = Result<SResponse, Status>> + Send, Status> {
        use futures::StreamExt;
        let mut words = Words::seeded();
        Ok(async_stream::stream! {
            while let Some(req) = reqs.next().await {
                for _ in 0..req.count {
                    yield Ok(SResponse { value: vec![words.next()] });
                }
            }
        })
    }
}

/// Random lower-case words of 3 to 6 letters (the article's `RandomStr(Random(3, 6))`).
struct Words(u64);

impl Words {
    fn seeded() -> Words {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        Words(nanos | 1)
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64: plenty for example data.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn next(&mut self) -> String {
        let len = 3 + (self.next_u64() % 4) as usize;
        (0..len)
            .map(|_| (b'a' + (self.next_u64() % 26) as u8) as char)
            .collect()
    }
}
