use micro::Status;

#[micro::service]
pub trait Say<T> {
    async fn hello(&self, name: T) -> Result<T, Status>;
}

fn main() {}
