//! The host collector: this machine's CPU, memory, load, disks and network from `/proc`,
//! under node_exporter's metric names, so dashboards and rules written for node_exporter
//! work unchanged.
//!
//! Covered: `node_cpu_seconds_total`, `node_load{1,5,15}`, `node_memory_*` (every
//! `/proc/meminfo` field), `node_network_{receive,transmit}_{bytes,packets,errs,drop}_total`,
//! `node_disk_{reads,writes}_completed_total`, `node_disk_{read,written}_bytes_total`,
//! `node_disk_io_time_seconds_total`, `node_boot_time_seconds`,
//! `node_context_switches_total`, `node_forks_total`, `node_procs_{running,blocked}`,
//! `node_filesystem_{size,free,avail}_bytes`, `node_filesystem_files{,_free}` and
//! `node_filesystem_readonly` (labels `device`, `fstype`, `mountpoint`; the pseudo file
//! systems and mount points node_exporter leaves out by default are left out here too).
//! Not yet: hardware sensors.
//!
//! Parsing is separate from reading, so every parser is tested on fixed text; only
//! [`ProcFiles::read`] touches the system (`/proc` files and one `statvfs` per mount).

use dozor_model::{Label, Labels, Sample};

use crate::Batch;

/// `/proc` files' contents for one collection.
#[derive(Debug, Default, Clone)]
pub struct ProcFiles {
    /// `/proc/stat`.
    pub stat: String,
    /// `/proc/loadavg`.
    pub loadavg: String,
    /// `/proc/meminfo`.
    pub meminfo: String,
    /// `/proc/net/dev`.
    pub netdev: String,
    /// `/proc/diskstats`.
    pub diskstats: String,
    /// `statvfs` of every mount [`mounts`] keeps from `/proc/self/mounts`.
    pub filesystems: Vec<Filesystem>,
}

/// One mounted file system and its `statvfs` answer.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filesystem {
    /// What is mounted (`/dev/vda1`).
    pub device: String,
    /// Where.
    pub mountpoint: String,
    /// File system type (`ext4`).
    pub fstype: String,
    /// Size in bytes.
    pub size: f64,
    /// Free bytes, including those reserved for root.
    pub free: f64,
    /// Bytes available to unprivileged users.
    pub avail: f64,
    /// Inodes.
    pub files: f64,
    /// Free inodes.
    pub files_free: f64,
    /// Mounted read-only.
    pub readonly: bool,
}

/// File system types node_exporter skips by default (pseudo and virtual file systems).
const IGNORED_FSTYPES: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "erofs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// Mount points node_exporter skips by default.
fn ignored_mountpoint(m: &str) -> bool {
    let under = |root: &str| m == root || m.starts_with(&format!("{root}/"));
    under("/dev")
        || under("/proc")
        || under("/sys")
        || m.starts_with("/run/credentials/")
        || m.starts_with("/var/lib/docker/")
        || m.starts_with("/var/lib/containers/storage/")
}

/// The mounts of a `/proc/self/mounts` text worth reporting, as (device, mount point,
/// type), each mount point once (the last mount over it wins, as the kernel shows it).
pub fn mounts(text: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(device), Some(mountpoint), Some(fstype)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let mountpoint = unescape_mount(mountpoint);
        if IGNORED_FSTYPES.contains(&fstype) || ignored_mountpoint(&mountpoint) {
            continue;
        }
        out.retain(|(_, m, _)| *m != mountpoint);
        out.push((unescape_mount(device), mountpoint, fstype.to_owned()));
    }
    out
}

