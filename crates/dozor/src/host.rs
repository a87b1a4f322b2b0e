//! The demo's summary of this host (CPU busy share, load, available memory), derived from the
//! host collector's node_exporter-named series so `/proc` is parsed in one place only
//! (`dozor_ingest::host`).

use dozor_ingest::Batch;

/// One reading, from one collection of the host collector.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostReading {
    /// CPU seconds over all CPUs and modes.
    pub cpu_total: f64,
    /// CPU seconds idle or waiting for I/O.
    pub cpu_idle: f64,
    /// 1-minute load average.
    pub load1: f64,
    /// Available memory, bytes.
    pub mem_available: f64,
}

impl HostReading {
    /// Reads `/proc` through the host collector; `None` where it yields no CPU series.
    pub fn read() -> Option<HostReading> {
        let files = dozor_ingest::host::ProcFiles::read();
        Self::from_batch(&dozor_ingest::host::collect(&files, "localhost", 0))
    }

    /// Sums the collector's series into a reading.
    pub fn from_batch(batch: &Batch) -> Option<HostReading> {
        let mut r = HostReading::default();
        let mut any_cpu = false;
        for (labels, samples) in batch {
            let Some(v) = samples.first().map(|s| s.v) else {
                continue;
            };
            match labels.metric_name() {
                Some("node_cpu_seconds_total") => {
                    any_cpu = true;
                    r.cpu_total += v;
                    if matches!(labels.get("mode"), Some("idle" | "iowait")) {
                        r.cpu_idle += v;
                    }
                }
                Some("node_load1") => r.load1 = v,
                Some("node_memory_MemAvailable_bytes") => r.mem_available = v,
                _ => {}
            }
        }
        any_cpu.then_some(r)
    }

    /// Busy share of CPU time between `earlier` and `self`, in [0, 1].
    pub fn cpu_busy_since(&self, earlier: &HostReading) -> f64 {
        let total = self.cpu_total - earlier.cpu_total;
        let idle = self.cpu_idle - earlier.cpu_idle;
        if total <= 0.0 {
            0.0
        } else {
            ((total - idle) / total).clamp(0.0, 1.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(user: u64, idle: u64) -> dozor_ingest::host::ProcFiles {
        dozor_ingest::host::ProcFiles {
            stat: format!("cpu0 {user} 0 0 {idle} 0 0 0 0 0 0\n"),
            loadavg: "0.52 0.40 0.30 1/200 1\n".into(),
            meminfo: "MemAvailable:    1024 kB\n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn summarises_the_collectors_series() {
        let a = HostReading::from_batch(&dozor_ingest::host::collect(&files(100, 700), "h", 0))
            .unwrap();
        assert_eq!(
            (a.cpu_total, a.cpu_idle, a.load1, a.mem_available),
            (8.0, 7.0, 0.52, 1024.0 * 1024.0)
        );
        let b = HostReading::from_batch(&dozor_ingest::host::collect(&files(125, 775), "h", 0))
            .unwrap();
        assert!((b.cpu_busy_since(&a) - 0.25).abs() < 1e-9);
        assert_eq!(a.cpu_busy_since(&a), 0.0);
    }

    #[test]
    fn no_cpu_series_is_no_reading() {
        assert!(HostReading::from_batch(&Vec::new()).is_none());
    }
}
