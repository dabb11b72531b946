use micro::{Status, Stream};

#[micro::service]
pub trait Say {
    async fn sum(&self, nums: impl Stream + Send + Unpin) -> Result<i64, Status>;
}

fn main() {}
