//! What the server does with an OPEN frame: find the method, admit the call, start its task.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::Router;
use super::call::ServerCall;
use crate::connection::{Accepted, Shared};
use crate::{Context, Metadata, Status};

/// Starts the call an OPEN frame asks for, or refuses it with a CLOSE frame.
#[allow(clippy::too_many_arguments)]
pub(crate) fn open(
    conn: &Arc<Shared>,
    router: &Router,
    id: u32,
    end_stream: bool,
    method: &[u8],
    timeout: Option<Duration>,
    metadata: Metadata,
    data: Bytes,
) -> Result<(), String> {
    let Some(route) = router.get(method) else {
        let status = Status::unimplemented(format!(
            "this server has no method {:?}",
            String::from_utf8_lossy(method)
        ));
        return refuse(conn, id, status, data.len());
    };
    let (stream, args) = match conn.accept(id, data, end_stream)? {
        Accepted::Call { stream, args } => (stream, args),
        Accepted::Refused => return Ok(()),
    };
    let deadline = timeout.map(|t| Instant::now() + t);
    let context = Context::new(route.method.full_name, metadata, deadline, conn.peer_addr);
    // The call's whole task, handler included (see `call::run`).
    let mut task = route.service.call(
        route.index,
        ServerCall::new(conn.clone(), stream, context, args),
    );
    if conn.single_threaded {
        // On a single-threaded runtime a task of its own gains a call no parallelism, only
        // its cost (spawning, scheduling, polling and freeing it: ~2,500 instructions, a
        // tenth of a unary call, by callgrind). So the call starts here; only one that has
        // to wait becomes a task. Whatever it registered with this no-op waker is registered
        // again with the task's own when the task first polls it, which spawning arranges.
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        if task.as_mut().poll(&mut cx).is_ready() {
            return Ok(());
        }
    }
    tokio::spawn(task);
    Ok(())
}

/// Refuses stream `id` with `status` (the OPEN frame carried `data_len` bytes of messages).
pub(crate) fn refuse(
    conn: &Shared,
    id: u32,
    status: Status,
    data_len: usize,
) -> Result<(), String> {
    conn.refuse_open(id, status, data_len as u32)
}
