#[micro::service]
pub trait Say {
    async fn hello(&self, name: String) -> String;
}

fn main() {}
