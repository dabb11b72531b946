//! Seed inputs for every target, built from the byte layouts of `docs/PROTOCOL.md`.
//! `cargo run --manifest-path fuzz/Cargo.toml --example seeds` writes them to `fuzz/seeds/`.

use crate::server::{HANG_UP, PROFILE_SHIFT, RAW_PREFACE, SHUTDOWN, SMALL_SERVER, TRICKLE};
use crate::wire::*;

/// One seed: target, file name, bytes.
pub type Seed = (&'static str, &'static str, Vec<u8>);

/// The worked examples of `docs/PROTOCOL.md` §3.4 and §5.2, client → server.
fn unary_hello() -> Vec<u8> {
    open(1, true, "Say.hello", 0, &[], &msg(&fixstr("world")))
}

/// Client frames exercising every call kind of the fuzz service, on stream ids above `base`.
pub fn calls(base: u32) -> Vec<(&'static str, Vec<u8>)> {
    let (s1, s3, s5) = (base + 1, base + 3, base + 5);
    let job = |entries: &[(&str, u8)]| msg(&job(entries));
    vec![
        // A unary call: one OPEN with the arguments inline and END_STREAM.
        (
            "unary",
            open(s1, true, "Fuzz.unary", 0, &[], &job(&[("size", 5)])),
        ),
        // Two plain arguments: a map; metadata; a timeout.
        (
            "add_meta",
            cat(&[
                &open(
                    s1,
                    true,
                    "Fuzz.add",
                    0,
                    &[],
                    &msg(&[0x82, 0xa1, b'a', 0x01, 0xa1, b'b', 0x02]),
                ),
                &open(
                    s3,
                    true,
                    "Fuzz.meta",
                    1_500_000,
                    &[("x-request-id", "42"), ("x-request-id", "43")],
                    &msg(&fixstr("x-request-id")),
                ),
            ]),
        ),
        // Server streaming, then a credit grant on the stream and on the connection.
        (
            "stream_credit",
            cat(&[
                &open(
                    s1,
                    true,
                    "Fuzz.items",
                    0,
                    &[],
                    &job(&[("count", 3), ("size", 100)]),
                ),
                &credit(s1, 128 << 10),
                &credit(0, 4 << 20),
            ]),
        ),
        // Client streaming: arguments nil, three items in one DATA with END_STREAM.
        (
            "client_stream",
            cat(&[
                &open(s1, false, "Fuzz.sum", 0, &[], &msg(&[0xc0])),
                &data(s1, true, &cat(&[&msg(&[1]), &msg(&[2]), &msg(&[3])])),
            ]),
        ),
        // Bidirectional: items, then an empty DATA with END_STREAM (half-close).
        (
            "bidi",
            cat(&[
                &open(s3, false, "Fuzz.chat", 0, &[], &msg(&[0xc0])),
                &data(s3, false, &job(&[("count", 2), ("size", 3)])),
                &data(s3, false, &job(&[("count", 1), ("fail", 5)])),
                &data(s3, true, &[]),
            ]),
        ),
        // A slow call, cancelled.
        (
            "cancel",
            cat(&[
                &open(s1, true, "Fuzz.unary", 0, &[], &job(&[("sleep_ms", 100)])),
                &cancel(s1, 1),
                &open(
                    s3,
                    true,
                    "Fuzz.items",
                    0,
                    &[],
                    &job(&[("count", 5), ("sleep_ms", 10)]),
                ),
                &cancel(s3, 4),
            ]),
        ),
        // A deadline that passes while the handler sleeps.
        (
            "deadline",
            open(
                s1,
                true,
                "Fuzz.unary",
                1_000,
                &[],
                &job(&[("sleep_ms", 50)]),
            ),
        ),
        // PING, an unknown method, then a GOAWAY from the client.
        (
            "ping_unknown_goaway",
            cat(&[
                &ping(false, 42),
                &open(s5, true, "Say.nope", 0, &[], &msg(&[0xc0])),
                &goaway(0, 14, "bye"),
            ]),
        ),
        // A message split across frames.
        (
            "split_message",
            cat(&[
                &open(s1, false, "Fuzz.unary", 0, &[], &[0, 0, 0]),
                &data(s1, false, &[7, 0x81, 0xa4, b's', b'i']),
                &data(s1, true, &[b'z', b'e', 0x10]),
            ]),
        ),
        // Protocol errors: a CLOSE from the client; DATA after END_STREAM; an oversized frame.
        ("client_close", close(s1, 0, "", &[])),
        (
            "data_after_end",
            cat(&[
                &open(s1, false, "Fuzz.sum", 0, &[], &msg(&[0xc0])),
                &data(s1, true, &msg(&[7])),
                &data(s1, false, &msg(&[8])),
            ]),
        ),
        ("oversized", 0x7fff_ffffu32.to_be_bytes().to_vec()),
    ]
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut seeds: Vec<Seed> = Vec::new();

    // frame_decoder: [settings, chunk seed, stream…]
    let examples = cat(&[
        &unary_hello(),
        &close(1, 0, "", &msg(&fixstr("hello, world"))),
        &open(
            3,
            true,
            "Say.hello",
            1_500_000,
            &[("x-request-id", "42")],
            &msg(&fixstr("world")),
        ),
        &close(5, 12, "this server has no method \"Say.nope\"", &[]),
        &credit(1, 128 << 10),
        &credit(0, 4 << 20),
        &goaway(7, 14, "the server is shutting down"),
        &cancel(3, 1),
        &cancel(3, 4),
        &ping(false, 42),
        &ping(true, 42),
        &data(3, true, &[]),
    ]);
    seeds.push((
        "frame_decoder",
        "protocol_examples",
        cat(&[&[0, 0], &examples]),
    ));
    seeds.push((
        "frame_decoder",
        "protocol_examples_chunked",
        cat(&[&[0, 1], &examples]),
    ));
    seeds.push((
        "frame_decoder",
        "unary_small_chunks",
        cat(&[&[0, 4], &unary_hello()]),
    ));
    seeds.push((
        "frame_decoder",
        "large_declared_length",
        cat(&[&[3, 2], &(16u32 << 20).to_be_bytes(), &[0, 0, 0, 1, 2]]),
    ));
    seeds.push((
        "frame_decoder",
        "metadata_refused",
        cat(&[
            &[2 << 2, 0],
            &open(3, true, "S.m", 0, &[("k", &"v".repeat(100))], b"12345"),
        ]),
    ));

    // handshake: the peer's bytes
    seeds.push(("handshake", "default", default_preface()));
    seeds.push((
        "handshake",
        "version_7",
        preface_v(7, 1 << 20, 4 << 20, 1 << 20, 16 << 20),
    ));
    seeds.push((
        "handshake",
        "http",
        b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec(),
    ));
    seeds.push(("handshake", "short", default_preface()[..10].to_vec()));
    seeds.push(("handshake", "unusable_limits", preface(1000, 0, 0, 1)));
    seeds.push((
        "handshake",
        "with_frames",
        cat(&[&default_preface(), &unary_hello()]),
    ));

    // messages: [decoder, selector, body…] for message/args; [2, block] metadata;
    // [3, settings, seed, stream…] inbound
    let point = b"\x82\xa1x\x01\xa5label\xa1a".to_vec();
    seeds.push(("messages", "any_point", cat(&[&[0, 0], &point])));
    let sample = b"\x83\xa2id\x07\xa4name\xa2hi\xa4kind\x81\xa5Tuple\x92\x01\x02".to_vec();
    seeds.push(("messages", "struct_fields", cat(&[&[0, 1], &sample])));
    let mut bomb = b"\x81\xa3Neg".repeat(120);
    bomb.extend_from_slice(b"\x81\xa3Lit\x00");
    seeds.push(("messages", "enum_bomb", cat(&[&[0, 2], &bomb])));
    seeds.push((
        "messages",
        "enum_list",
        cat(&[&[0, 2], b"\x81\xa4List\x92\x81\xa3Lit\x01\xa3Nil"]),
    ));
    seeds.push((
        "messages",
        "tuple",
        cat(&[&[0, 3], b"\x93\xa1s\x92\x01\x02\xc3"]),
    ));
    seeds.push(("messages", "args_none", vec![1, 0, 0xc0]));
    seeds.push(("messages", "args_one", cat(&[&[1, 1], &fixstr("world")])));
    seeds.push((
        "messages",
        "args_three",
        cat(&[&[1, 2], b"\x83\xa5count\x02\xa5extra\x91\x01\xa4name\xa1z"]),
    ));
    seeds.push((
        "messages",
        "args_options",
        cat(&[&[1, 3], b"\x81\xa1x\x05"]),
    ));
    seeds.push((
        "messages",
        "metadata",
        cat(&[&[2], &metadata(&[("x-request-id", "42"), ("k", "")])]),
    ));
    let stream = cat(&[&msg(b"one"), &msg(b""), &msg(&[7; 150]), &msg(b"\x00\x00")]);
    seeds.push((
        "messages",
        "inbound",
        cat(&[&[3, 0x02 | (3 << 2), 3], &stream]),
    ));
    seeds.push((
        "messages",
        "inbound_lazy_small_window",
        cat(&[&[3, 0x10 | (3 << 2), 1], &stream]),
    ));

    // server: [mode, frames…]
    let profile = |p: u8| p << PROFILE_SHIFT;
    for (name, frames) in calls(0) {
        seeds.push(("server", name, cat(&[&[0], &frames])));
    }
    // Every well-formed call on one connection, each on ids above the last (ids only go up).
    let renumbered: Vec<u8> = calls(0)
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| !matches!(*name, "client_close" | "data_after_end" | "oversized"))
        .flat_map(|(i, _)| calls(10 * i as u32).swap_remove(i).1)
        .collect();
    seeds.push(("server", "all_calls", cat(&[&[0], &renumbered])));
    seeds.push((
        "server",
        "all_calls_small_server_tiny_client",
        cat(&[&[SMALL_SERVER | profile(1)], &renumbered]),
    ));
    seeds.push((
        "server",
        "all_calls_trickle_shutdown",
        cat(&[&[TRICKLE | SHUTDOWN], &renumbered]),
    ));
    seeds.push((
        "server",
        "all_calls_hang_up",
        cat(&[&[HANG_UP], &renumbered]),
    ));
    seeds.push((
        "server",
        "raw_preface_version_7",
        cat(&[
            &[RAW_PREFACE],
            &preface_v(7, 1 << 20, 4 << 20, 1 << 20, 16 << 20),
            &unary_hello(),
        ]),
    ));
    seeds.push((
        "server",
        "raw_preface_one_byte_windows",
        cat(&[
            &[RAW_PREFACE],
            &preface(1024, 1 << 20, 1, 1),
            &open(1, true, "Fuzz.unary", 0, &[], &msg(&job(&[("size", 50)]))),
            &credit(1, 10),
            &credit(0, 10),
        ]),
    ));
    seeds
}
