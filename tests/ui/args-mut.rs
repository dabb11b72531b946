use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, mut name: String) -> Result<String, Status>;
}

fn main() {}
