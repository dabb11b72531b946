use micro::Status;

#[micro::service]
pub trait Say {
    fn hello(&self, name: String) -> Result<String, Status>;
}

fn main() {}
