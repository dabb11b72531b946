use micro::Status;

#[micro::service]
pub trait Say {
    async fn add(&self, (a, b): (i32, i32)) -> Result<i32, Status>;
}

fn main() {}
