//! Every seed passes its target's checks, the checked-in seed files are current, and the
//! `server` harness sees what a correct server sends for the well-formed seeds (so its checks
//! are not vacuous). Runs on stable: `cargo test --manifest-path fuzz/Cargo.toml`.

use micro_fuzz::server::{self, Report};
use micro_fuzz::wire::{CLOSE, DATA, GOAWAY, PING};

fn run_target(target: &str, bytes: &[u8]) {
    match target {
        "frame_decoder" => micro_core::fuzzing::frame_codec(bytes),
        "handshake" => micro_core::fuzzing::handshake(bytes),
        "messages" => {
            // The dispatch of fuzz_targets/messages.rs.
            if let Some((&decoder, rest)) = bytes.split_first() {
                match decoder % 4 {
                    0 => micro_core::fuzzing::message(rest),
                    1 => micro_core::fuzzing::args(rest),
                    2 => micro_core::fuzzing::metadata(rest),
                    _ => micro_core::fuzzing::inbound(rest),
                }
            }
        }
        "server" => {
            server::run(bytes);
        }
        other => panic!("no target {other}"),
    }
}

#[test]
fn every_seed_passes_its_target() {
    for (target, name, bytes) in micro_fuzz::seeds::all() {
        eprintln!("{target}/{name}");
        run_target(target, &bytes);
    }
}

#[test]
fn the_seed_files_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for (target, name, bytes) in micro_fuzz::seeds::all() {
        let path = root.join(target).join(name);
        let on_disk = std::fs::read(&path).unwrap_or_else(|err| {
            panic!("{}: {err}; run `cargo run --example seeds`", path.display())
        });
        assert_eq!(
            on_disk,
            bytes,
            "{} is stale; run `cargo run --example seeds`",
            path.display()
        );
    }
}

/// Every checked-in input (seeds and minimised crashes) still passes: a regression suite.
#[test]
fn every_checked_in_input_passes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    for target in ["frame_decoder", "handshake", "messages", "server"] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            eprintln!("{}", path.display());
            run_target(target, &std::fs::read(&path).unwrap());
        }
    }
}

fn seed(name: &str) -> Report {
    let (_, _, bytes) = micro_fuzz::seeds::all()
        .into_iter()
        .find(|(target, n, _)| *target == "server" && *n == name)
        .unwrap_or_else(|| panic!("no server seed {name}"));
    server::run(&bytes).unwrap()
}

/// (kind, stream, code) of each frame, PINGs and CREDITs left out.
fn shape(report: &Report) -> Vec<(u8, u32, Option<u8>)> {
    report
        .frames
        .iter()
        .filter(|f| f.kind != micro_fuzz::wire::CREDIT)
        .map(|f| (f.kind, f.id, f.code))
        .collect()
}

#[test]
fn the_server_answers_the_well_formed_seeds() {
    let unary = seed("unary");
    assert!(!unary.closed_by_server, "the connection stays up");
    // fixstr "xxxxx" (6 bytes) and its prefix, inline in the CLOSE
    assert_eq!(shape(&unary), [(CLOSE, 1, Some(0))]);
    assert_eq!(unary.frames[0].amount, 10);

    let add = seed("add_meta");
    assert_eq!(shape(&add), [(CLOSE, 1, Some(0)), (CLOSE, 3, Some(0))]);

    let stream = seed("stream_credit");
    let kinds: Vec<_> = shape(&stream).into_iter().map(|(k, ..)| k).collect();
    assert_eq!(kinds.first(), Some(&DATA), "{stream:?}");
    assert_eq!(shape(&stream).last(), Some(&(CLOSE, 1, Some(0))));
    let data: u32 = stream
        .frames
        .iter()
        .filter(|f| f.kind == DATA)
        .map(|f| f.amount)
        .sum();
    assert_eq!(
        data,
        3 * (4 + 2 + 100),
        "three items: prefix, str8 of 100 bytes"
    );

    let sum = seed("client_stream");
    assert_eq!(shape(&sum), [(CLOSE, 1, Some(0))]);
    assert_eq!(sum.frames.last().unwrap().amount, 5, "the message 6");

    let bidi = seed("bidi");
    assert_eq!(shape(&bidi).last(), Some(&(CLOSE, 3, Some(5))), "{bidi:?}");

    // A cancelled call gets no CLOSE. On a single-threaded runtime the server starts a call
    // as it reads its OPEN, so the streaming call's first item may be out before the CANCEL
    // that followed in the same read is seen: allowed, the client drops it.
    let cancel = seed("cancel");
    let answered = shape(&cancel);
    assert!(
        answered
            .iter()
            .all(|&(kind, stream, _)| kind == DATA && stream == 3),
        "cancelled calls get no answer: {answered:?}"
    );

    let deadline = seed("deadline");
    assert_eq!(shape(&deadline), [(CLOSE, 1, Some(4))]);

    let odd = seed("ping_unknown_goaway");
    assert_eq!(shape(&odd), [(PING, 0, None), (CLOSE, 5, Some(12))]);

    let split = seed("split_message");
    assert_eq!(shape(&split), [(CLOSE, 1, Some(0))]);

    for protocol_error in ["client_close", "data_after_end", "oversized"] {
        let report = seed(protocol_error);
        assert_eq!(
            shape(&report).last(),
            Some(&(GOAWAY, 0, Some(3))),
            "{protocol_error}: {report:?}"
        );
        assert!(report.closed_by_server);
    }

    let wrong = seed("raw_preface_version_7");
    assert_eq!(wrong.client, None);
    assert_eq!(wrong.output.len(), 24, "only the server's preface");

    let trickle = seed("all_calls_trickle_shutdown");
    assert!(
        trickle
            .frames
            .iter()
            .any(|f| f.kind == GOAWAY && f.code == Some(14)),
        "a graceful GOAWAY: {trickle:?}"
    );
}
