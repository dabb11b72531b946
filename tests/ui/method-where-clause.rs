use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self) -> Result<String, Status>
    where
        Self: Sized;
}

fn main() {}
