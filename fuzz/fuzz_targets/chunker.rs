//! `server::chunk`: terminal bytes cut anywhere decode exactly like
//! `String::from_utf8_lossy` of the whole, and `split_chars` pieces are non-empty,
//! at most `max` chars, and put back together give the text.
//!
//! Input layout: byte 0 picks `max`, byte 1 the number of cuts, then two bytes per
//! cut (a position, taken modulo the payload length), then the payload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use server::chunk::{MAX_CHUNK_CHARS, Utf8Decoder, split_chars};

fuzz_target!(|data: &[u8]| {
    let Some((&max_byte, rest)) = data.split_first() else {
        return;
    };
    let Some((&cut_count, rest)) = rest.split_first() else {
        return;
    };
    let cut_bytes = (usize::from(cut_count) % 16) * 2;
    if rest.len() < cut_bytes {
        return;
    }
    let (cut_data, payload) = rest.split_at(cut_bytes);
    let mut cuts: Vec<usize> = cut_data
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])) % (payload.len() + 1))
        .collect();
    cuts.sort_unstable();

    // Decoding in pieces equals decoding the whole.
    let mut decoder = Utf8Decoder::new();
    let mut out = String::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain(std::iter::once(payload.len())) {
        decoder.push(&payload[start..cut], &mut out);
        start = cut;
    }
    decoder.finish(&mut out);
    assert!(!decoder.has_pending(), "finish leaves nothing pending");
    assert_eq!(out, String::from_utf8_lossy(payload), "pieces != whole");

    // Splitting is bounded and lossless; 0 means MAX_CHUNK_CHARS here (the real size).
    let max = match max_byte {
        0 => MAX_CHUNK_CHARS,
        n => usize::from(n % 64),
    };
    let limit = max.max(1);
    let mut joined = String::with_capacity(out.len());
    for piece in split_chars(&out, max) {
        let n = piece.chars().count();
        assert!(n > 0, "an empty piece");
        assert!(n <= limit, "a piece of {n} chars with max {max}");
        joined.push_str(piece);
    }
    assert_eq!(joined, out, "split_chars lost or added text");
});
