#[micro::service]
pub struct Say {
    pub name: String,
}

fn main() {}
