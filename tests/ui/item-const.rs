use micro::Status;

#[micro::service]
pub trait Say {
    const GREETING: &'static str = "hello";
    async fn hello(&self) -> Result<String, Status>;
}

fn main() {}
