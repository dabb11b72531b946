use micro::Status;

#[micro::service]
pub trait Say {
    const fn hello(&self) -> Result<String, Status>;
}

fn main() {}
