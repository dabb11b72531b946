use micro::Status;

#[micro::service]
pub trait Say {
    type Name;
    async fn hello(&self) -> Result<String, Status>;
}

fn main() {}
