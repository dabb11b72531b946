use micro::{Status, Stream};

#[micro::service]
pub trait Say {
    async fn words(&self, count: u32) -> Result<impl Stream<Item = String> + Send, Status>;
}

fn main() {}
