use micro::{Status, Stream};

#[micro::service]
pub trait Say {
    async fn chat(
        &self,
        lines: impl Stream<Item = String> + Send + Unpin,
    ) -> Result<impl Stream<Item = String> + Send + 'static, Status>;
    async fn chat_duplex(&self) -> Result<(), Status>;
}

fn main() {}
