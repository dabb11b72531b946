use micro::Status;

#[micro::service]
pub trait Say {
    async unsafe fn hello(&self) -> Result<String, Status>;
}

fn main() {}
