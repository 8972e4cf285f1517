//! Detects a silently dead stream: a half-open TCP connection or a stalled
//! proxy can leave an EventSource/WebSocket "open" forever, so the server
//! sends heartbeats and the UI reconnects when nothing arrives for too long.

use serde::{Deserialize, Serialize};

/// How often the UI should call [`Watchdog::is_stale`].
pub const CHECK_INTERVAL_MS: f64 = 5_000.0;
/// Silence after which the connection is presumed dead. Generous compared to
/// the heartbeat period so a busy tab or slow network doesn't flap.
pub const TIMEOUT_MS: f64 = 90_000.0;

/// Client behaviour the server configures (tests shorten the watchdog).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClientSettings {
    /// A stream with no event for this long is considered dead.
    pub watchdog_ms: f64,
    /// How often the watchdog looks.
    pub watchdog_check_ms: f64,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            watchdog_ms: TIMEOUT_MS,
            watchdog_check_ms: CHECK_INTERVAL_MS,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Watchdog {
    timeout_ms: f64,
    last_activity_ms: f64,
}

impl Watchdog {
    pub fn new(timeout_ms: f64, now: f64) -> Self {
        Watchdog {
            timeout_ms,
            last_activity_ms: now,
        }
    }

    pub fn with_default_timeout(now: f64) -> Self {
        Self::new(TIMEOUT_MS, now)
    }

    /// Record activity (heartbeat, message, state change). Assigns rather
    /// than takes the max so a clock that stepped backwards doesn't postpone
    /// staleness detection until it catches up.
    pub fn touch(&mut self, now: f64) {
        self.last_activity_ms = now;
    }

    pub fn is_stale(&self, now: f64) -> bool {
        now - self.last_activity_ms > self.timeout_ms
    }

    pub fn timeout_ms(&self) -> f64 {
        self.timeout_ms
    }

    pub fn last_activity_ms(&self) -> f64 {
        self.last_activity_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_only_after_timeout() {
        let mut w = Watchdog::with_default_timeout(1_000.0);
        assert!(!w.is_stale(1_000.0));
        assert!(!w.is_stale(1_000.0 + TIMEOUT_MS));
        assert!(w.is_stale(1_000.0 + TIMEOUT_MS + 1.0));
        w.touch(50_000.0);
        assert!(!w.is_stale(50_000.0 + TIMEOUT_MS));
        assert!(w.is_stale(50_001.0 + TIMEOUT_MS));
    }

    #[test]
    fn custom_timeout_and_clock_step_back() {
        let mut w = Watchdog::new(10.0, 100.0);
        assert!(w.is_stale(111.0));
        w.touch(5.0);
        assert!(!w.is_stale(10.0));
        assert!(w.is_stale(16.0));
        assert_eq!(w.timeout_ms(), 10.0);
        assert_eq!(w.last_activity_ms(), 5.0);
        // Default check interval must be well below the timeout.
        const { assert!(CHECK_INTERVAL_MS * 4.0 < TIMEOUT_MS) };
    }
}
