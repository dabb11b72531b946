use micro::Status;

#[micro::service(name = "say")]
pub trait Say {
    async fn hello(&self) -> Result<String, Status>;
}

fn main() {}
