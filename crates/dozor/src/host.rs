//! A small reader of this host's CPU, load and memory from `/proc`, for the demo's host
//! metrics. (The full host collector, node_exporter-compatible, arrives with the metrics
//! engine.)

/// One reading of `/proc`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostReading {
    /// Sum of all CPU jiffies, and the idle + iowait part.
    pub cpu_total: u64,
    /// Idle and iowait jiffies.
    pub cpu_idle: u64,
    /// 1-minute load average.
    pub load1: f64,
    /// Available memory, bytes.
    pub mem_available: f64,
    /// Total memory, bytes.
    pub mem_total: f64,
}

impl HostReading {
    /// Reads `/proc/stat`, `/proc/loadavg` and `/proc/meminfo`; `None` off Linux.
    pub fn read() -> Option<HostReading> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let loadavg = std::fs::read_to_string("/proc/loadavg").ok()?;
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        Self::parse(&stat, &loadavg, &meminfo)
    }

    /// Parses the three files' contents.
    pub fn parse(stat: &str, loadavg: &str, meminfo: &str) -> Option<HostReading> {
        let cpu: Vec<u64> = stat
            .lines()
            .find(|l| l.starts_with("cpu "))?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let mem = |key: &str| -> Option<f64> {
            let kib: f64 = meminfo
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(kib * 1024.0)
        };
        Some(HostReading {
            cpu_total: cpu.iter().take(8).sum(),
            cpu_idle: cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0),
            load1: loadavg.split_whitespace().next()?.parse().ok()?,
            mem_available: mem("MemAvailable:")?,
            mem_total: mem("MemTotal:")?,
        })
    }

    /// Busy share of CPU time between `earlier` and `self`, in [0, 1].
    pub fn cpu_busy_since(&self, earlier: &HostReading) -> f64 {
        let total = self.cpu_total.saturating_sub(earlier.cpu_total);
        let idle = self.cpu_idle.saturating_sub(earlier.cpu_idle);
        if total == 0 {
            0.0
        } else {
            (total - idle.min(total)) as f64 / total as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3\n";
    const LOAD: &str = "0.52 0.40 0.30 1/200 12345\n";
    const MEM: &str =
        "MemTotal:       2048 kB\nMemFree:         100 kB\nMemAvailable:    1024 kB\n";

    #[test]
    fn parses_proc_files() {
        let r = HostReading::parse(STAT, LOAD, MEM).unwrap();
        assert_eq!((r.cpu_total, r.cpu_idle), (1000, 800));
        assert_eq!(r.load1, 0.52);
        assert_eq!(
            (r.mem_available, r.mem_total),
            (1024.0 * 1024.0, 2048.0 * 1024.0)
        );
    }

    #[test]
    fn busy_share_is_the_non_idle_part_of_the_delta() {
        let a = HostReading::parse(STAT, LOAD, MEM).unwrap();
        let b = HostReading {
            cpu_total: 1100,
            cpu_idle: 875,
            ..a
        };
        assert!((b.cpu_busy_since(&a) - 0.25).abs() < 1e-9);
        assert_eq!(a.cpu_busy_since(&a), 0.0);
    }

    #[test]
    fn garbage_is_none_not_a_panic() {
        assert!(HostReading::parse("", "", "").is_none());
        assert!(HostReading::parse(STAT, "x", MEM).is_none());
    }
}
