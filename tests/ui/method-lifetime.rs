use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello<'a>(&self, name: String) -> Result<String, Status>;
}

fn main() {}
