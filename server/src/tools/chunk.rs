//! UTF-8-safe chunking of terminal bytes.
//!
//! Terminal output arrives in arbitrary byte slices, so a multibyte character
//! can straddle two reads. The decoder carries such partial sequences over
//! instead of turning them into replacement characters, and otherwise follows
//! exactly the replacement rules of `String::from_utf8_lossy` so a stream
//! decodes the same no matter how it was cut. Control bytes such as `\r` and
//! ANSI escape sequences are valid UTF-8 and pass through untouched.

/// Upper bound on the number of chars in one streamed message.
///
/// A flood goes out in messages of this size, and each message costs the same fixed
/// work however long it is: a row and a commit, a broadcast, a wake-up of every
/// stream, an SSE frame. Against 8,000 (BENCHMARKS.md, "Issue 15: a flood in fewer,
/// larger messages"), the server's CPU per MB fell by a tenth to a fifth for `yes`
/// and base64, throughput stayed within the machine's run-to-run spread, and the
/// browser showed a flood sooner with fewer long frames. The page takes messages in
/// batches of at most 256 Ki chars (`public/stream-worker.js`) either way.
pub const MAX_CHUNK_CHARS: usize = 32_000;

/// How many of a call's last output chars its result carries: enough to show how a
/// command ended, no more, as the result is one message in the log.
pub const RESULT_TAIL_CHARS: usize = 8_000;

const REPLACEMENT: char = '\u{FFFD}';

/// Incremental, lossy UTF-8 decoder.
#[derive(Debug, Default, Clone)]
pub struct Utf8Decoder {
    // A valid-but-incomplete prefix of one UTF-8 sequence (at most 3 bytes).
    carry: Vec<u8>,
}

impl Utf8Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes `bytes` into `out`; an incomplete sequence at the end is kept
    /// for the next call.
    pub fn push(&mut self, bytes: &[u8], out: &mut String) {
        let mut rest = bytes;

        // Complete (or reject) the carried sequence byte by byte. The carry is
        // always a valid prefix, so when a new byte makes it invalid the
        // maximal invalid subsequence is exactly the carry: it becomes one
        // U+FFFD and the new byte must be decoded afresh.
        while !self.carry.is_empty() {
            let Some((&b, tail)) = rest.split_first() else {
                return;
            };
            self.carry.push(b);
            match std::str::from_utf8(&self.carry) {
                Ok(s) => {
                    out.push_str(s);
                    self.carry.clear();
                    rest = tail;
                }
                Err(e) if e.error_len().is_none() => rest = tail,
                Err(_) => {
                    out.push(REPLACEMENT);
                    self.carry.clear();
                }
            }
        }

        let mut chunks = rest.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            out.push_str(chunk.valid());
            let invalid = chunk.invalid();
            if invalid.is_empty() {
                continue;
            }
            // Only the very last invalid run can be a sequence that is merely
            // cut short; everything else is definitively broken.
            let truncated = chunks.peek().is_none()
                && std::str::from_utf8(invalid).is_err_and(|e| e.error_len().is_none());
            if truncated {
                self.carry.extend_from_slice(invalid);
            } else {
                out.push(REPLACEMENT);
            }
        }
    }

    /// Flushes a dangling incomplete sequence as a single U+FFFD, matching
    /// what `from_utf8_lossy` does at the end of its input.
    pub fn finish(&mut self, out: &mut String) {
        if !self.carry.is_empty() {
            self.carry.clear();
            out.push(REPLACEMENT);
        }
    }

    /// True if part of a multibyte sequence is waiting for more bytes.
    pub fn has_pending(&self) -> bool {
        !self.carry.is_empty()
    }
}

/// Drops the start of `text` so that at most its last `max_chars` chars remain.
pub fn keep_last_chars(text: &mut String, max_chars: usize) {
    let count = text.chars().count();
    if count > max_chars {
        let cut = text
            .char_indices()
            .nth(count - max_chars)
            .map_or(text.len(), |(at, _)| at);
        text.drain(..cut);
    }
}

