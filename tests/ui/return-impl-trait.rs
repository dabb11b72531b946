use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, name: String) -> Result<impl serde::Serialize, Status>;
}

fn main() {}
