//! Reconnect schedule for the event stream. Exponential so a down server is
//! not hammered, capped so a recovered server is noticed within a minute, and
//! jittered so many tabs don't reconnect in lockstep after a server restart.
//! The caller supplies the randomness (`Math.random()`), keeping this pure.

pub const INITIAL_DELAY_MS: f64 = 1000.0;
pub const MAX_DELAY_MS: f64 = 60_000.0;
pub const FACTOR: f64 = 1.5;
/// Total jitter span as a fraction of the delay: ±10 %.
pub const JITTER_SPAN: f64 = 0.2;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backoff {
    attempt: u32,
}

/// Un-jittered delay before reconnect attempt number `attempt` (0-based).
pub fn base_delay_ms(attempt: u32) -> f64 {
    // 1.5^18 already exceeds the cap; limiting the exponent keeps powi exact
    // and avoids an i32 overflow for absurd attempt counts.
    let exp = attempt.min(64) as i32;
    (INITIAL_DELAY_MS * FACTOR.powi(exp)).min(MAX_DELAY_MS)
}

impl Backoff {
    pub fn new() -> Self {
        Self::default()
    }

    /// Delay before the next attempt; `jitter_unit` is a uniform random value
    /// in `[0, 1)`. Out-of-range or NaN input is clamped / treated as 0.5 so
    /// a bad RNG cannot produce a negative or zero delay loop.
    pub fn next_delay_ms(&mut self, jitter_unit: f64) -> f64 {
        let j = if jitter_unit.is_finite() {
            jitter_unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let delay = base_delay_ms(self.attempt) * (1.0 + JITTER_SPAN * (j - 0.5));
        self.attempt = self.attempt.saturating_add(1);
        delay
    }

    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Call when the connection opens successfully.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn schedule_grows_and_caps() {
        let mut b = Backoff::new();
        let delays: Vec<f64> = (0..20).map(|_| b.next_delay_ms(0.5)).collect();
        assert_eq!(&delays[..5], &[1000.0, 1500.0, 2250.0, 3375.0, 5062.5]);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(delays[19], 60_000.0);
        assert_eq!(b.attempt(), 20);
        assert_eq!(base_delay_ms(u32::MAX), 60_000.0);
        assert_eq!(base_delay_ms(0), 1000.0);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new();
        b.next_delay_ms(0.5);
        b.next_delay_ms(0.5);
        b.reset();
        assert_eq!(b.attempt(), 0);
        assert_eq!(b.next_delay_ms(0.5), 1000.0);
    }

    #[test]
    fn bad_jitter_is_contained() {
        let mut b = Backoff::new();
        assert_eq!(b.next_delay_ms(f64::NAN), 1000.0);
        let mut b = Backoff::new();
        assert_eq!(b.next_delay_ms(-5.0), 900.0);
        let mut b = Backoff::new();
        assert_eq!(b.next_delay_ms(7.0), 1100.0);
    }

    proptest! {
        #[test]
        fn jitter_within_ten_percent(attempt in 0u32..40, j in 0.0f64..1.0) {
            let mut b = Backoff { attempt };
            let base = base_delay_ms(attempt);
            let d = b.next_delay_ms(j);
            prop_assert!(d >= base * 0.9 - 1e-9 && d <= base * 1.1 + 1e-9);
            prop_assert!(d > 0.0 && d <= MAX_DELAY_MS * 1.1 + 1e-9);
            prop_assert_eq!(b.attempt(), attempt + 1);
        }
    }
}
