use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(self: Box<Self>, name: String) -> Result<String, Status>;
}

fn main() {}
