use micro::Status;

/// An alias without the response type.
pub type Result = std::result::Result<String, Status>;

#[micro::service]
pub trait Say {
    async fn hello(&self, name: String) -> Result;
}

fn main() {}
