use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, _: String) -> Result<String, Status>;
}

fn main() {}
