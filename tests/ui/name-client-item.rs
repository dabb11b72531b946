use micro::Status;

#[micro::service]
pub trait Say {
    async fn connect(&self, addr: String) -> Result<(), Status>;
}

fn main() {}
