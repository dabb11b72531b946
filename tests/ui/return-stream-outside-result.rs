use micro::Stream;

#[micro::service]
pub trait Say {
    async fn words(&self, count: u32) -> impl Stream<Item = String> + Send + 'static;
}

fn main() {}
