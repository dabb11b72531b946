//! The connection preface: magic, protocol version and this side's limits, sent by both sides
//! before any frame.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::Config;

/// The first four bytes of every micro connection.
pub(crate) const MAGIC: [u8; 4] = *b"MCRO";
/// The protocol version this build speaks.
pub(crate) const VERSION: u16 = 1;
/// Bytes in a preface.
pub(crate) const PREFACE_LEN: usize = 24;

/// What a peer announced in its preface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PeerSettings {
    pub(crate) max_frame_size: u32,
    pub(crate) max_message_size: u32,
    pub(crate) stream_window: u32,
    pub(crate) connection_window: u32,
}

/// Encodes this side's preface.
pub(crate) fn preface(config: &Config) -> [u8; PREFACE_LEN] {
    let mut out = [0u8; PREFACE_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_be_bytes());
    // 6..8: flags, reserved (zero)
    out[8..12].copy_from_slice(&config.max_frame_size.to_be_bytes());
    out[12..16].copy_from_slice(&config.max_message_size.to_be_bytes());
    out[16..20].copy_from_slice(&config.stream_window.to_be_bytes());
    out[20..24].copy_from_slice(&config.connection_window.to_be_bytes());
    out
}

/// Checks a peer's preface.
pub(crate) fn parse(bytes: &[u8; PREFACE_LEN]) -> Result<PeerSettings, String> {
    if bytes[..4] != MAGIC {
        return Err(format!(
            "the peer does not speak micro (its first bytes are {:02x?}, expected {:02x?} \"MCRO\")",
            &bytes[..4],
            MAGIC
        ));
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(format!(
            "the peer speaks micro protocol version {version}, this side speaks version {VERSION}"
        ));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
    let settings = PeerSettings {
        max_frame_size: word(8),
        max_message_size: word(12),
        stream_window: word(16),
        connection_window: word(20),
    };
    if settings.max_frame_size < 1024
        || settings.stream_window == 0
        || settings.connection_window == 0
    {
        return Err(format!("the peer announced unusable limits: {settings:?}"));
    }
    Ok(settings)
}

async fn read_preface<R: AsyncRead + Unpin>(io: &mut R) -> io::Result<PeerSettings> {
    let mut buf = [0u8; PREFACE_LEN];
    io.read_exact(&mut buf).await?;
    parse(&buf).map_err(|msg| io::Error::new(io::ErrorKind::InvalidData, msg))
}

/// The client's half: send our preface, then read and check the server's.
pub(crate) async fn client<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut IO,
    config: &Config,
) -> io::Result<PeerSettings> {
    io.write_all(&preface(config)).await?;
    io.flush().await?;
    read_preface(io).await
}

/// The server's half: read the client's preface, answer with ours whatever it said (so a
/// client of another version learns which one this server speaks), then judge it.
pub(crate) async fn server<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut IO,
    config: &Config,
) -> io::Result<PeerSettings> {
    let mut buf = [0u8; PREFACE_LEN];
    io.read_exact(&mut buf).await?;
    io.write_all(&preface(config)).await?;
    io.flush().await?;
    parse(&buf).map_err(|msg| io::Error::new(io::ErrorKind::InvalidData, msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preface_round_trips() {
        let config = Config::default();
        let settings = parse(&preface(&config)).unwrap();
        assert_eq!(settings.max_frame_size, config.max_frame_size);
        assert_eq!(settings.max_message_size, config.max_message_size);
        assert_eq!(settings.stream_window, config.stream_window);
        assert_eq!(settings.connection_window, config.connection_window);
    }

    #[test]
    fn wrong_magic_and_version_are_named() {
        let mut bytes = preface(&Config::default());
        bytes[5] = 9;
        assert!(parse(&bytes).unwrap_err().contains("version 9"));
        bytes[0] = b'G';
        assert!(parse(&bytes).unwrap_err().contains("does not speak micro"));
    }
}
