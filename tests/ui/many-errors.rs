use micro::{Status, Stream};

#[micro::service]
pub trait Say {
    /// not async
    fn hello(&self, name: String) -> Result<String, Status>;
    /// &mut self
    async fn rename(&mut self, name: String) -> Result<(), Status>;
    /// a borrowed argument and no Result
    async fn echo(&self, text: &str) -> String;
    /// fine
    async fn ping(&self) -> Result<(), Status>;
    /// two streams
    async fn zip(
        &self,
        left: impl Stream<Item = i64> + Send + Unpin,
        right: impl Stream<Item = i64> + Send + Unpin,
    ) -> Result<i64, Status>;
    /// generic
    async fn put<T>(&self, value: T) -> Result<(), Status>;
}

fn main() {}
