//! A tenant's fleet of registers: the state each driver event and each OFD poll leaves, the
//! metrics of `KKT.md` §3.2 (and seed 000's names) as samples for the metric store, and the
//! views the API serves.
//!
//! Time. Samples carry the time of what they describe: each event adds a snapshot of its
//! register at the event's own timestamp, so a driver log replayed from disk — or a
//! simulator compressing thirty days into seconds — leaves the history it describes, not a
//! burst at the moment it was read. [`Fleet::tick`] adds a snapshot at the wall clock of
//! every register that is live (its last event is recent) or silent (nothing arrived for
//! `down_after`: it is reported down); a register whose log is being replayed is neither,
//! and gets only its events' snapshots, which keeps its series in time order.
//!
//! Derived ages (`kkt_ofd_oldest_unsent_age_seconds`, `kkt_shift_open_duration_seconds`,
//! `kkt_fn_days_until_expiry`) are computed at the snapshot's time from dates the device
//! reported; the FN's expiry is read, never computed (§2.1).
//!
//! Counters (`kkt_documents_total`, `kkt_driver_errors_total`, …) count what this process
//! has read; like an exporter's they start again at zero after a restart, which `rate` and
//! `increase` handle. A counter series is written at 0 one millisecond before its first
//! increment so that `increase(…[10m]) > 0` sees the first error too.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use dozor_model::{Labels, Sample};
use serde::Serialize;
use serde_json::{Value, json};

use crate::event::{Body, Event, FnState, Queue, Shift};
use crate::model::{self, Category, FnFlags, OFD_BLOCK_DAYS, SHIFT_LIMIT_SECS};

const DAY_MS: i64 = 86_400_000;
/// Most samples waiting for the next tick; beyond it, event snapshots are dropped (and
/// counted) rather than memory growing without bound. Live snapshots are never dropped.
const MAX_PENDING: usize = 2_000_000;
/// Buckets of `ofd_api_request_duration_seconds`.
const BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// How the fleet judges liveness, and what it adds to its series.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// A register not heard from for this long is down (`kkt_up` 0).
    pub down_after_ms: i64,
    /// How long a driver error keeps a register in the error state (`kkt_status` 2).
    pub error_window_ms: i64,
    /// Labels added to every series (`service`, `data_class`: what scoped roles see).
    pub labels: Vec<(String, String)>,
}

impl Default for FleetOptions {
    fn default() -> FleetOptions {
        FleetOptions {
            down_after_ms: 5 * 60_000,
            error_window_ms: 10 * 60_000,
            labels: Vec::new(),
        }
    }
}

/// The liveness thresholds, which every snapshot needs (the labels live in `Pending`).
#[derive(Debug, Clone, Copy)]
struct Limits {
    down_after_ms: i64,
    error_window_ms: i64,
}

/// One tenant's registers.
pub struct Fleet {
    options: Limits,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    registers: BTreeMap<String, Register>,
    providers: BTreeMap<String, Provider>,
    pending: Pending,
    stats: Stats,
}

/// What the fleet has read.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Stats {
    /// Events applied.
    pub events: u64,
    /// Event snapshots dropped because too many samples waited.
    pub dropped_samples: u64,
}

#[derive(Default)]
struct Register {
    id: Identity,
    /// Time of the newest event, Unix ms (event time).
    last_event: i64,
    /// Wall clock when the newest event was read.
    last_received: i64,
    /// Whether the driver reached the register at the last status.
    reachable: bool,
    fn_state: FnView,
    queue: QueueView,
    shift: ShiftView,
    last_document_at: Option<i64>,
    clock_skew_s: Option<f64>,
    last_error: Option<(i64, crate::event::DriverError)>,
    documents: BTreeMap<&'static str, Counter>,
    amounts: BTreeMap<&'static str, Counter>,
    errors: BTreeMap<(String, String, &'static str), Counter>,
    seed_errors: BTreeMap<String, Counter>,
    ofd: BTreeMap<String, crate::ofd::OfdKkt>,
}

#[derive(Default, Clone)]
struct Identity {
    serial: String,
    model: String,
    firmware: String,
    inn: String,
    ofd: String,
    ffd: String,
    driver: String,
    autonomous: bool,
}

#[derive(Default, Clone, Serialize)]
struct FnView {
    number: Option<String>,
    expires_at: Option<i64>,
    validity_months: Option<u32>,
    memory_used_ratio: Option<f64>,
    last_fd_number: Option<u64>,
    flags: Option<FnFlags>,
}

#[derive(Default, Clone)]
struct QueueView {
    known: bool,
    unsent: u64,
    first_unsent_fd: Option<u64>,
    first_unsent_at: Option<i64>,
    last_ack_at: Option<i64>,
    marking: Option<u64>,
}

#[derive(Default, Clone)]
struct ShiftView {
    known: bool,
    number: Option<u64>,
    open: bool,
    opened_at: Option<i64>,
    receipts: u64,
}

#[derive(Default, Clone, Copy)]
struct Counter {
    value: f64,
    /// Whether its series has been written (so the 0 before the first increment is done).
    written: bool,
}

impl Counter {
    fn add(&mut self, x: f64) {
        self.value += x;
    }
}

#[derive(Default)]
struct Provider {
    up: bool,
    polled: bool,
    last_error: Option<String>,
    checked_at: i64,
    errors: BTreeMap<String, Counter>,
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Samples waiting to be stored, by series.
#[derive(Default)]
struct Pending {
    series: HashMap<String, (Labels, Vec<Sample>)>,
    samples: usize,
    extra: Vec<(String, String)>,
}

impl Pending {
    fn put(&mut self, name: &str, labels: &[(&str, &str)], t: i64, v: f64) {
        let mut key = String::with_capacity(96);
        key.push_str(name);
        for (k, x) in labels {
            key.push('\u{1}');
            key.push_str(k);
            key.push('=');
            key.push_str(x);
        }
        let entry = match self.series.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let extra = self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let pairs = std::iter::once(("__name__", name))
                    .chain(labels.iter().copied())
                    .chain(extra.filter(|(k, _)| !labels.iter().any(|(n, _)| n == k)));
                let Ok(l) = Labels::from_pairs(pairs) else {
                    return;
                };
                slot.insert((l, Vec::new()))
            }
        };
        match entry.1.last_mut() {
            Some(last) if last.t == t => last.v = v,
            Some(last) if last.t > t => {}
            _ => {
                entry.1.push(Sample { t, v });
                self.samples += 1;
            }
        }
    }

