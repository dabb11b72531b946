use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello<T: serde::Serialize>(&self, name: T) -> Result<String, Status>;
}

fn main() {}
