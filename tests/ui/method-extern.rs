use micro::Status;

#[micro::service]
pub trait Say {
    async extern "C" fn hello(&self) -> Result<String, Status>;
}

fn main() {}
