use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&mut self, name: String) -> Result<String, Status>;
}

fn main() {}
