use micro::Status;

#[micro::service]
pub trait Say
where
    Self: Sized,
{
    async fn hello(&self) -> Result<String, Status>;
}

fn main() {}
