use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, name: impl Into<String>) -> Result<String, Status>;
}

fn main() {}
