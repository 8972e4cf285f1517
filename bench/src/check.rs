//! Output checks and small statistics helpers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Terminal bytes `seq 1 n` produces (the PTY turns `\n` into `\r\n`).
pub fn seq_bytes(n: u64) -> u64 {
    let mut total = 0;
    let mut lo = 1;
    let mut digits = 1;
    while lo <= n {
        let hi = (lo * 10 - 1).min(n);
        total += (hi - lo + 1) * (digits + 2);
        lo *= 10;
        digits += 1;
    }
    total
}

/// Terminal bytes `head -c n /dev/urandom | base64` produces (76-column lines).
pub fn base64_bytes(n: u64) -> u64 {
    let chars = n.div_ceil(3) * 4;
    chars + 2 * chars.div_ceil(76)
}

/// Terminal bytes `yes | head -c n` produces (`y\n` → `y\r\n`).
pub fn yes_bytes(n: u64) -> u64 {
    n / 2 * 3 + n % 2
}

/// Counts output bytes and, for `seq`, compares them with the expected text exactly.
pub struct OutputCheck {
    pub bytes: u64,
    seq: Option<SeqState>,
    mismatch: Option<u64>,
}

struct SeqState {
    next: u64,
    line: Vec<u8>,
    pos: usize,
}

impl OutputCheck {
    pub fn new(seq_exact: bool) -> Self {
        OutputCheck {
            bytes: 0,
            seq: seq_exact.then(|| SeqState {
                next: 2,
                line: b"1\r\n".to_vec(),
                pos: 0,
            }),
            mismatch: None,
        }
    }

    pub fn feed(&mut self, data: &[u8]) {
        if let (Some(seq), None) = (&mut self.seq, self.mismatch) {
            for (i, &b) in data.iter().enumerate() {
                if seq.pos == seq.line.len() {
                    seq.line.clear();
                    seq.line.extend_from_slice(seq.next.to_string().as_bytes());
                    seq.line.extend_from_slice(b"\r\n");
                    seq.next += 1;
                    seq.pos = 0;
                }
                if seq.line[seq.pos] != b {
                    self.mismatch = Some(self.bytes + i as u64);
                    break;
                }
                seq.pos += 1;
            }
        }
        self.bytes += data.len() as u64;
    }

    /// `Err` describing the problem if the output is not what was expected.
    pub fn verify(&self, expected_bytes: u64) -> Result<(), String> {
        if let Some(at) = self.mismatch {
            return Err(format!(
                "output differs from the expected text at byte {at}"
            ));
        }
        if self.bytes != expected_bytes {
            return Err(format!(
                "got {} bytes of output, expected {expected_bytes}",
                self.bytes
            ));
        }
        Ok(())
    }
}

pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Collects latencies from output lines `T<unix ns>` written by `tether-bench tick`.
#[derive(Default)]
pub struct Ticks {
    carry: Vec<u8>,
    pub samples_ms: Vec<f64>,
}

impl Ticks {
    pub fn feed(&mut self, data: &[u8]) {
        let now = now_ns();
        self.carry.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.carry[start..].iter().position(|&b| b == b'\n') {
            let line = &self.carry[start..start + nl];
            start += nl + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if let Some(ts) = line
                .strip_prefix(b"T")
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| d.parse::<u128>().ok())
            {
                self.samples_ms
                    .push(now.saturating_sub(ts) as f64 / 1_000_000.0);
            }
        }
        self.carry.drain(..start);
    }
}

/// The value at quantile `q` (0..=1) of `v`, nearest rank.
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len());
    s[rank - 1]
}

/// (min, median, max).
pub fn spread(v: &[f64]) -> (f64, f64, f64) {
    (quantile(v, 0.0), quantile(v, 0.5), quantile(v, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_sizes() {
        // seq 1 12 → 9 one-digit + 3 two-digit lines.
        assert_eq!(seq_bytes(12), 9 * 3 + 3 * 4);
        // 57 input bytes → 76 chars → one line.
        assert_eq!(base64_bytes(57), 78);
        assert_eq!(base64_bytes(58), 80 + 4);
        assert_eq!(yes_bytes(6), 9);
    }

    #[test]
    fn seq_check_catches_a_gap() {
        let mut ok = OutputCheck::new(true);
        ok.feed(b"1\r\n2\r");
        ok.feed(b"\n3\r\n");
        assert!(ok.verify(seq_bytes(3)).is_ok());
        let mut bad = OutputCheck::new(true);
        bad.feed(b"1\r\n3\r\n");
        assert!(bad.verify(6).is_err());
    }

    #[test]
    fn ticks_across_chunks() {
        let mut t = Ticks::default();
        t.feed(b"T1\r\nT");
        t.feed(b"2\r\nnoise\r\n");
        assert_eq!(t.samples_ms.len(), 2);
    }
}
