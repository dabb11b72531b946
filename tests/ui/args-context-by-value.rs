use micro::{Context, Status};

#[micro::service]
pub trait Say {
    async fn add(&self, ctx: Context, a: i32) -> Result<i32, Status>;
}

fn main() {}
