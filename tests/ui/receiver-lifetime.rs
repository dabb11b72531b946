use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&'static self, name: String) -> Result<String, Status>;
}

fn main() {}
