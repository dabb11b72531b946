use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, names: Vec<&str>) -> Result<String, Status>;
}

fn main() {}
