use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(name: String) -> Result<String, Status>;
}

fn main() {}
