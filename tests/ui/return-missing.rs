#[micro::service]
pub trait Say {
    async fn hello(&self, name: String);
}

fn main() {}