/// `/proc/self/mounts` writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mount(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// `statvfs` of one mount; `None` when it cannot be read (permissions, a vanished mount).
/// Like node_exporter without its mount timeout, a hung network mount would block here.
fn statvfs(device: String, mountpoint: String, fstype: String) -> Option<Filesystem> {
    let st = rustix::fs::statvfs(mountpoint.as_str()).ok()?;
    let frag = st.f_frsize as f64;
    Some(Filesystem {
        device,
        mountpoint,
        fstype,
        size: st.f_blocks as f64 * frag,
        free: st.f_bfree as f64 * frag,
        avail: st.f_bavail as f64 * frag,
        files: st.f_files as f64,
        files_free: st.f_ffree as f64,
        readonly: st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

impl ProcFiles {
    /// Reads the files (missing ones stay empty).
    pub fn read() -> ProcFiles {
        let r = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        ProcFiles {
            stat: r("/proc/stat"),
            loadavg: r("/proc/loadavg"),
            meminfo: r("/proc/meminfo"),
            netdev: r("/proc/net/dev"),
            diskstats: r("/proc/diskstats"),
            filesystems: mounts(&r("/proc/self/mounts"))
                .into_iter()
                .filter_map(|(d, m, t)| statvfs(d, m, t))
                .collect(),
        }
    }
}

/// This host's name, for the `instance` label.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Collects one batch at time `t` with `job="node"` and `instance`.
pub fn collect(files: &ProcFiles, instance: &str, t: i64) -> Batch {
    let mut out = Out {
        batch: Vec::new(),
        base: vec![
            ("job", "node".to_owned()),
            ("instance", instance.to_owned()),
        ],
        t,
    };
    parse_stat(&files.stat, &mut out);
    parse_loadavg(&files.loadavg, &mut out);
    parse_meminfo(&files.meminfo, &mut out);
    parse_netdev(&files.netdev, &mut out);
    parse_diskstats(&files.diskstats, &mut out);
    for fs in &files.filesystems {
        let labels = [
            ("device", fs.device.as_str()),
            ("fstype", fs.fstype.as_str()),
            ("mountpoint", fs.mountpoint.as_str()),
        ];
        out.push("node_filesystem_size_bytes", &labels, fs.size);
        out.push("node_filesystem_free_bytes", &labels, fs.free);
        out.push("node_filesystem_avail_bytes", &labels, fs.avail);
        out.push("node_filesystem_files", &labels, fs.files);
        out.push("node_filesystem_files_free", &labels, fs.files_free);
        out.push(
            "node_filesystem_readonly",
            &labels,
            f64::from(u8::from(fs.readonly)),
        );
    }
    out.batch
}

struct Out {
    batch: Batch,
    base: Vec<(&'static str, String)>,
    t: i64,
}

impl Out {
    fn push(&mut self, name: &str, extra: &[(&str, &str)], v: f64) {
        let labels: Vec<Label> = std::iter::once(Label {
            name: "__name__".into(),
            value: name.into(),
        })
        .chain(self.base.iter().map(|(n, v)| Label {
            name: (*n).into(),
            value: v.clone(),
        }))
        .chain(extra.iter().map(|(n, v)| Label {
            name: (*n).into(),
            value: (*v).into(),
        }))
        .collect();
        if let Ok(labels) = Labels::new(labels) {
            self.batch.push((labels, vec![Sample { t: self.t, v }]));
        }
    }
}

const USER_HZ: f64 = 100.0;
const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

fn parse_stat(text: &str, out: &mut Out) {
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(key) = f.next() else { continue };
        let nums: Vec<f64> = f.filter_map(|x| x.parse().ok()).collect();
        match key {
            k if k.starts_with("cpu") && k.len() > 3 => {
                let cpu = &k[3..];
                for (mode, v) in CPU_MODES.iter().zip(&nums) {
                    out.push(
                        "node_cpu_seconds_total",
                        &[("cpu", cpu), ("mode", mode)],
                        v / USER_HZ,
                    );
                }
            }
            "btime" => out.push(
                "node_boot_time_seconds",
                &[],
                nums.first().copied().unwrap_or(0.0),
            ),
            "ctxt" => out.push(
                "node_context_switches_total",
                &[],
                nums.first().copied().unwrap_or(0.0),
            ),
            "processes" => out.push(
                "node_forks_total",
                &[],
                nums.first().copied().unwrap_or(0.0),
            ),
            "procs_running" => out.push(
                "node_procs_running",
                &[],
                nums.first().copied().unwrap_or(0.0),
            ),
            "procs_blocked" => out.push(
                "node_procs_blocked",
                &[],
                nums.first().copied().unwrap_or(0.0),
            ),
            _ => {}
        }
    }
}

fn parse_loadavg(text: &str, out: &mut Out) {
    let f: Vec<f64> = text
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    if let [l1, l5, l15] = f[..] {
        out.push("node_load1", &[], l1);
        out.push("node_load5", &[], l5);
        out.push("node_load15", &[], l15);
    }
}

fn parse_meminfo(text: &str, out: &mut Out) {
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let Some(v) = f.next().and_then(|x| x.parse::<f64>().ok()) else {
            continue;
        };
        // node_exporter: "Active(anon)" → "Active_anon"; kB fields get "_bytes".
        let key: String = key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let key = key.trim_end_matches('_');
        match f.next() {
            Some("kB") => out.push(&format!("node_memory_{key}_bytes"), &[], v * 1024.0),
            _ => out.push(&format!("node_memory_{key}"), &[], v),
        }
    }
}

fn parse_netdev(text: &str, out: &mut Out) {
    const FIELDS: [(usize, &str); 8] = [
        (0, "node_network_receive_bytes_total"),
        (1, "node_network_receive_packets_total"),
        (2, "node_network_receive_errs_total"),
        (3, "node_network_receive_drop_total"),
        (8, "node_network_transmit_bytes_total"),
        (9, "node_network_transmit_packets_total"),
        (10, "node_network_transmit_errs_total"),
        (11, "node_network_transmit_drop_total"),
    ];
    for line in text.lines().skip(2) {
        let Some((dev, rest)) = line.split_once(':') else {
            continue;
        };
        let nums: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        for (i, name) in FIELDS {
            if let Some(v) = nums.get(i) {
                out.push(name, &[("device", dev.trim())], *v);
            }
        }
    }
}

/// node_exporter's default: skip partitions, RAM disks, loop and floppy devices.
fn ignored_disk(dev: &str) -> bool {
    let trailing_digit = dev.chars().last().is_some_and(|c| c.is_ascii_digit());
    dev.starts_with("loop")
        || dev.starts_with("ram")
        || dev.starts_with("zram")
        || dev.starts_with("fd")
        || (trailing_digit && ["sd", "hd", "vd", "xvd"].iter().any(|p| dev.starts_with(p)))
        || (dev.starts_with("nvme") && dev.contains('p') && trailing_digit)
}

fn parse_diskstats(text: &str, out: &mut Out) {
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 || ignored_disk(f[2]) {
            continue;
        }
        let n = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
        let dev = [("device", f[2])];
        out.push("node_disk_reads_completed_total", &dev, n(3));
        out.push("node_disk_read_bytes_total", &dev, n(5) * 512.0);
        out.push("node_disk_writes_completed_total", &dev, n(7));
        out.push("node_disk_written_bytes_total", &dev, n(9) * 512.0);
        out.push("node_disk_io_time_seconds_total", &dev, n(12) / 1000.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> ProcFiles {
        ProcFiles {
            stat: "cpu  10 0 5 100 1 0 0 0 0 0\ncpu0 200 1 50 1000 7 2 3 0 0 0\nbtime 1700000000\nctxt 42\nprocesses 77\nprocs_running 2\nprocs_blocked 0\n".into(),
            loadavg: "0.52 0.40 0.30 1/200 12345\n".into(),
            meminfo: "MemTotal:       2048 kB\nActive(anon):     10 kB\nHugePages_Total:       0\n".into(),
            netdev: "Inter-|   Receive\n face |bytes\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 1 0 0 0 0 0\n".into(),
            diskstats: "   8       0 sda 100 0 800 0 50 0 400 0 0 1500 0\n   8       1 sda1 1 0 8 0 0 0 0 0 0 1 0\n   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0\n".into(),
            filesystems: vec![Filesystem {
                device: "/dev/vda1".into(),
                mountpoint: "/".into(),
                fstype: "ext4".into(),
                size: 1000.0,
                free: 300.0,
                avail: 250.0,
                files: 64.0,
                files_free: 60.0,
                readonly: false,
            }],
        }
    }

    fn find(b: &Batch, text: &str) -> Option<f64> {
        b.iter()
            .find(|(l, _)| l.to_string() == text)
            .map(|(_, s)| s[0].v)
    }

    #[test]
    fn proc_text_becomes_node_exporter_series() {
        let b = collect(&files(), "h1", 5);
        let cpu = "node_cpu_seconds_total{cpu=\"0\", instance=\"h1\", job=\"node\", mode=\"user\"}";
        assert_eq!(find(&b, cpu), Some(2.0));
        assert_eq!(
            find(&b, "node_load5{instance=\"h1\", job=\"node\"}"),
            Some(0.40)
        );
        assert_eq!(
            find(
                &b,
                "node_memory_MemTotal_bytes{instance=\"h1\", job=\"node\"}"
            ),
            Some(2048.0 * 1024.0)
        );
        assert_eq!(
            find(
                &b,
                "node_memory_Active_anon_bytes{instance=\"h1\", job=\"node\"}"
            ),
            Some(10240.0)
        );
        assert_eq!(
            find(
                &b,
                "node_memory_HugePages_Total{instance=\"h1\", job=\"node\"}"
            ),
            Some(0.0)
        );
        assert_eq!(
            find(
                &b,
                "node_network_transmit_bytes_total{device=\"eth0\", instance=\"h1\", job=\"node\"}"
            ),
            Some(2000.0)
        );
        assert_eq!(
            find(
                &b,
                "node_disk_read_bytes_total{device=\"sda\", instance=\"h1\", job=\"node\"}"
            ),
            Some(800.0 * 512.0)
        );
        assert_eq!(
            find(
                &b,
                "node_disk_io_time_seconds_total{device=\"sda\", instance=\"h1\", job=\"node\"}"
            ),
            Some(1.5)
        );
        assert!(
            b.iter()
                .all(|(l, _)| l.get("device") != Some("sda1") && l.get("device") != Some("loop0"))
        );
        assert_eq!(
            find(&b, "node_boot_time_seconds{instance=\"h1\", job=\"node\"}"),
            Some(1.7e9)
        );
        assert_eq!(
            find(
                &b,
                "node_filesystem_avail_bytes{device=\"/dev/vda1\", fstype=\"ext4\", instance=\"h1\", job=\"node\", mountpoint=\"/\"}"
            ),
            Some(250.0)
        );
        assert_eq!(
            find(
                &b,
                "node_filesystem_readonly{device=\"/dev/vda1\", fstype=\"ext4\", instance=\"h1\", job=\"node\", mountpoint=\"/\"}"
            ),
            Some(0.0)
        );
        assert!(b.iter().all(|(_, s)| s[0].t == 5));
        // The aggregate "cpu" line is not a CPU.
        assert!(b.iter().all(|(l, _)| l.get("cpu") != Some("")));
    }

    #[test]
    fn garbage_and_missing_files_yield_nothing_not_a_panic() {
        let junk = ProcFiles {
            stat: "cpu0 x y\n\u{0}".into(),
            loadavg: "a b".into(),
            meminfo: ":::\nX:\n".into(),
            netdev: "x:\n".into(),
            diskstats: "1 2\n".into(),
            filesystems: Vec::new(),
        };
        assert!(collect(&junk, "h", 0).is_empty());
        assert!(collect(&ProcFiles::default(), "h", 0).is_empty());
    }

    #[test]
    fn mounts_skip_pseudo_file_systems_and_unescape_paths() {
        let text = "proc /proc proc rw 0 0\n\
            /dev/vda / ext4 rw,relatime 0 0\n\
            tmpfs /dev/shm tmpfs rw 0 0\n\
            cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n\
            /dev/vdb /mnt/my\\040data xfs ro 0 0\n\
            overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n\
            tmpfs /run tmpfs rw 0 0\n\
            /dev/vdc / ext4 rw 0 0\n\
            short line\n";
        assert_eq!(
            mounts(text),
            [
                ("/dev/vdb".into(), "/mnt/my data".into(), "xfs".into()),
                ("tmpfs".into(), "/run".into(), "tmpfs".into()),
                ("/dev/vdc".into(), "/".into(), "ext4".into()),
            ]
        );
        assert_eq!(unescape_mount("a\\134b\\0"), "a\\b\\0");
    }

    #[test]
    fn the_real_proc_of_this_machine_yields_series() {
        let b = collect(&ProcFiles::read(), &hostname(), 0);
        assert!(b.iter().any(|(l, _)| l.metric_name() == Some("node_load1")));
        assert!(
            b.iter()
                .any(|(l, _)| l.metric_name() == Some("node_memory_MemTotal_bytes"))
        );
        // The root file system is a real one on every machine we run on; its size is the
        // kernel's answer for "/".
        let root = b
            .iter()
            .find(|(l, _)| {
                l.metric_name() == Some("node_filesystem_size_bytes")
                    && l.get("mountpoint") == Some("/")
            })
            .map(|(_, s)| s[0].v);
        let st = rustix::fs::statvfs("/").unwrap();
        assert_eq!(root, Some((st.f_blocks * st.f_frsize) as f64));
    }
}
