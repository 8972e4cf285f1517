//! How SQLite keeps a long message: its JSON zstd-compressed in the same column, as a
//! BLOB. A flood's output chunks are 8,000 characters each, and what is not written
//! costs the one writer nothing, neither in the WAL nor again at the checkpoint.

use std::cell::RefCell;

/// A message's JSON at least this long is stored compressed when that saves a tenth
/// or more; shorter messages are kept as text.
const COMPRESS_FROM: usize = 2048;
/// zstd's fastest levels run at hundreds of MB/s a core, far above a PTY's rate.
const COMPRESS_LEVEL: i32 = 1;
/// A compressed row claiming to be larger than this is not trusted to size a buffer.
const MAX_UNPACKED: usize = 64 * 1024 * 1024;

thread_local! {
    // One zstd context per thread, kept: creating one per row (and zeroing its
    // tables) cost more CPU under a flood than the compression itself.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// The row's JSON compressed, when it is long enough and that pays.
pub(super) fn pack(json: &str) -> Option<Vec<u8>> {
    if json.len() < COMPRESS_FROM {
        return None;
    }
    let packed = COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(COMPRESS_LEVEL).ok()?),
        };
        compressor.compress(json.as_bytes()).ok()
    })?;
    (packed.len() <= json.len() - json.len() / 10).then_some(packed)
}

/// A stored BLOB's JSON. The frame records its size (`pack` always writes it); a
/// frame without one, or claiming more than a row can hold, is decoded as a stream.
pub(super) fn unpack(packed: &[u8]) -> std::io::Result<Vec<u8>> {
    let size = zstd::zstd_safe::get_frame_content_size(packed)
        .ok()
        .flatten()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= MAX_UNPACKED);
    let Some(size) = size else {
        return zstd::decode_all(packed);
    };
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(packed, size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_every_size_round_trip_through_the_kept_contexts() {
        for n in [100usize, 2048, 9000, 40_000, 3000] {
            let json = format!("{{\"content\":\"{}\"}}", "ab\\r\\n".repeat(n / 6));
            match pack(&json) {
                Some(packed) => {
                    assert!(packed.len() < json.len());
                    assert_eq!(unpack(&packed).expect("unpack"), json.as_bytes());
                }
                None => assert!(
                    json.len() < COMPRESS_FROM,
                    "{} bytes kept as text",
                    json.len()
                ),
            }
        }
    }

    #[test]
    fn a_frame_without_its_size_is_still_read() {
        // Written as a stream, so the frame does not record the content size.
        let json = "{\"content\":\"x\"}".repeat(500);
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 1).expect("encoder");
        std::io::Write::write_all(&mut encoder, json.as_bytes()).expect("write");
        let packed = encoder.finish().expect("finish");
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&packed)
                .ok()
                .flatten(),
            None
        );
        assert_eq!(unpack(&packed).expect("unpack"), json.as_bytes());
    }

    #[test]
    fn a_broken_frame_is_an_error_not_a_panic() {
        let mut packed = pack(&"{\"content\":\"yes\"}".repeat(400)).expect("packed");
        let half = packed.len() / 2;
        packed.truncate(half);
        assert!(unpack(&packed).is_err());
    }
}