    fn drain(&mut self) -> Vec<(Labels, Vec<Sample>)> {
        self.samples = 0;
        self.series
            .drain()
            .filter(|(_, (_, s))| !s.is_empty())
            .map(|(_, x)| x)
            .collect()
    }
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

impl Fleet {
    /// An empty fleet.
    pub fn new(options: FleetOptions) -> Fleet {
        let mut inner = Inner::default();
        inner.pending.extra = options.labels;
        Fleet {
            options: Limits {
                down_after_ms: options.down_after_ms,
                error_window_ms: options.error_window_ms,
            },
            inner: Mutex::new(inner),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a driver event read at wall-clock `now` (Unix ms), and queues a snapshot of
    /// its register at the event's time.
    pub fn apply(&self, event: Event, now: i64) {
        let mut inner = self.lock();
        let Inner {
            registers,
            pending,
            stats,
            ..
        } = &mut *inner;
        stats.events += 1;
        let reg = registers.entry(event.kkt.reg_number.clone()).or_default();
        let t = event.ts;
        reg.update(&event);
        reg.last_event = reg.last_event.max(t);
        reg.last_received = now;
        if pending.samples < MAX_PENDING {
            reg.snapshot(&event.kkt.reg_number, t, true, self.options, pending);
        } else {
            stats.dropped_samples += 1;
        }
    }

    /// Applies an event read back from the stored driver log after a restart (in time
    /// order): the state moves as with [`Fleet::apply`], as if the event had been received
    /// at its own time, but no samples are written for it — the metric store holds those
    /// of before the restart, and the next [`Fleet::tick`] writes the state now.
    pub fn restore(&self, event: Event) {
        let mut inner = self.lock();
        inner.stats.events += 1;
        let reg = inner
            .registers
            .entry(event.kkt.reg_number.clone())
            .or_default();
        let t = event.ts;
        reg.update(&event);
        reg.last_event = reg.last_event.max(t);
        reg.last_received = reg.last_received.max(t);
    }

    /// Records an OFD poll of `provider` at `now`: the registers it returned, or why it
    /// failed, and how long it took.
    pub fn apply_ofd(
        &self,
        provider: &str,
        result: Result<Vec<crate::ofd::OfdKkt>, &crate::ofd::OfdError>,
        duration_s: f64,
        now: i64,
    ) {
        let mut inner = self.lock();
        let p = inner.providers.entry(provider.to_owned()).or_default();
        p.polled = true;
        p.checked_at = now;
        p.count += 1;
        p.sum += duration_s;
        for (i, le) in BUCKETS.iter().enumerate() {
            if duration_s <= *le {
                p.buckets[i] += 1;
            }
        }
        match result {
            Ok(kkts) => {
                p.up = true;
                p.last_error = None;
                for k in kkts {
                    let reg = inner.registers.entry(k.reg_number.clone()).or_default();
                    reg.ofd.insert(
                        provider.to_owned(),
                        crate::ofd::OfdKkt {
                            checked_at: now,
                            ..k
                        },
                    );
                }
            }
            Err(e) => {
                p.up = false;
                p.last_error = Some(e.to_string());
                p.errors.entry(e.code().to_owned()).or_default().add(1.0);
            }
        }
    }

    /// Everything waiting to be stored, plus a snapshot at `now` of every register that is
    /// live or silent (see the module's notes) and of the OFD providers.
    pub fn tick(&self, now: i64) -> Vec<(Labels, Vec<Sample>)> {
        let options = self.options;
        let mut inner = self.lock();
        let Inner {
            registers,
            providers,
            pending,
            ..
        } = &mut *inner;
        for (id, reg) in registers.iter_mut() {
            let live = now - reg.last_event <= options.down_after_ms;
            let silent = now - reg.last_received >= options.down_after_ms;
            if reg.last_event == 0 && !reg.ofd.is_empty() {
                // Known only to the OFD: its side alone.
                reg.ofd_snapshot(id, now, pending);
            } else if live || silent {
                reg.snapshot(id, now, live, options, pending);
            }
        }
        for (name, p) in providers.iter_mut() {
            p.snapshot(name, now, pending);
        }
        pending.drain()
    }

    /// Counts of what the fleet has read.
    pub fn stats(&self) -> Stats {
        self.lock().stats
    }

    /// Every register's summary at `now`, in register order.
    pub fn list(&self, now: i64) -> Vec<Value> {
        let inner = self.lock();
        inner
            .registers
            .iter()
            .map(|(id, r)| r.view(id, now, self.options, false))
            .collect()
    }

    /// One register in detail, with its error counts and OFD views.
    pub fn get(&self, reg: &str, now: i64) -> Option<Value> {
        let inner = self.lock();
        inner
            .registers
            .get(reg)
            .map(|r| r.view(reg, now, self.options, true))
    }

    /// The OFD providers' last polls.
    pub fn providers(&self) -> Vec<Value> {
        self.lock()
            .providers
            .iter()
            .map(|(name, p)| {
                json!({
                    "name": name,
                    "up": p.up,
                    "checked_at": rfc3339(p.checked_at),
                    "last_error": p.last_error,
                    "polls": p.count,
                })
            })
            .collect()
    }
}

fn rfc3339(ms: i64) -> Value {
    if ms <= 0 {
        return Value::Null;
    }
    Value::String(dozor_model::time::rfc3339_ns(ms.saturating_mul(1_000_000)))
}

fn opt_rfc3339(ms: Option<i64>) -> Value {
    ms.map_or(Value::Null, rfc3339)
}

impl Register {
    fn update(&mut self, e: &Event) {
        let k = &e.kkt;
        let set = |slot: &mut String, v: &Option<String>| {
            if let Some(v) = v {
                slot.clone_from(v);
            }
        };
        set(&mut self.id.serial, &k.serial);
        set(&mut self.id.model, &k.model);
        set(&mut self.id.firmware, &k.firmware);
        set(&mut self.id.inn, &k.inn);
        set(&mut self.id.ofd, &k.ofd);
        set(&mut self.id.ffd, &k.ffd);
        set(&mut self.id.driver, &k.driver);
        if let Some(a) = k.autonomous {
            self.id.autonomous = a;
        }
        // An event older than what the register already told (a log read again, a late
        // line) still counts, but does not roll its state back.
        let current = e.ts >= self.last_event;
        if !current && !matches!(e.body, Body::Document(_) | Body::Error(_)) {
            return;
        }
        if let Some(f) = e.fn_state.as_ref().filter(|_| current) {
            self.update_fn(f, matches!(e.body, Body::FnReplaced));
        }
        if let Some(q) = e.queue.as_ref().filter(|_| current) {
            self.update_queue(q);
        }
        if let Some(s) = e.shift.as_ref().filter(|_| current) {
            self.update_shift(s);
        }
        if !current {
            self.count(e);
            return;
        }
        match &e.body {
            Body::Status { up } => self.reachable = *up,
            Body::Document(d) => {
                self.reachable = true;
                self.last_document_at = Some(self.last_document_at.unwrap_or(0).max(e.ts));
                if let Some(local) = d.local_ms {
                    self.clock_skew_s = Some(secs(local - e.ts));
                }
                self.fn_state.last_fd_number =
                    Some(self.fn_state.last_fd_number.unwrap_or(0).max(d.fd_number));
                self.count(e);
                match d.kind {
                    model::DocumentKind::OpenShift => {
                        self.shift.known = true;
                        self.shift.open = true;
                        self.shift.opened_at = Some(e.ts);
                        self.shift.receipts = 0;
                        self.shift.number = d.shift.or(self.shift.number.map(|n| n + 1));
                    }
                    model::DocumentKind::CloseShift => {
                        self.shift.known = true;
                        self.shift.open = false;
                        self.shift.opened_at = None;
                    }
                    kind if kind.is_settlement() => self.shift.receipts += 1,
                    _ => {}
                }
            }
            Body::Error(x) => {
                self.count(e);
                if x.category == Category::Connection {
                    self.reachable = false;
                }
                self.last_error = Some((e.ts, x.clone()));
            }
            Body::FnReplaced => {
                // The new FN starts with an empty queue and no flags.
                self.queue = QueueView {
                    known: self.queue.known,
                    ..QueueView::default()
                };
            }
            Body::OfdAck { fd_number } => {
                self.queue.known = true;
                self.queue.last_ack_at = Some(e.ts);
                if let Some(fd) = fd_number
                    && self.queue.first_unsent_fd.is_some_and(|first| *fd >= first)
                    && e.queue.is_none()
                {
                    let acked = fd - self.queue.first_unsent_fd.unwrap_or(*fd) + 1;
                    self.queue.unsent = self.queue.unsent.saturating_sub(acked);
                    if self.queue.unsent == 0 {
                        self.queue.first_unsent_fd = None;
                        self.queue.first_unsent_at = None;
                    } else {
                        self.queue.first_unsent_fd = Some(fd + 1);
                        // When the next one was made is not known until the next status.
                    }
                }
            }
            Body::Snapshot(s) => {
                self.reachable = s.status != Some(0);
                if let Some(n) = s.documents_total {
                    self.documents.entry("unknown").or_default().value = n as f64;
                }
                for (kind, n) in &s.errors_by_type {
                    self.seed_errors.entry(kind.clone()).or_default().value = *n as f64;
                }
            }
        }
    }

    /// Adds a document or an error to the register's counters.
    fn count(&mut self, e: &Event) {
        match &e.body {
            Body::Document(d) => {
                self.documents.entry(d.kind.label()).or_default().add(1.0);
                if let (true, Some(op), Some(total)) =
                    (d.kind.is_settlement(), d.operation, d.total_kop)
                {
                    self.amounts
                        .entry(op.label())
                        .or_default()
                        .add(total as f64);
                }
            }
            Body::Error(x) => {
                let driver = if self.id.driver.is_empty() {
                    "unknown"
                } else {
                    &self.id.driver
                };
                self.errors
                    .entry((driver.to_owned(), x.code.clone(), x.category.label()))
                    .or_default()
                    .add(1.0);
                self.seed_errors
                    .entry(x.category.seed_error_type().to_owned())
                    .or_default()
                    .add(1.0);
            }
            _ => {}
        }
    }

    fn update_fn(&mut self, f: &FnState, replaced: bool) {
        let v = &mut self.fn_state;
        if replaced || (f.number.is_some() && f.number != v.number) {
            *v = FnView::default();
        }
        if f.number.is_some() {
            v.number.clone_from(&f.number);
        }
        v.expires_at = f.expires_at.or(v.expires_at);
        v.validity_months = f.validity_months.or(v.validity_months);
        v.memory_used_ratio = f.memory_used_ratio.or(v.memory_used_ratio);
        v.last_fd_number = f.last_fd_number.or(v.last_fd_number);
        v.flags = f.flags.or(v.flags);
    }

    fn update_queue(&mut self, q: &Queue) {
        let v = &mut self.queue;
        v.known = true;
        if let Some(n) = q.unsent {
            v.unsent = n;
            if n == 0 {
                v.first_unsent_fd = None;
                v.first_unsent_at = None;
            }
        }
        if v.unsent > 0 {
            v.first_unsent_fd = q.first_unsent_fd.or(v.first_unsent_fd);
            v.first_unsent_at = q.first_unsent_at.or(v.first_unsent_at);
        }
        v.last_ack_at = q.last_ack_at.or(v.last_ack_at);
        v.marking = q.unsent_marking_notices.or(v.marking);
    }

    fn update_shift(&mut self, s: &Shift) {
        let v = &mut self.shift;
        v.known = true;
        v.number = s.number.or(v.number);
        if let Some(open) = s.open {
            v.open = open;
            if !open {
                v.opened_at = None;
            }
        }
        if v.open {
            v.opened_at = s.opened_at.or(v.opened_at);
        }
        if let Some(r) = s.receipts {
            v.receipts = r;
        }
    }

    /// Age of the oldest unacknowledged document at `t`, ms (0 with an empty queue).
    fn backlog_age(&self, t: i64) -> Option<i64> {
        if !self.queue.known || self.id.autonomous {
            return None;
        }
        Some(match (self.queue.unsent, self.queue.first_unsent_at) {
            (0, _) => 0,
            (_, Some(first)) => (t - first).max(0),
            (_, None) => 0,
        })
    }

    fn shift_duration(&self, t: i64) -> Option<i64> {
        (self.shift.known && self.shift.open)
            .then(|| self.shift.opened_at.map_or(0, |o| (t - o).max(0)))
    }

    fn recent_error(&self, t: i64, options: Limits) -> Option<&crate::event::DriverError> {
        self.last_error
            .as_ref()
            .filter(|(at, _)| t - at <= options.error_window_ms && *at <= t)
            .map(|(_, e)| e)
    }

    /// What stops sales now, in words.
    fn blocked(&self, t: i64, options: Limits) -> Vec<String> {
        let mut out = Vec::new();
        if self
            .backlog_age(t)
            .is_some_and(|a| a >= OFD_BLOCK_DAYS * DAY_MS)
        {
            out.push("OFD backlog over 30 days: the FN refuses fiscal signs".to_owned());
        }
        if self
            .shift_duration(t)
            .is_some_and(|d| d >= SHIFT_LIMIT_SECS * 1000)
        {
            out.push("shift open over 24 hours".to_owned());
        }
        if self.fn_state.expires_at.is_some_and(|x| x <= t) {
            out.push("FN expired".to_owned());
        }
        if self.fn_state.memory_used_ratio.is_some_and(|m| m >= 0.99) {
            out.push("FN archive full".to_owned());
        }
        if let Some(e) = self.recent_error(t, options).filter(|e| e.blocking) {
            out.push(format!("driver error {}: {}", e.code, e.message));
        }
        out
    }

    /// Health at `t` by the thresholds of the shipped rules: `blocked`, `critical`,
    /// `warning`, `down` or `ok`, with the reasons.
    fn health(&self, t: i64, up: bool, options: Limits) -> (&'static str, Vec<String>) {
        let blocked = self.blocked(t, options);
        if !blocked.is_empty() {
            return ("blocked", blocked);
        }
        let mut critical = Vec::new();
        let mut warning = Vec::new();
        if let Some(age) = self.backlog_age(t) {
            let days = age as f64 / DAY_MS as f64;
            let text = format!("OFD backlog {days:.1} days (the FN blocks at 30)");
            if days > 25.0 {
                critical.push(text);
            } else if days > 2.0 {
                warning.push(text);
            }
        }
        if let Some(x) = self.fn_state.expires_at {
            let days = (x - t) as f64 / DAY_MS as f64;
            let text = format!("FN expires in {days:.1} days");
            if days < 7.0 {
                critical.push(text);
            } else if days < 30.0 {
                warning.push(text);
            }
        }
        if let Some(d) = self.shift_duration(t) {
            let hours = d as f64 / 3_600_000.0;
            let text = format!("shift open {hours:.1} hours (limit 24)");
            if hours > 23.0 {
                critical.push(text);
            } else if hours > 20.0 {
                warning.push(text);
            }
        }
        if self.fn_state.memory_used_ratio.is_some_and(|m| m > 0.9)
            || self.fn_state.flags.is_some_and(|f| f.memory_full_90pct)
        {
            warning.push("FN archive over 90 % full".to_owned());
        }
        if let Some(skew) = self.clock_skew_s.filter(|s| s.abs() > 300.0) {
            warning.push(format!("clock off by {skew:.0} s"));
        }
        if let Some(e) = self.recent_error(t, options) {
            warning.push(format!("driver error {}: {}", e.code, e.message));
        }
        if !critical.is_empty() {
            critical.extend(warning);
            ("critical", critical)
        } else if !up {
            warning.insert(0, "register not reachable".to_owned());
            ("down", warning)
        } else if !warning.is_empty() {
            ("warning", warning)
        } else {
            ("ok", warning)
        }
    }

    fn is_up(&self, t: i64, options: Limits) -> bool {
        self.reachable && t - self.last_event <= options.down_after_ms
    }

    /// Writes every series of the register at `t`.
    fn snapshot(&mut self, id: &str, t: i64, live: bool, options: Limits, out: &mut Pending) {
        let up = live && self.reachable;
        let kkt = [("kkt", id)];
        let both = [("kkt", id), ("kkt_id", id)];
        let fn_number = self.fn_state.number.clone().unwrap_or_default();
        let validity = self
            .fn_state
            .validity_months
            .map(|m| m.to_string())
            .unwrap_or_default();
        let i = &self.id;
        out.put(
            "kkt_info",
            &[
                ("kkt", id),
                ("serial", &i.serial),
                ("model", &i.model),
                ("firmware", &i.firmware),
                ("inn", &i.inn),
                ("ofd", &i.ofd),
                ("ffd", &i.ffd),
                ("driver", &i.driver),
                ("fn", &fn_number),
                ("fn_validity_months", &validity),
                ("autonomous", if i.autonomous { "true" } else { "false" }),
            ],
            t,
            1.0,
        );
        let driver = [("kkt", id), ("source", "driver")];
        out.put("kkt_up", &driver, t, f64::from(u8::from(up)));
        out.put(
            "kkt_last_seen_timestamp_seconds",
            &driver,
            t,
            secs(self.last_event),
        );
        if let Some(skew) = self.clock_skew_s {
            out.put("kkt_clock_skew_seconds", &kkt, t, skew);
        }

        let f = &self.fn_state;
        if let Some(x) = f.expires_at {
            out.put("kkt_fn_expiry_timestamp_seconds", &kkt, t, secs(x));
            out.put(
                "kkt_fn_days_until_expiry",
                &kkt,
                t,
                (x - t) as f64 / DAY_MS as f64,
            );
        }
        if let Some(m) = f.memory_used_ratio {
            out.put("kkt_fn_memory_used_ratio", &kkt, t, m);
            out.put("kkt_fd_memory_usage_percent", &both, t, m * 100.0);
        }
        if let Some(flags) = f.flags {
            for (name, on) in flags.labelled() {
                out.put(
                    "kkt_fn_flag",
                    &[("kkt", id), ("flag", name)],
                    t,
                    f64::from(u8::from(on)),
                );
            }
        }
        if let Some(n) = f.last_fd_number {
            out.put("kkt_fn_last_document_number", &kkt, t, n as f64);
        }

        let q = &self.queue;
        if let Some(age) = self.backlog_age(t) {
            out.put("kkt_ofd_unsent_documents", &kkt, t, q.unsent as f64);
            out.put("kkt_ofd_oldest_unsent_age_seconds", &kkt, t, secs(age));
            if let (true, Some(first)) = (q.unsent > 0, q.first_unsent_at) {
                out.put(
                    "kkt_ofd_oldest_unsent_timestamp_seconds",
                    &kkt,
                    t,
                    secs(first),
                );
            }
            let left = (OFD_BLOCK_DAYS as f64 - age as f64 / DAY_MS as f64).max(0.0);
            out.put("kkt_ofd_days_until_block", &kkt, t, left);
            if let Some(ack) = q.last_ack_at {
                out.put("kkt_ofd_last_ack_timestamp_seconds", &kkt, t, secs(ack));
            }
            if let Some(m) = q.marking {
                out.put("kkt_ofd_unsent_marking_notices", &kkt, t, m as f64);
            }
        }
        // Seed 000: 0 unknown, 1 synced, 2 pending, 3 error.
        let sync = match self.backlog_age(t) {
            None => 0.0,
            Some(age) if age > 2 * DAY_MS => 3.0,
            _ if self
                .recent_error(t, options)
                .is_some_and(|e| e.category == Category::Ofd) =>
            {
                3.0
            }
            _ if q.unsent > 0 => 2.0,
            _ => 1.0,
        };
        out.put("kkt_ofd_sync_status", &both, t, sync);

        let s = &self.shift;
        if s.known {
            let open = f64::from(u8::from(s.open));
            out.put("kkt_shift_open", &kkt, t, open);
            out.put("kkt_shift_status", &both, t, open);
            out.put("kkt_shift_receipts", &kkt, t, s.receipts as f64);
            if let Some(n) = s.number {
                out.put("kkt_shift_number", &kkt, t, n as f64);
            }
            if let Some(o) = s.opened_at.filter(|_| s.open) {
                out.put("kkt_shift_opened_timestamp_seconds", &kkt, t, secs(o));
            }
            out.put(
                "kkt_shift_open_duration_seconds",
                &kkt,
                t,
                secs(self.shift_duration(t).unwrap_or(0)),
            );
        }
        if let Some(d) = self.last_document_at {
            out.put("kkt_last_document_timestamp", &both, t, secs(d));
        }
        let status = if !up {
            0.0
        } else if self.health(t, up, options).0 == "blocked"
            || self.recent_error(t, options).is_some()
        {
            2.0
        } else {
            1.0
        };
        out.put("kkt_status", &both, t, status);

        for (kind, c) in &mut self.documents {
            counter(
                out,
                "kkt_documents_total",
                &[("kkt", id), ("kkt_id", id), ("kind", kind)],
                t,
                c,
            );
        }
        for (op, c) in &mut self.amounts {
            counter(
                out,
                "kkt_receipts_amount_kopecks_total",
                &[("kkt", id), ("operation", op)],
                t,
                c,
            );
        }
        for ((driver, code, category), c) in &mut self.errors {
            counter(
                out,
                "kkt_driver_errors_total",
                &[
                    ("kkt", id),
                    ("driver", driver),
                    ("code", code),
                    ("category", category),
                ],
                t,
                c,
            );
        }
        for (kind, c) in &mut self.seed_errors {
            counter(
                out,
                "kkt_errors_total",
                &[("kkt", id), ("kkt_id", id), ("error_type", kind)],
                t,
                c,
            );
        }
        self.ofd_snapshot(id, t, out);
    }

    fn ofd_snapshot(&self, id: &str, t: i64, out: &mut Pending) {
        for (provider, o) in &self.ofd {
            let labels = [("kkt", id), ("ofd", provider.as_str())];
            if let Some(x) = o.last_document_at {
                out.put(
                    "ofd_kkt_last_document_timestamp_seconds",
                    &labels,
                    t,
                    secs(x),
                );
            }
            if let Some(x) = o.fn_end_at {
                out.put("ofd_kkt_fn_expiry_timestamp_seconds", &labels, t, secs(x));
            }
            if let Some(x) = o.contract_end_at {
                out.put(
                    "ofd_kkt_contract_expiry_timestamp_seconds",
                    &labels,
                    t,
                    secs(x),
                );
            }
            if let Some(n) = o.unsent_documents {
                out.put("ofd_kkt_unsent_documents", &labels, t, n as f64);
            }
            if let Some(state) = &o.state {
                out.put(
                    "ofd_kkt_state",
                    &[
                        ("kkt", id),
                        ("ofd", provider.as_str()),
                        ("state", state.as_str()),
                    ],
                    t,
                    1.0,
                );
            }
        }
    }

    fn view(&self, id: &str, now: i64, options: Limits, detail: bool) -> Value {
        let up = self.last_event > 0 && self.is_up(now, options);
        let (status, problems) = if self.last_event == 0 {
            ("unknown", vec!["known only to the OFD".to_owned()])
        } else {
            self.health(now, up, options)
        };
        let i = &self.id;
        let f = &self.fn_state;
        let q = &self.queue;
        let age = self.backlog_age(now);
        let mut v = json!({
            "kkt": id,
            "serial": i.serial, "model": i.model, "firmware": i.firmware, "driver": i.driver,
            "ffd": i.ffd, "inn": i.inn, "ofd": i.ofd, "autonomous": i.autonomous,
            "up": up,
            "status": status,
            "problems": problems,
            "last_seen": rfc3339(self.last_event),
            "clock_skew_seconds": self.clock_skew_s,
            "fn": {
                "number": f.number,
                "expires_at": opt_rfc3339(f.expires_at),
                "days_until_expiry": f.expires_at.map(|x| (x - now) as f64 / DAY_MS as f64),
                "validity_months": f.validity_months,
                "memory_used_ratio": f.memory_used_ratio,
                "last_fd_number": f.last_fd_number,
                "flags": f.flags,
            },
            "ofd_queue": if q.known && !i.autonomous { json!({
                "unsent": q.unsent,
                "first_unsent_fd": q.first_unsent_fd,
                "oldest_unsent_at": opt_rfc3339(q.first_unsent_at.filter(|_| q.unsent > 0)),
                "oldest_unsent_age_seconds": age.map(secs),
                "days_until_block": age.map(|a| (OFD_BLOCK_DAYS as f64 - a as f64 / DAY_MS as f64).max(0.0)),
                "last_ack_at": opt_rfc3339(q.last_ack_at),
                "unsent_marking_notices": q.marking,
            }) } else { Value::Null },
            "shift": if self.shift.known { json!({
                "number": self.shift.number,
                "open": self.shift.open,
                "opened_at": opt_rfc3339(self.shift.opened_at.filter(|_| self.shift.open)),
                "open_duration_seconds": self.shift_duration(now).map(secs),
                "receipts": self.shift.receipts,
            }) } else { Value::Null },
            "last_document_at": opt_rfc3339(self.last_document_at),
            "last_error": self.last_error.as_ref().map(|(at, e)| json!({
                "at": rfc3339(*at),
                "code": e.code,
                "category": e.category,
                "message": e.message,
                "blocking": e.blocking,
                "advice": model::lookup(&e.code).map(|k| k.advice),
            })),
            "errors_total": self.errors.values().map(|c| c.value).sum::<f64>(),
            "documents_total": self.documents.values().map(|c| c.value).sum::<f64>(),
        });
        if detail && let Value::Object(map) = &mut v {
            map.insert(
                "documents".into(),
                self.documents
                    .iter()
                    .map(|(k, c)| ((*k).to_owned(), json!(c.value)))
                    .collect(),
            );
            map.insert(
                "receipts_amount_kopecks".into(),
                self.amounts
                    .iter()
                    .map(|(k, c)| ((*k).to_owned(), json!(c.value)))
                    .collect(),
            );
            map.insert(
                "errors".into(),
                self.errors
                    .iter()
                    .map(|((driver, code, category), c)| {
                        json!({
                            "driver": driver, "code": code, "category": category, "count": c.value,
                            "meaning": model::lookup(code).map(|k| k.meaning),
                        })
                    })
                    .collect(),
            );
            map.insert(
                "ofd_views".into(),
                self.ofd
                    .iter()
                    .map(|(provider, o)| {
                        json!({
                            "provider": provider,
                            "state": o.state,
                            "last_document_state": o.last_document_state,
                            "last_document_at": opt_rfc3339(o.last_document_at),
                            "fn_number": o.fn_number,
                            "fn_end_at": opt_rfc3339(o.fn_end_at),
                            "contract_end_at": opt_rfc3339(o.contract_end_at),
                            "unsent_documents": o.unsent_documents,
                            "checked_at": rfc3339(o.checked_at),
                        })
                    })
                    .collect(),
            );
        }
        v
    }
}

fn counter(out: &mut Pending, name: &str, labels: &[(&str, &str)], t: i64, c: &mut Counter) {
    if !c.written {
        c.written = true;
        out.put(name, labels, t - 1, 0.0);
    }
    out.put(name, labels, t, c.value);
}

impl Provider {
    fn snapshot(&mut self, name: &str, t: i64, out: &mut Pending) {
        if !self.polled {
            return;
        }
        let ofd = [("ofd", name)];
        out.put("ofd_api_up", &ofd, t, f64::from(u8::from(self.up)));
        for (code, c) in &mut self.errors {
            counter(
                out,
                "ofd_api_errors_total",
                &[("ofd", name), ("code", code)],
                t,
                c,
            );
        }
        let endpoint = [("ofd", name), ("endpoint", "poll")];
        for (i, le) in BUCKETS.iter().enumerate() {
            let le = le.to_string();
            out.put(
                "ofd_api_request_duration_seconds_bucket",
                &[("ofd", name), ("endpoint", "poll"), ("le", &le)],
                t,
                self.buckets[i] as f64,
            );
        }
        out.put(
            "ofd_api_request_duration_seconds_bucket",
            &[("ofd", name), ("endpoint", "poll"), ("le", "+Inf")],
            t,
            self.count as f64,
        );
        out.put(
            "ofd_api_request_duration_seconds_sum",
            &endpoint,
            t,
            self.sum,
        );
        out.put(
            "ofd_api_request_duration_seconds_count",
            &endpoint,
            t,
            self.count as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_line;

    const T0: i64 = 1_790_000_000_000;

    fn line(ts: i64, rest: &str) -> Event {
        let l = format!(
            r#"{{"ts":{},"kkt":{{"reg_number":"0000000000000001","driver":"atol10"}},{rest}}}"#,
            ts / 1000
        );
        parse_line(l.as_bytes(), 180).unwrap()
    }

    fn value(
        batch: &[(Labels, Vec<Sample>)],
        name: &str,
        label: Option<(&str, &str)>,
    ) -> Vec<Sample> {
        batch
            .iter()
            .filter(|(l, _)| {
                l.metric_name() == Some(name) && label.is_none_or(|(k, v)| l.get(k) == Some(v))
            })
            .flat_map(|(_, s)| s.clone())
            .collect()
    }

    #[test]
    fn backlog_ages_from_the_first_unsent_document() {
        let fleet = Fleet::new(FleetOptions::default());
        let first = T0 - 26 * DAY_MS;
        fleet.apply(
            line(
                T0,
                &format!(
                    r#""event":"status","ofd_queue":{{"unsent":40,"first_unsent_at":{}}}"#,
                    first / 1000
                ),
            ),
            T0,
        );
        let b = fleet.tick(T0 + 1000);
        let age = value(&b, "kkt_ofd_oldest_unsent_age_seconds", None);
        assert_eq!(age.first().map(|s| (s.t, s.v)), Some((T0, 26.0 * 86400.0)));
        let left = value(&b, "kkt_ofd_days_until_block", None);
        assert!((left[0].v - 4.0).abs() < 1e-9, "{left:?}");
        assert_eq!(value(&b, "kkt_ofd_sync_status", None)[0].v, 3.0);
        let view = fleet.get("0000000000000001", T0).unwrap();
        assert_eq!(view["status"], "critical", "{view}");

        // Drained: the next tick holds only the live snapshot.
        let b = fleet.tick(T0 + 2000);
        assert_eq!(
            value(&b, "kkt_ofd_oldest_unsent_age_seconds", None).len(),
            1
        );
        let v = fleet.get("0000000000000001", T0 + 4 * DAY_MS).unwrap();
        assert_eq!(v["status"], "blocked");
    }

    #[test]
    fn a_restored_fleet_knows_its_shifts_and_silences_without_writing_the_past() {
        let fleet = Fleet::new(FleetOptions::default());
        let open = T0 - 20 * 3_600_000;
        fleet.restore(line(
            open,
            r#""event":"document","document":{"fd_number":10,"kind":2,"shift":5}"#,
        ));
        fleet.restore(line(
            T0 - 60_000,
            r#""event":"document","document":{"fd_number":11,"kind":3,"operation":1,"total_kop":1500}"#,
        ));
        // Nothing of the past is pending: the tick holds the state at its time only.
        let b = fleet.tick(T0);
        let opened = value(&b, "kkt_shift_opened_timestamp_seconds", None);
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert_eq!((opened[0].t, opened[0].v), (T0, (open / 1000) as f64));
        assert_eq!(value(&b, "kkt_up", None)[0].v, 1.0);
        // Received at its own time: silent an hour later as if it had never stopped.
        let later = fleet.tick(T0 + 3_600_000);
        assert_eq!(value(&later, "kkt_up", None)[0].v, 0.0);
    }

    #[test]
    fn autonomous_registers_have_no_backlog() {
        let fleet = Fleet::new(FleetOptions::default());
        let l = format!(
            r#"{{"ts":{},"kkt":{{"reg_number":"7","autonomous":true}},"event":"status","ofd_queue":{{"unsent":900,"first_unsent_at":{}}}}}"#,
            T0 / 1000,
            (T0 - 40 * DAY_MS) / 1000
        );
        fleet.apply(parse_line(l.as_bytes(), 0).unwrap(), T0);
        let b = fleet.tick(T0);
        assert!(value(&b, "kkt_ofd_oldest_unsent_age_seconds", None).is_empty());
        assert_eq!(value(&b, "kkt_ofd_sync_status", None)[0].v, 0.0);
        assert_eq!(fleet.get("7", T0).unwrap()["status"], "ok");
    }

    #[test]
    fn shift_documents_and_errors() {
        let fleet = Fleet::new(FleetOptions::default());
        let open = T0 - 23 * 3_600_000 - 60_000;
        fleet.apply(
            line(
                open,
                r#""event":"document","document":{"fd_number":10,"kind":2,"shift":5}"#,
            ),
            T0,
        );
        fleet.apply(
            line(T0 - 1000, r#""event":"document","document":{"fd_number":11,"kind":3,"operation":1,"total_kop":1500,"datetime":"2026-09-21T17:13:19"}"#),
            T0,
        );
        fleet.apply(line(T0, r#""event":"error","error":{"code":"0x16"}"#), T0);
        let b = fleet.tick(T0);
        let dur = value(&b, "kkt_shift_open_duration_seconds", None);
        assert!(
            dur.iter()
                .any(|s| s.t == T0 && (s.v - (23.0 * 3600.0 + 60.0)).abs() < 1e-6),
            "{dur:?}"
        );
        let docs = value(&b, "kkt_documents_total", Some(("kind", "receipt")));
        // A zero just before the first increment, then the count.
        assert_eq!(
            docs.iter().map(|s| s.v).collect::<Vec<_>>()[..2],
            [0.0, 1.0]
        );
        let errs = value(&b, "kkt_driver_errors_total", Some(("code", "0x16")));
        assert!(errs.iter().any(|s| s.v == 1.0));
        let amount = value(
            &b,
            "kkt_receipts_amount_kopecks_total",
            Some(("operation", "sale")),
        );
        assert_eq!(amount.last().map(|s| s.v), Some(1500.0));
        let shift = fleet.get("0000000000000001", T0).unwrap();
        assert_eq!(shift["shift"]["number"], 5);
        assert_eq!(shift["status"], "blocked", "{shift}");
        assert_eq!(
            shift["last_error"]["advice"],
            "close the shift (Z-report) and open a new one"
        );
        assert_eq!(value(&b, "kkt_status", None).last().map(|s| s.v), Some(2.0));
    }

    #[test]
    fn silent_registers_go_down_and_replayed_ones_keep_their_order() {
        let options = FleetOptions::default();
        let fleet = Fleet::new(options.clone());
        // A replay: events from a day ago, read now.
        fleet.apply(line(T0 - DAY_MS, r#""event":"status""#), T0);
        let b = fleet.tick(T0 + 1000);
        let up = value(&b, "kkt_up", None);
        assert_eq!(
            up.iter().map(|s| (s.t, s.v)).collect::<Vec<_>>(),
            [(T0 - DAY_MS, 1.0)]
        );
        // Nothing more arrives: after `down_after` it is down, at the wall clock.
        let later = T0 + options.down_after_ms;
        let b = fleet.tick(later);
        assert_eq!(
            value(&b, "kkt_up", None)
                .iter()
                .map(|s| (s.t, s.v))
                .collect::<Vec<_>>(),
            [(later, 0.0)]
        );
        assert_eq!(value(&b, "kkt_status", None)[0].v, 0.0);
        assert_eq!(
            fleet.get("0000000000000001", later).unwrap()["status"],
            "down"
        );
    }

    #[test]
    fn fn_replacement_resets_the_drive() {
        let fleet = Fleet::new(FleetOptions::default());
        fleet.apply(
            line(T0, r#""event":"status","fn":{"number":"1111111111111111","expires_at":"2026-01-01T00:00:00Z","flags":{"urgent_replacement_3d":true}},"ofd_queue":{"unsent":3,"first_unsent_at":1}"#),
            T0,
        );
        fleet.apply(
            line(T0 + 1000, r#""event":"fn_replaced","fn":{"number":"2222222222222222","expires_at":"2030-01-01T00:00:00Z"}"#),
            T0,
        );
        let v = fleet.get("0000000000000001", T0 + 1000).unwrap();
        assert_eq!(v["fn"]["number"], "2222222222222222");
        assert_eq!(v["fn"]["flags"], Value::Null);
        assert_eq!(v["ofd_queue"]["unsent"], 0);
    }
}
