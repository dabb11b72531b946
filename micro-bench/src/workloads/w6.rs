//! W6, memory: 100,000 concurrently open, idle bidirectional streams on one connection.
//!
//! Each repetition runs the two halves in fresh child processes of this binary — the server
//! half (`--w6-server`) and the client half (`--w6-client`) — each on a single-worker runtime,
//! as everywhere else. That way each side's resident set can be read on its own (from
//! `/proc/<child>/statm`, which is the child's `/proc/self/statm`), and neither is flattered
//! nor burdened by memory the allocator kept from W1–W5 or from an earlier repetition.
//!
//! The RSS of both children is read once the connection is up and idle, and again once every
//! stream is open on both sides and the numbers have settled; the growth divided by the number
//! of streams is the cost of one idle stream. The streams are the generated client's duplex
//! handles (`bidi_duplex`), which a caller holds without a task of its own; on the server each
//! is a running `bidi` handler waiting for its first request. The baseline has no streams, so
//! this workload has no baseline column.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use super::Spec;
use crate::Result;
use crate::messages::SRequest;
use crate::report::{Better, Metric, Outcome, Target};
use crate::runner::micro_only;
use crate::service::{self, BenchClient, BenchService};
use crate::sides::client_runtime;

/// The argument that makes this binary the server half.
pub(crate) const SERVER_CHILD: &str = "--w6-server";

/// The argument that makes this binary the client half.
pub(crate) const CLIENT_CHILD: &str = "--w6-client";

/// 100,000 idle streams.
pub(crate) const SPEC: Spec = Spec {
    id: "w6",
    title: "memory per idle stream",
    size: "100,000 idle bidirectional streams on one connection; halves in child processes",
    count: 100_000,
    warmup: 0,
    metrics: &[
        Metric {
            name: "RSS bytes/stream, both sides",
            better: Better::Lower,
            target: Target::AtMost(2048.0),
        },
        Metric {
            name: "RSS bytes/stream, client",
            better: Better::Lower,
            target: Target::None,
        },
        Metric {
            name: "RSS bytes/stream, server",
            better: Better::Lower,
            target: Target::None,
        },
    ],
};

/// How long a child may take for any one step before the repetition is declared hung.
const STEP_LIMIT: Duration = Duration::from_secs(60);

/// Extra concurrent calls the server allows beyond the idle streams.
const SPARE_STREAMS: usize = 1024;

/// Runs [`REPETITIONS`](crate::runner::REPETITIONS) measurements, each with fresh children.
pub(crate) async fn run() -> Result<Outcome> {
    Ok(micro_only(&SPEC, || async {
        tokio::task::spawn_blocking(|| measure(SPEC.count)).await?
    })
    .await)
}

/// One repetition: RSS growth per stream of both halves together, of the client and of the
/// server, in bytes.
fn measure(streams: usize) -> Result<Vec<f64>> {
    let exe = std::env::current_exe()?;
    let count = streams.to_string();
    let server = Child::spawn("server", Command::new(&exe).args([SERVER_CHILD, &count]))?;
    let addr = server.expect("listening ")?;
    let mut client = Child::spawn(
        "client",
        Command::new(&exe).args([CLIENT_CHILD, &addr, &count]),
    )?;
    client.expect("connected")?;
    let before = settled_rss(&[&server, &client])?;
    client.say("open")?;
    let opened: usize = client.expect("opened ")?.parse()?;
    if opened != streams {
        return Err(format!("the client has {opened} streams open, not {streams}").into());
    }
    server.expect("ready")?;
    let after = settled_rss(&[&server, &client])?;
    client.finish()?;
    server.finish()?;
    let per_stream = |side: usize| (after[side] as f64 - before[side] as f64) / streams as f64;
    let (server, client) = (per_stream(0), per_stream(1));
    Ok(vec![server + client, client, server])
}

/// The RSS of each child once it has stopped changing (two equal readings 100 ms apart, or
/// the last reading after 3 s).
fn settled_rss(children: &[&Child]) -> Result<Vec<u64>> {
    let read = || {
        children
            .iter()
            .map(|child| child.rss())
            .collect::<Result<Vec<_>>>()
    };
    let mut last = read()?;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        let now = read()?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(last)
}

