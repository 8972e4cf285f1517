//! How busy the whole machine was during a run, from `/proc/stat`: the command, the
//! kernel's terminal and disk work and every reader count, not only the server.

/// The machine's CPU counters at one moment.
pub struct MachineCpu {
    busy: u64,
    total: u64,
    cpus: usize,
}

impl MachineCpu {
    /// `None` where `/proc/stat` cannot be read (not Linux).
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let mut lines = stat.lines();
        let all: Vec<u64> = lines
            .next()?
            .strip_prefix("cpu ")?
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let idle = all.get(3)? + all.get(4)?;
        let total: u64 = all.iter().take(8).sum();
        let cpus = lines
            .take_while(|l| l.starts_with("cpu"))
            .filter(|l| l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count()
            .max(1);
        Some(MachineCpu {
            busy: total - idle,
            total,
            cpus,
        })
    }

    /// CPUs kept busy on average since `self` (2.0 = both of two CPUs all the time).
    pub fn busy_cores_since(&self) -> Option<f64> {
        let now = MachineCpu::now()?;
        let total = now.total.checked_sub(self.total).filter(|&t| t > 0)?;
        let busy = now.busy.saturating_sub(self.busy);
        Some(busy as f64 / total as f64 * self.cpus as f64)
    }
}
