use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, name: &str) -> Result<String, Status>;
}

fn main() {}
