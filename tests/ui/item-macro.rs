use micro::Status;

macro_rules! methods {
    () => {};
}

#[micro::service]
pub trait Say {
    methods!();
    async fn hello(&self) -> Result<String, Status>;
}

fn main() {}
