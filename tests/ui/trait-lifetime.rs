use micro::Status;

#[micro::service]
pub trait Say<'a> {
    async fn hello(&self, name: &'a str) -> Result<String, Status>;
}

fn main() {}
