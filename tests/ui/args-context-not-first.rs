use micro::{Context, Status};

#[micro::service]
pub trait Say {
    async fn add(&self, a: i32, ctx: &Context, b: i32) -> Result<i32, Status>;
}

fn main() {}
