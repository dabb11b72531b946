//! `micro-bench`: micro measured against its ceiling, a bare tokio-util framed TCP connection
//! carrying the same MessagePack messages with no RPC machinery, in one process and one run.
//!
//! ```text
//! cargo run --release -p micro-bench          # every workload
//! cargo run --release -p micro-bench w3 w5    # only these
//! cargo run --release -p micro-bench -- --flush-each-message   # the naive baseline
//! cargo run --release -p micro-bench floor    # W3/W5's message work alone; W1 against the
//!                                             # least multiplexing: see [`floor`]
//! ```
//!
//! The server side and the client side each run on a single-threaded tokio runtime on an OS
//! thread of its own (a stand-in for two single-core processes) and talk over 127.0.0.1 with
//! `TCP_NODELAY`. Each workload is warmed up, then run three times on each side, alternating
//! baseline and micro; the table shows medians. W6 (memory per idle stream) runs its two halves
//! in child processes of this binary so each side's RSS can be read on its own: see
//! [`workloads::w6`]. `docs/PERFORMANCE.md` has the results and how to read them.

mod baseline;
mod floor;
mod messages;
mod mux;
mod report;
mod runner;
mod service;
mod sides;
mod workloads;

use std::process::ExitCode;

/// Every error the benchmark reports: it prints them, it never matches on them.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// A result with the benchmark's [`Error`].
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args.first().map(String::as_str) {
        Some(workloads::w6::SERVER_CHILD) => workloads::w6::server_child(&args[1..]),
        Some(workloads::w6::CLIENT_CHILD) => workloads::w6::client_child(&args[1..]),
        Some("floor") => floor::run(),
        Some("-h" | "--help") => {
            println!(
                "usage: micro-bench [{}] [w1|w2|w3|w4|w5|w6|w7]...   (no workload: all of them)\n       \
                 micro-bench floor   (W3 and W5's message work alone: the most any transport \
                 can carry; W1 against the least multiplexing)",
                runner::FLUSH_EACH_MESSAGE
            );
            Ok(())
        }
        _ => runner::run_all(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("micro-bench: {err}");
            ExitCode::FAILURE
        }
    }
}