/// Splits `text` into pieces of at most `max_chars` chars, on char
/// boundaries. A `max_chars` of 0 is treated as 1 so the iterator always
/// makes progress.
pub fn split_chars(text: &str, max_chars: usize) -> impl Iterator<Item = &str> {
    let max_chars = max_chars.max(1);
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // Terminal output is mostly ASCII, where chars are bytes: checking that
        // is much cheaper than walking the chars.
        let end = if rest.len() <= max_chars {
            rest.len()
        } else if rest.as_bytes()[..max_chars].is_ascii() {
            max_chars
        } else {
            rest.char_indices()
                .nth(max_chars)
                .map_or(rest.len(), |(i, _)| i)
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keep_last_chars_counts_chars_not_bytes() {
        let mut text = String::from("aé😀漢b");
        keep_last_chars(&mut text, 3);
        assert_eq!(text, "😀漢b");
        keep_last_chars(&mut text, 10);
        assert_eq!(text, "😀漢b");
        keep_last_chars(&mut text, 0);
        assert_eq!(text, "");
    }

    fn decode_pieces(whole: &[u8], cuts: &[usize]) -> String {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (whole.len() + 1)).collect();
        cuts.sort_unstable();
        let mut dec = Utf8Decoder::new();
        let mut out = String::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain(std::iter::once(whole.len())) {
            dec.push(&whole[start..cut], &mut out);
            start = cut;
        }
        dec.finish(&mut out);
        out
    }

    // Biases generated bytes towards UTF-8 lead/continuation bytes so that
    // truncated and malformed sequences actually get exercised.
    fn utf8ish_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            any::<u8>(),
            0x80u8..=0xBF,
            0xC0u8..=0xF7,
            Just(b'a'),
            Just(0x1B),
            Just(b'\r'),
        ];
        prop::collection::vec(byte, 0..64)
    }

    proptest! {
        #[test]
        fn any_cuts_match_lossy(
            whole in prop_oneof![prop::collection::vec(any::<u8>(), 0..256), utf8ish_bytes()],
            cuts in prop::collection::vec(any::<usize>(), 0..16),
        ) {
            prop_assert_eq!(
                decode_pieces(&whole, &cuts),
                String::from_utf8_lossy(&whole).into_owned()
            );
        }

        #[test]
        fn valid_text_survives_arbitrary_cuts(
            text in "[a-zé€😀\r\x1b\\[]{0,40}",
            cuts in prop::collection::vec(any::<usize>(), 0..16),
        ) {
            prop_assert_eq!(decode_pieces(text.as_bytes(), &cuts), text);
        }

        #[test]
        fn split_chars_bounded_and_lossless(text in "\\PC{0,300}", max in 1usize..50) {
            let pieces: Vec<&str> = split_chars(&text, max).collect();
            for p in &pieces {
                prop_assert!(!p.is_empty());
                prop_assert!(p.chars().count() <= max);
            }
            prop_assert_eq!(pieces.concat(), text);
        }
    }

    #[test]
    fn multibyte_split_at_every_offset() {
        let text = "ab\u{e9}\u{20ac}\u{1F600}\r\n\x1b[31mz\u{e9}\u{1F600}\u{20ac}x";
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(decode_pieces(bytes, &[cut]), text, "single cut at {cut}");
            for cut2 in cut..=bytes.len() {
                assert_eq!(
                    decode_pieces(bytes, &[cut, cut2]),
                    text,
                    "cuts {cut},{cut2}"
                );
            }
        }
        // One byte at a time is the worst case for carrying.
        let mut dec = Utf8Decoder::new();
        let mut out = String::new();
        for b in bytes {
            dec.push(std::slice::from_ref(b), &mut out);
        }
        dec.finish(&mut out);
        assert_eq!(out, text);
    }

    #[test]
    fn dangling_sequence_becomes_one_replacement() {
        let mut dec = Utf8Decoder::new();
        let mut out = String::new();
        dec.push(b"x\xF0\x9F", &mut out);
        assert_eq!(out, "x");
        assert!(dec.has_pending());
        dec.push(b"\x98", &mut out);
        assert_eq!(out, "x");
        dec.finish(&mut out);
        assert_eq!(out, "x\u{FFFD}");
        assert!(!dec.has_pending());
    }

    #[test]
    fn broken_carry_reprocesses_next_byte() {
        let mut dec = Utf8Decoder::new();
        let mut out = String::new();
        dec.push(b"\xE2\x82", &mut out);
        dec.push(b"A\xC3", &mut out);
        dec.push(b"\xA9", &mut out);
        dec.finish(&mut out);
        assert_eq!(out, "\u{FFFD}A\u{e9}");
    }

    #[test]
    fn split_chars_edges() {
        assert_eq!(split_chars("", 3).count(), 0);
        let v: Vec<_> = split_chars("\u{e9}\u{e9}\u{e9}\u{e9}", 3).collect();
        assert_eq!(v, ["\u{e9}\u{e9}\u{e9}", "\u{e9}"]);
        let v: Vec<_> = split_chars("abc", 0).collect();
        assert_eq!(v, ["a", "b", "c"]);
    }
}
