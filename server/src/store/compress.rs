//! How SQLite keeps a long message: its JSON zstd-compressed in the same column, as a
//! BLOB. A flood's output chunks are up to 32,000 characters each, and what is not written
//! costs the one writer nothing, neither in the WAL nor again at the checkpoint.

use std::cell::{Cell, RefCell};

/// A message's JSON at least this long is stored compressed when that saves a tenth
/// or more (and `Policy` does not skip it); shorter messages are kept as text.
const COMPRESS_FROM: usize = 2048;
/// A long row that does not shrink below this share of its size is not worth the CPU:
/// random base64 shrinks only by a quarter, and compressing it cost more than writing
/// a quarter more saved (measured: its flood 10–20 % faster without). `seq`,
/// `yes` or a build log shrink far more.
const WORTH_IT: f64 = 2.0 / 3.0;
/// After a row not worth it, this many long rows are stored as text without trying;
/// the next one is tried again, so output that turns compressible is noticed.
const SKIP_AFTER_MISS: u32 = 31;
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
    // Per thread like the context: a flood's rows are compressed on whichever worker
    // runs its append, and a probe costs one row, so no finer bookkeeping pays.
    static POLICY: Cell<Policy> = const { Cell::new(Policy { skip: 0 }) };
}

/// Whether long rows are worth trying to compress, from how the last one tried did.
#[derive(Clone, Copy, Debug)]
struct Policy {
    /// Long rows still to be stored as text without trying.
    skip: u32,
}

impl Policy {
    fn should_try(&mut self) -> bool {
        if self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        false
    }

    fn tried(&mut self, len: usize, packed_len: usize) {
        if packed_len as f64 > len as f64 * WORTH_IT {
            self.skip = SKIP_AFTER_MISS;
        }
    }
}

/// The row's JSON compressed, when it is long enough and that pays.
pub(super) fn pack(json: &str) -> Option<Vec<u8>> {
    if json.len() < COMPRESS_FROM {
        return None;
    }
    let mut policy = POLICY.get();
    let packed = pack_with(&mut policy, json);
    POLICY.set(policy);
    packed
}

fn pack_with(policy: &mut Policy, json: &str) -> Option<Vec<u8>> {
    if !policy.should_try() {
        return None;
    }
    let packed = COMPRESSOR.with_borrow_mut(|slot| {
        let compressor = match slot {
            Some(c) => c,
            None => slot.insert(zstd::bulk::Compressor::new(COMPRESS_LEVEL).ok()?),
        };
        compressor.compress(json.as_bytes()).ok()
    })?;
    policy.tried(json.len(), packed.len());
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

/// Text with six bits of entropy a character, like base64 of random bytes: long rows
/// of it are not worth compressing, so the store keeps them as they are.
#[cfg(test)]
pub(super) fn random_text(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            // xorshift64: deterministic, and as incompressible as random base64.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(ALPHABET[(x % 64) as usize])
        })
        .collect()
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
    fn incompressible_rows_are_tried_only_now_and_then() {
        let mut policy = Policy { skip: 0 };
        let rows: Vec<String> = (1..=40).map(|i| random_text(8000, i)).collect();
        let tried: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, row)| {
                let before = policy.skip;
                let packed = pack_with(&mut policy, row);
                if let Some(p) = &packed {
                    assert_eq!(unpack(p).expect("unpack"), row.as_bytes());
                }
                // Tried: the policy was ready for it, and it set the skip again.
                before == 0 && policy.skip == SKIP_AFTER_MISS
            })
            .map(|(i, _)| i)
            .collect();
        assert_eq!(
            tried,
            vec![0, 32],
            "one probe in every {}",
            SKIP_AFTER_MISS + 1
        );
    }

    #[test]
    fn after_a_miss_even_compressible_rows_wait_for_the_next_probe() {
        let mut policy = Policy { skip: 0 };
        let yes = "y\\r\\n".repeat(2000);
        for _ in 0..5 {
            let packed = pack_with(&mut policy, &yes).expect("compressed");
            assert!(packed.len() * 10 < yes.len());
        }
        assert!(pack_with(&mut policy, &random_text(8000, 3)).is_some_and(|p| p.len() > 5000));
        let skipped = (0..SKIP_AFTER_MISS)
            .filter(|_| pack_with(&mut policy, &yes).is_none())
            .count();
        assert_eq!(
            skipped, SKIP_AFTER_MISS as usize,
            "rows right after the miss are text"
        );
        assert!(
            pack_with(&mut policy, &yes).is_some(),
            "then tried, and compressed, again"
        );
        assert!(pack_with(&mut policy, &yes).is_some());
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
