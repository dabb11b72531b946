use micro::{RequestStream, Status, Stream};

#[micro::service]
pub trait Say {
    async fn zip(
        &self,
        left: impl Stream<Item = i64> + Send + Unpin,
        right: RequestStream<i64>,
    ) -> Result<i64, Status>;
}

fn main() {}
