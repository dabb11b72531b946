//! Byte builders for the wire format of `docs/PROTOCOL.md`, for seed inputs and tests.

/// Frame type bytes (§3.2).
pub const OPEN: u8 = 1;
/// DATA.
pub const DATA: u8 = 2;
/// CLOSE.
pub const CLOSE: u8 = 3;
/// CANCEL.
pub const CANCEL: u8 = 4;
/// CREDIT.
pub const CREDIT: u8 = 5;
/// PING.
pub const PING: u8 = 6;
/// GOAWAY.
pub const GOAWAY: u8 = 7;
/// END_STREAM on OPEN and DATA; ACK on PING.
pub const END_STREAM: u8 = 1;

/// A 24-byte preface (§2.1) with version 1 and the given limits.
pub fn preface(
    max_frame_size: u32,
    max_message_size: u32,
    stream_window: u32,
    connection_window: u32,
) -> Vec<u8> {
    preface_v(
        1,
        max_frame_size,
        max_message_size,
        stream_window,
        connection_window,
    )
}

/// A preface of any version.
pub fn preface_v(
    version: u16,
    max_frame_size: u32,
    max_message_size: u32,
    stream_window: u32,
    connection_window: u32,
) -> Vec<u8> {
    let mut p = b"MCRO".to_vec();
    p.extend(version.to_be_bytes());
    p.extend([0, 0]);
    for v in [
        max_frame_size,
        max_message_size,
        stream_window,
        connection_window,
    ] {
        p.extend(v.to_be_bytes());
    }
    p
}

/// micro's default preface.
pub fn default_preface() -> Vec<u8> {
    preface(2 << 20, 4 << 20, 2 << 20, 16 << 20)
}

/// A frame (§3.1).
pub fn frame(stream: u32, kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = ((6 + payload.len()) as u32).to_be_bytes().to_vec();
    f.extend(stream.to_be_bytes());
    f.extend([kind, flags]);
    f.extend(payload);
    f
}

/// One length-prefixed message (§4.1).
pub fn msg(body: &[u8]) -> Vec<u8> {
    let mut m = (body.len() as u32).to_be_bytes().to_vec();
    m.extend(body);
    m
}

/// A metadata block (§3.3).
pub fn metadata(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    for (k, v) in entries {
        block.extend((k.len() as u16).to_be_bytes());
        block.extend(k.as_bytes());
        block.extend((v.len() as u32).to_be_bytes());
        block.extend(v.as_bytes());
    }
    block
}

/// An OPEN frame: method, timeout, metadata, then message data.
pub fn open(
    id: u32,
    end_stream: bool,
    method: &str,
    timeout_us: u64,
    md: &[(&str, &str)],
    data: &[u8],
) -> Vec<u8> {
    let block = metadata(md);
    let mut p = (method.len() as u16).to_be_bytes().to_vec();
    p.extend(method.as_bytes());
    p.extend(timeout_us.to_be_bytes());
    p.extend((block.len() as u32).to_be_bytes());
    p.extend(block);
    p.extend(data);
    frame(id, OPEN, if end_stream { END_STREAM } else { 0 }, &p)
}

/// A DATA frame.
pub fn data(id: u32, end_stream: bool, data: &[u8]) -> Vec<u8> {
    frame(id, DATA, if end_stream { END_STREAM } else { 0 }, data)
}

/// A CLOSE frame.
pub fn close(id: u32, code: u8, message: &str, data: &[u8]) -> Vec<u8> {
    let mut p = vec![code];
    p.extend((message.len() as u32).to_be_bytes());
    p.extend(message.as_bytes());
    p.extend(0u32.to_be_bytes());
    p.extend(data);
    frame(id, CLOSE, 0, &p)
}

/// A CANCEL frame.
pub fn cancel(id: u32, code: u8) -> Vec<u8> {
    frame(id, CANCEL, 0, &[code])
}

/// A CREDIT frame.
pub fn credit(id: u32, increment: u32) -> Vec<u8> {
    frame(id, CREDIT, 0, &increment.to_be_bytes())
}

/// A PING frame.
pub fn ping(ack: bool, payload: u64) -> Vec<u8> {
    frame(
        0,
        PING,
        if ack { END_STREAM } else { 0 },
        &payload.to_be_bytes(),
    )
}

/// A GOAWAY frame.
pub fn goaway(last: u32, code: u8, reason: &str) -> Vec<u8> {
    let mut p = last.to_be_bytes().to_vec();
    p.push(code);
    p.extend(reason.as_bytes());
    frame(0, GOAWAY, 0, &p)
}

/// MessagePack for a `Job` map with the given entries (`count`, `size`, `sleep_ms`, `fail`),
/// for values below 128.
pub fn job(entries: &[(&str, u8)]) -> Vec<u8> {
    let mut m = vec![0x80 | entries.len() as u8];
    for (k, v) in entries {
        m.push(0xa0 | k.len() as u8);
        m.extend(k.as_bytes());
        m.push(*v);
    }
    m
}

/// MessagePack fixstr.
pub fn fixstr(s: &str) -> Vec<u8> {
    let mut m = vec![0xa0 | s.len() as u8];
    m.extend(s.as_bytes());
    m
}

/// Concatenates byte strings.
pub fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}
