use micro::Status;

pub trait Say {
    fn hello(&self) -> Result<String, Status>;
}

pub struct MySay;

#[micro::service]
impl Say for MySay {
    fn hello(&self) -> Result<String, Status> {
        Ok(String::new())
    }
}

fn main() {}
