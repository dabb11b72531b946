//! `micro-bench floor`: the streaming workloads' own message work with no transport at all.
//!
//! W3 and W5 ask micro for twice the baseline's messages/s. Any implementation, whatever its
//! framing, still has to make, encode, decode, check and drop every message, and each side does
//! its part on its own thread. This measures each side's part alone, on one thread, with the
//! cheapest encoding (into one reused `Vec`): the busier side bounds the messages/s any
//! transport could reach on this machine. `docs/PERFORMANCE.md` compares it with the baseline.
//!
//! W1 has a floor of another kind: what multiplexing itself costs a unary call. Its last part
//! runs W1 three ways, alternating: the baseline, the least multiplexing ([`crate::mux`]) and
//! micro.

use std::hint::black_box;
use std::time::Instant;

use crate::messages::{SRequest, SResponse};
use crate::{Result, baseline};

/// Messages per measured run.
const MESSAGES: usize = 1_000_000;
/// Runs per phase; the median is printed.
const RUNS: usize = 5;
/// Where a transport would hand the bytes on: the reused buffer is cleared past this.
const BATCH: usize = 64 * 1024;

/// One side's share of one workload.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// W3 server: make a one-word `SResponse`, encode it, drop it.
    W3Server,
    /// W3 client: decode an `SResponse`, check it, drop it.
    W3Client,
    /// W5 server: decode an `SRequest`, then the W3 server's work for its one word.
    W5Server,
    /// W5 client: encode an `SRequest`, then the W3 client's work for its reply.
    W5Client,
}

impl Phase {
    const ALL: [Phase; 4] = [
        Phase::W3Server,
        Phase::W3Client,
        Phase::W5Server,
        Phase::W5Client,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::W3Server => "W3 server: make, encode, drop",
            Phase::W3Client => "W3 client: decode, check, drop",
            Phase::W5Server => "W5 server: decode the request, make, encode, drop",
            Phase::W5Client => "W5 client: encode a request; decode, check, drop",
        }
    }

    /// Runs the phase over [`MESSAGES`] messages, reading `inputs`; returns messages/s.
    fn run(self, inputs: &Inputs) -> Result<f64> {
        let Inputs { replies, requests } = inputs;
        let mut out = Vec::with_capacity(BATCH + 256);
        let start = Instant::now();
        match self {
            Phase::W3Server => {
                for _ in 0..MESSAGES {
                    encode_reply(&mut out)?;
                }
            }
            Phase::W3Client => {
                for body in replies.iter() {
                    check_reply(body)?;
                }
            }
            Phase::W5Server => {
                for body in requests.iter() {
                    let request: SRequest = baseline::decode(body)?;
                    for _ in 0..request.words()? {
                        encode_reply(&mut out)?;
                    }
                }
            }
            Phase::W5Client => {
                for body in replies.iter() {
                    rmp_serde::encode::write_named(&mut out, &SRequest::ONE_WORD)?;
                    hand_on(&mut out);
                    check_reply(body)?;
                }
            }
        }
        let elapsed = start.elapsed();
        black_box(&out);
        Ok(MESSAGES as f64 / elapsed.as_secs_f64())
    }
}

fn encode_reply(out: &mut Vec<u8>) -> Result<()> {
    let reply = SResponse::random(1);
    rmp_serde::encode::write_named(out, &reply)?;
    drop(reply);
    hand_on(out);
    Ok(())
}

fn check_reply(body: &[u8]) -> Result<()> {
    let reply: SResponse = baseline::decode(body)?;
    reply.check(1)?;
    drop(reply);
    Ok(())
}

/// What a transport would do with a full buffer, minus the transport.
fn hand_on(out: &mut Vec<u8>) {
    if out.len() >= BATCH {
        black_box(&out[..]);
        out.clear();
    }
}

/// What the decoding phases read: [`MESSAGES`] of each kind, encoded once for every run.
struct Inputs {
    replies: Encoded,
    requests: Encoded,
}

/// `n` messages encoded back to back, and where each starts (set-up, not timed).
struct Encoded {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl Encoded {
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let ends = self.starts.iter().skip(1).copied();
        self.starts
            .iter()
            .zip(ends.chain([self.bytes.len()]))
            .map(|(&start, end)| &self.bytes[start..end])
    }
}

fn encoded<T: serde::Serialize>(n: usize, mut make: impl FnMut() -> T) -> Result<Encoded> {
    let mut bytes = Vec::new();
    let mut starts = Vec::with_capacity(n);
    for _ in 0..n {
        starts.push(bytes.len());
        rmp_serde::encode::write_named(&mut bytes, &make())?;
    }
    Ok(Encoded { bytes, starts })
}

/// Measures every phase [`RUNS`] times and prints the medians, and each workload's floor.
pub(crate) fn run() -> Result<()> {
    println!(
        "The message work of W3 and W5 alone, one side per row, on one thread, no transport \
         ({} messages, median of {RUNS} runs):",
        crate::report::format_value(MESSAGES as f64)
    );
    println!();
    println!("| Phase | messages/s | ns per message |");
    println!("|---|---|---|");
    let inputs = Inputs {
        replies: encoded(MESSAGES, || SResponse::random(1))?,
        requests: encoded(MESSAGES, || SRequest::ONE_WORD)?,
    };
    let mut medians = Vec::new();
    for phase in Phase::ALL {
        let runs = (0..RUNS)
            .map(|_| phase.run(&inputs))
            .collect::<Result<Vec<f64>>>()?;
        let median = crate::report::median(runs).expect("RUNS > 0");
        medians.push(median);
        println!(
            "| {} | {} | {:.0} |",
            phase.name(),
            crate::report::format_value(median),
            1e9 / median
        );
    }
    println!();
    for (workload, sides) in [("W3", &medians[0..2]), ("W5", &medians[2..4])] {
        let floor = sides[0].min(sides[1]);
        println!(
            "{workload}: no transport can carry more than about {} messages/s here (the busier \
             side's work alone), so 2× the baseline is within reach only while the baseline runs \
             below half of that.",
            crate::report::format_value(floor)
        );
    }
    println!();
    w1_floor()
}

/// W1 against the least multiplexing: see [`crate::mux`].
fn w1_floor() -> Result<()> {
    let runtime = crate::sides::client_runtime()?;
    let env = crate::runner::Env {
        server: crate::sides::ServerThread::start()?,
        flush: baseline::Flush::Batched,
    };
    let [base, mux, micro] = runtime.block_on(crate::workloads::w1::floor(&env))?;
    println!(
        "W1 p50, medians of {} alternating runs: baseline {base:.0} µs; the least multiplexing \
         (a reader task handing each reply to its caller) {mux:.0} µs, {:.2}× the baseline; \
         micro {micro:.0} µs, {:.2}× the baseline and {:.2}× the least multiplexing.",
        crate::runner::REPETITIONS,
        mux / base,
        micro / base,
        micro / mux
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_messages_split_where_they_were_joined() {
        let encoded = encoded(3, || SRequest::ONE_WORD).unwrap();
        let bodies: Vec<&[u8]> = encoded.iter().collect();
        assert_eq!(bodies.len(), 3);
        for body in bodies {
            assert_eq!(body, b"\x81\xa5count\x01");
        }
    }
}