/// A child process of this binary, spoken to by lines on its stdin and stdout.
struct Child {
    name: &'static str,
    process: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(name: &'static str, command: &mut Command) -> Result<Child> {
        let mut process = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdout = process.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout)
                .lines()
                .map_while(std::io::Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Child {
            name,
            process,
            lines,
        })
    }

    /// Waits for the child's next line, which must start with `prefix`; returns the rest.
    fn expect(&self, prefix: &str) -> Result<String> {
        let line = self.lines.recv_timeout(STEP_LIMIT).map_err(|_| {
            format!(
                "the {} half said nothing within {} s while we waited for {prefix:?}",
                self.name,
                STEP_LIMIT.as_secs()
            )
        })?;
        match line.strip_prefix(prefix) {
            Some(rest) => Ok(rest.to_string()),
            None => Err(format!("the {} half said {line:?}, not {prefix:?}", self.name).into()),
        }
    }

    fn say(&mut self, line: &str) -> Result<()> {
        let stdin = self.process.stdin.as_mut().ok_or("stdin is closed")?;
        writeln!(stdin, "{line}")?;
        Ok(stdin.flush()?)
    }

    fn rss(&self) -> Result<u64> {
        rss_bytes(self.process.id())
    }

    /// Closes the child's stdin, which tells it to exit, and waits for a clean exit.
    fn finish(mut self) -> Result<()> {
        drop(self.process.stdin.take());
        let deadline = Instant::now() + STEP_LIMIT;
        while Instant::now() < deadline {
            if let Some(status) = self.process.try_wait()? {
                return if status.success() {
                    Ok(())
                } else {
                    Err(format!("the {} half exited with {status}", self.name).into())
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("the {} half did not exit", self.name).into())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.process.try_wait() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// Resident set size of process `pid`: `/proc/<pid>/statm`'s second field, in pages.
fn rss_bytes(pid: u32) -> Result<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm"))?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("statm has no resident field")?
        .parse()?;
    Ok(pages * page_size()?)
}

/// The page size, from the kernel's auxiliary vector (`AT_PAGESZ`).
fn page_size() -> Result<u64> {
    const AT_PAGESZ: u64 = 6;
    let auxv = std::fs::read("/proc/self/auxv")?;
    auxv.chunks_exact(16)
        .map(|entry| {
            let word = |at: usize| {
                let mut bytes = [0; 8];
                bytes.copy_from_slice(&entry[at..at + 8]);
                u64::from_ne_bytes(bytes)
            };
            (word(0), word(8))
        })
        .find(|&(key, _)| key == AT_PAGESZ)
        .map(|(_, size)| size)
        .ok_or_else(|| "no AT_PAGESZ in /proc/self/auxv".into())
}

/// The server half: serves the benchmark service with room for `streams` concurrent calls,
/// prints `listening <addr>`, then `ready` once `streams` `bidi` calls have started; exits
/// when its stdin closes.
pub(crate) fn server_child(args: &[String]) -> Result<()> {
    let streams: usize = arg(args, 0, "stream count")?;
    let limit = u32::try_from(streams + SPARE_STREAMS)?;
    client_runtime()?.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let service = Arc::new(BenchService::default());
        tokio::spawn(service::serve(listener, service.clone(), Some(limit)));
        tell(&format!("listening {addr}"))?;
        let stdin_closed = tokio::task::spawn_blocking(wait_for_eof);
        let announce_ready = async {
            while service.bidi_calls() < streams {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tell("ready")?;
            std::future::pending::<Result<()>>().await
        };
        tokio::select! {
            closed = stdin_closed => Ok(closed?),
            failed = announce_ready => failed,
        }
    })
}

/// The client half: connects to `addr`, makes one call, prints `connected`; on `open`, opens
/// `streams` duplex calls and prints `opened <streams open on the connection>`; holds them
/// until its stdin closes.
pub(crate) fn client_child(args: &[String]) -> Result<()> {
    let addr: SocketAddr = arg(args, 0, "server address")?;
    let streams: usize = arg(args, 1, "stream count")?;
    client_runtime()?.block_on(async move {
        let client = BenchClient::connect(addr).await?;
        client.unary(SRequest::ONE_WORD).await?.check(1)?;
        tell("connected")?;
        let command = tokio::task::spawn_blocking(read_line).await??;
        if command != "open" {
            return Err(format!("expected \"open\", got {command:?}").into());
        }
        let mut open = Vec::with_capacity(streams);
        for _ in 0..streams {
            open.push(client.bidi_duplex().await?);
        }
        let stats = client.client().stats().ok_or("the connection is gone")?;
        tell(&format!("opened {}", stats.open_streams))?;
        tokio::task::spawn_blocking(wait_for_eof).await?;
        drop(open);
        Ok(())
    })
}

/// Argument `index` of a child's command line.
fn arg<T: FromStr>(args: &[String], index: usize, what: &str) -> Result<T> {
    args.get(index)
        .and_then(|arg| arg.parse().ok())
        .ok_or_else(|| format!("missing or bad {what} argument").into())
}

/// Prints one line to the parent.
fn tell(line: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    Ok(stdout.flush()?)
}

/// The parent's next line, without its newline.
fn read_line() -> std::io::Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}

/// Returns once the parent closes our stdin (or it fails).
fn wait_for_eof() {
    let mut sink = String::new();
    while matches!(std::io::stdin().lock().read_line(&mut sink), Ok(n) if n > 0) {
        sink.clear();
    }
}
