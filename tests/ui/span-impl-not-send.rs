use std::rc::Rc;

use micro::Status;

#[micro::service]
pub trait Say {
    async fn hello(&self, name: String) -> Result<String, Status>;
}

pub struct MySay;

impl Say for MySay {
    async fn hello(&self, name: String) -> Result<String, Status> {
        let shared = Rc::new(name);
        std::future::ready(()).await;
        Ok(shared.to_string())
    }
}

fn main() {}
