//! A simulated fleet of registers writing their driver log (`dozor sim kkt`), with the
//! faults of `KKT.md` §3.4 injected, and the ground truth of which shipped alerts each fault
//! must raise.
//!
//! The fleet is a pure function of its seed and the clock: time runs in one-minute slots and
//! each register draws its slot's receipts from a generator seeded by (seed, register, slot).
//! Two processes with the same options — the driver-log writer and `dozor sim ofd` — see
//! the same fleet, however often each of them steps. A history of hours or days is emitted in
//! seconds (`--history`), each line stamped with its own time, so that rules about 24-hour
//! shifts and 30-day backlogs can be exercised without waiting: a fault's long past (an
//! outage that began 26 days ago) is part of the register's state when the history starts.

use std::collections::BTreeSet;

use serde_json::{Value, json};

const SLOT_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// What is wrong with a register.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scenario {
    /// Nothing: the queue drains within the minute, shifts open at 08:00 and close at 22:00.
    Healthy,
    /// The OFD stopped acknowledging this many days before the end of the history.
    OfdOutage {
        /// Days of backlog at the end.
        days: f64,
    },
    /// The shift was opened this many hours before the end and never closed.
    ForgottenShift {
        /// Hours open at the end.
        hours: f64,
    },
    /// The FN's key validity ends this many days after the end (negative: expired).
    FnEndOfLife {
        /// Days left at the end.
        days_left: f64,
    },
    /// The FN's archive is this full.
    MemoryFill {
        /// Share used, 0–1.
        ratio: f64,
    },
    /// The register's clock is this far ahead.
    ClockSkew {
        /// Seconds.
        seconds: i64,
    },
    /// Offline mode: a queue that is never sent, and no backlog alerts.
    Autonomous,
    /// Healthy, but the OFD contract ends this many days after the end (the OFD's view).
    ContractExpiring {
        /// Days left.
        days: f64,
    },
}

impl Scenario {
    /// Parses `healthy`, `ofd_outage:26`, `forgotten_shift:23.5`, `fn_end_of_life:5`,
    /// `memory_fill:0.93`, `clock_skew:600`, `autonomous`, `contract_expiring:10`.
    pub fn parse(s: &str) -> Result<Scenario, String> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        let num = |default: f64| -> Result<f64, String> {
            if arg.is_empty() {
                return Ok(default);
            }
            arg.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| format!("scenario {s:?}: {arg:?} is not a number"))
        };
        Ok(match name {
            "healthy" => Scenario::Healthy,
            "ofd_outage" => Scenario::OfdOutage {
                days: num(26.0)?.max(0.0),
            },
            "forgotten_shift" => Scenario::ForgottenShift {
                hours: num(23.5)?.max(0.0),
            },
            "fn_end_of_life" => Scenario::FnEndOfLife {
                days_left: num(5.0)?,
            },
            "memory_fill" => Scenario::MemoryFill {
                ratio: num(0.93)?.clamp(0.0, 1.0),
            },
            "clock_skew" => Scenario::ClockSkew {
                seconds: num(600.0)? as i64,
            },
            "autonomous" => Scenario::Autonomous,
            "contract_expiring" => Scenario::ContractExpiring { days: num(10.0)? },
            _ => {
                return Err(format!(
                    "unknown scenario {name:?}: healthy, ofd_outage, forgotten_shift, fn_end_of_life, memory_fill, clock_skew, autonomous, contract_expiring"
                ));
            }
        })
    }

    /// The shipped alerts (`rules/kkt-54fz.yml`) this fault raises at the end of the
    /// history, by the rules' thresholds. Alerts of the OFD's view (`OfdContractExpiring`)
    /// need an OFD poller.
    pub fn expected_alerts(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        match *self {
            Scenario::OfdOutage { days } => {
                if days > 2.0 {
                    out.extend(["KktOfdBacklogStarted", "KktOfdNoAckWhileQueued"]);
                }
                if days > 7.0 {
                    out.push("KktOfdBacklogHigh");
                }
                if days > 25.0 {
                    out.push("KktOfdBlockImminent");
                }
                if days >= 30.0 {
                    out.push("KktOfdBlocked");
                }
            }
            Scenario::ForgottenShift { hours } => {
                if hours > 20.0 {
                    out.push("KktShiftLong");
                }
                if hours > 23.0 {
                    out.push("KktShiftMustClose");
                }
                if hours >= 24.0 {
                    out.push("KktShiftExpired");
                }
            }
            Scenario::FnEndOfLife { days_left } => {
                if days_left < 30.0 {
                    out.push("KktFnExpirySoon");
                }
                if days_left < 7.0 {
                    out.push("KktFnExpiryCritical");
                }
                if days_left <= 0.0 {
                    out.push("KktFnExpired");
                }
            }
            Scenario::MemoryFill { ratio } => {
                if ratio > 0.9 {
                    out.push("KktFnMemoryNearlyFull");
                }
                if ratio >= 0.99 {
                    out.push("KktFnArchiveFull");
                }
            }
            Scenario::ClockSkew { seconds } if seconds.abs() > 300 => out.push("KktClockSkew"),
            Scenario::ContractExpiring { days } if days < 14.0 => out.push("OfdContractExpiring"),
            _ => {}
        }
        out
    }
}

/// The fleet's shape.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Registers in the fleet.
    pub registers: usize,
    /// Seed of every draw.
    pub seed: u64,
    /// Where the history starts, Unix ms.
    pub start: i64,
    /// The moment faults are defined against (usually "now"), Unix ms.
    pub end: i64,
    /// Receipts per register per open hour.
    pub receipts_per_hour: f64,
    /// A status report every this many minutes.
    pub status_every_slots: i64,
    /// The registers' UTC offset, minutes.
    pub utc_offset_min: i32,
    /// Faults, by register index; the rest are healthy.
    pub faults: Vec<(usize, Scenario)>,
}

impl SimOptions {
    /// `registers` registers over the `history_ms` before `end`, one of each fault among
    /// the first eight and the rest healthy (the demo's fleet).
    pub fn demo(registers: usize, seed: u64, end: i64, history_ms: i64) -> SimOptions {
        let faults = [
            Scenario::OfdOutage { days: 26.0 },
            Scenario::ForgottenShift { hours: 23.5 },
            Scenario::FnEndOfLife { days_left: 5.0 },
            Scenario::MemoryFill { ratio: 0.93 },
            Scenario::ClockSkew { seconds: 600 },
            Scenario::Autonomous,
            Scenario::ContractExpiring { days: 10.0 },
            Scenario::OfdOutage { days: 3.0 },
        ];
        SimOptions {
            registers,
            seed,
            start: end - history_ms,
            end,
            receipts_per_hour: 20.0,
            status_every_slots: 1,
            utc_offset_min: 180,
            faults: faults
                .into_iter()
                .enumerate()
                .map(|(i, s)| (1 + i * 3, s))
                .filter(|(i, _)| *i < registers)
                .collect(),
        }
    }
}

struct Reg {
    reg_number: String,
    serial: String,
    model: &'static str,
    driver: &'static str,
    ffd: &'static str,
    scenario: Scenario,
    fn_number: String,
    fn_expires_at: i64,
    memory: f64,
    last_fd: u64,
    unsent: u64,
    first_unsent_fd: Option<u64>,
    first_unsent_at: Option<i64>,
    last_ack_at: Option<i64>,
    last_document_at: Option<i64>,
    shift_number: u64,
    shift_open: bool,
    shift_opened_at: Option<i64>,
    receipts: u64,
}

/// The simulated fleet.
pub struct Sim {
    options: SimOptions,
    regs: Vec<Reg>,
    /// The next slot to run (its start, Unix ms).
    next_slot: i64,
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    // SplitMix64 over the three: decorrelated streams per register and slot.
    let mut z =
        seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Sim {
    /// The fleet as it stands at `options.start`.
    pub fn new(options: SimOptions) -> Sim {
        let start = options.start.div_euclid(SLOT_MS) * SLOT_MS;
        let regs = (0..options.registers)
            .map(|i| {
                let mut rng = fastrand::Rng::with_seed(mix(options.seed, i as u64, u64::MAX));
                let scenario = options
                    .faults
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map_or(Scenario::Healthy, |(_, s)| *s);
                let atol = i % 2 == 0;
                let end = options.end;
                let mut r = Reg {
                    // As the FNS assigns them: leading zeros, so no register number
                    // looks like a bank card (a 16-digit number with a card prefix that
                    // passes the Luhn check is masked as one in the stored log).
                    reg_number: format!("{:010}{:06}", 4_000_000 + options.seed % 1_000_000, i),
                    serial: format!("0010671{:07}", i),
                    model: if atol {
                        "АТОЛ 30Ф"
                    } else {
                        "ШТРИХ-М-01Ф"
                    },
                    driver: if atol { "atol10" } else { "shtrih" },
                    ffd: if i % 3 == 0 { "1.2" } else { "1.05" },
                    scenario,
                    fn_number: format!("99604403{:08}", (options.seed % 1000) * 100_000 + i as u64),
                    fn_expires_at: end + rng.i64(120..400) * DAY_MS,
                    memory: 0.05 + rng.f64() * 0.5,
                    last_fd: rng.u64(1000..90_000),
                    unsent: 0,
                    first_unsent_fd: None,
                    first_unsent_at: None,
                    last_ack_at: Some(start - rng.i64(1..60) * 1000),
                    last_document_at: None,
                    shift_number: rng.u64(10..900),
                    shift_open: false,
                    shift_opened_at: None,
                    receipts: 0,
                };
                match scenario {
                    Scenario::OfdOutage { days } => {
                        let since = end - (days * DAY_MS as f64) as i64;
                        r.unsent = (days * 150.0).max(1.0) as u64;
                        r.first_unsent_fd = Some(r.last_fd - r.unsent + 1);
                        r.first_unsent_at = Some(since.min(start));
                        r.last_ack_at = Some(since.min(start) - 5_000);
                    }
                    Scenario::FnEndOfLife { days_left } => {
                        r.fn_expires_at = end + (days_left * DAY_MS as f64) as i64;
                    }
                    Scenario::MemoryFill { ratio } => r.memory = ratio,
                    Scenario::Autonomous => {
                        r.unsent = 900;
                        r.first_unsent_fd = Some(r.last_fd - 899);
                        r.first_unsent_at = Some(start - 40 * DAY_MS);
                        r.last_ack_at = None;
                    }
                    Scenario::ForgottenShift { hours } => {
                        let opened = end - (hours * HOUR_MS as f64) as i64;
                        if opened <= start {
                            r.shift_open = true;
                            r.shift_opened_at = Some(opened);
                        }
                    }
                    _ => {}
                }
                r
            })
            .collect();
        let mut sim = Sim {
            options,
            regs,
            next_slot: start,
        };
        // Registers that are within their business hours at the start have an open shift.
        for i in 0..sim.regs.len() {
            if !matches!(sim.regs[i].scenario, Scenario::ForgottenShift { .. })
                && sim.business_hours(start)
            {
                sim.regs[i].shift_open = true;
                sim.regs[i].shift_opened_at = Some(start - HOUR_MS);
            }
        }
        sim
    }

    /// The options it was made with.
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    fn local_hour(&self, t: i64) -> i64 {
        (t + i64::from(self.options.utc_offset_min) * 60_000).rem_euclid(DAY_MS) / HOUR_MS
    }

    fn business_hours(&self, t: i64) -> bool {
        (8..22).contains(&self.local_hour(t))
    }

    /// Runs every whole minute before `until` and returns the driver-log lines they wrote,
    /// in time order.
    pub fn step(&mut self, until: i64) -> Vec<String> {
        let mut out = Vec::new();
        while self.next_slot + SLOT_MS <= until {
            let slot = self.next_slot;
            for i in 0..self.regs.len() {
                self.run_slot(i, slot, &mut out);
            }
            self.next_slot += SLOT_MS;
        }
        out
    }

    /// Where the fleet's clock is: the start of the next minute to run.
    pub fn now(&self) -> i64 {
        self.next_slot
    }

    fn run_slot(&mut self, i: usize, slot: i64, out: &mut Vec<String>) {
        let o = &self.options;
        let mut rng = fastrand::Rng::with_seed(mix(o.seed, i as u64, (slot / SLOT_MS) as u64));
        let business = self.business_hours(slot);
        let local_hour = self.local_hour(slot);
        let end = o.end;
        let per_slot = o.receipts_per_hour / 60.0;
        let status_every = o.status_every_slots.max(1);
        let offset = o.utc_offset_min;
        let r = &mut self.regs[i];
        let outage = match r.scenario {
            Scenario::OfdOutage { days } => slot >= end - (days * DAY_MS as f64) as i64,
            Scenario::Autonomous => true,
            _ => false,
        };
        let forgotten = matches!(r.scenario, Scenario::ForgottenShift { .. });
        let mut t = slot + rng.i64(0..20_000);

        // Shift schedule: open at 08:00, close at 22:00 local; a forgotten shift is opened
        // when its scenario says and never closed.
        if forgotten {
            if let Scenario::ForgottenShift { hours } = r.scenario {
                let opened = end - (hours * HOUR_MS as f64) as i64;
                if !r.shift_open && opened >= slot && opened < slot + SLOT_MS {
                    open_shift(r, opened.max(t), offset, out);
                }
            }
        } else if business && !r.shift_open && local_hour == 8 {
            open_shift(r, t, offset, out);
            t += 1000;
        } else if !business && r.shift_open {
            document(r, t, 5, None, 0, offset, out);
            r.shift_open = false;
            r.shift_opened_at = None;
            t += 1000;
        }

        // Receipts, or the error that stops them.
        if r.shift_open {
            let n = poisson(&mut rng, per_slot);
            for _ in 0..n {
                t += rng.i64(1000..5000);
                if let Some(code) = blocking_error(r, t) {
                    error_line(r, t, code, out);
                    continue;
                }
                let total = rng.i64(50..5000) * 100 + rng.i64(0..100);
                let op = if rng.f64() < 0.03 { 2 } else { 1 };
                document(r, t, 3, Some(op), total, offset, out);
            }
        }

        // The OFD acknowledges what was sent unless it is out.
        if !outage && r.unsent > 0 {
            t += rng.i64(500..3000);
            let fd = r.last_fd;
            r.unsent = 0;
            r.first_unsent_fd = None;
            r.first_unsent_at = None;
            r.last_ack_at = Some(t);
            out.push(line(r, t, "ofd_ack", json!({"fd_number": fd})));
        }

        if (slot / SLOT_MS) % status_every == (i as i64) % status_every {
            t += 1000;
            out.push(status(r, t));
        }
    }

    /// The fleet as its OFD sees it at the current clock (`KKT.md` §3.5's neutral shape).
    pub fn ofd_view(&self) -> Vec<Value> {
        let end = self.options.end;
        self.regs
            .iter()
            .filter(|r| r.scenario != Scenario::Autonomous)
            .map(|r| {
                let contract = match r.scenario {
                    Scenario::ContractExpiring { days } => end + (days * DAY_MS as f64) as i64,
                    _ => end + 200 * DAY_MS,
                };
                let now = self.next_slot;
                let fn_days = (r.fn_expires_at - now) as f64 / DAY_MS as f64;
                let state = if fn_days <= 0.0 {
                    "fn_expired"
                } else if fn_days < 30.0 {
                    "fn_expiring"
                } else if (contract - now) < 14 * DAY_MS {
                    "contract_expiring"
                } else {
                    "active"
                };
                let last_ofd = r.last_ack_at.map(ts);
                json!({
                    "kkt_reg_number": r.reg_number,
                    "fn_number": r.fn_number,
                    "fn_end_at": ts(r.fn_expires_at),
                    "last_document_at_kkt": r.last_document_at.map(ts),
                    "last_document_at_ofd": last_ofd,
                    "last_fd_number": r.last_fd,
                    "unsent_documents": r.unsent,
                    "shift": if r.shift_open { "open" } else { "closed" },
                    "contract_end_at": ts(contract),
                    "state": state,
                    "last_document_state": if r.unsent > 0 && r.first_unsent_at.is_some_and(|f| now - f > 2 * DAY_MS) { "problem" } else { "ok" },
                })
            })
            .collect()
    }

    /// Which (alert, register) pairs the shipped rules must raise at the end of the history,
    /// and no others. `with_ofd`: whether an OFD poller feeds the OFD's view.
    pub fn expected_alerts(&self, with_ofd: bool) -> BTreeSet<(String, String)> {
        self.regs
            .iter()
            .flat_map(|r| {
                r.scenario
                    .expected_alerts()
                    .into_iter()
                    .filter(move |a| with_ofd || !a.starts_with("Ofd"))
                    .map(|a| (a.to_owned(), r.reg_number.clone()))
            })
            .collect()
    }

    /// The registers' numbers with their scenarios.
    pub fn registers(&self) -> Vec<(String, Scenario)> {
        self.regs
            .iter()
            .map(|r| (r.reg_number.clone(), r.scenario))
            .collect()
    }
}

fn ts(ms: i64) -> String {
    dozor_model::time::rfc3339_ns(ms.saturating_mul(1_000_000))
}

/// A Poisson draw (Knuth's method; `mean` is small).
fn poisson(rng: &mut fastrand::Rng, mean: f64) -> u32 {
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p = rng.f64();
    while p > limit && k < 100 {
        k += 1;
        p *= rng.f64();
    }
    k
}

fn blocking_error(r: &Reg, t: i64) -> Option<&'static str> {
    let atol = r.driver == "atol10";
    let pick = |a: &'static str, s: &'static str| Some(if atol { a } else { s });
    if r.scenario != Scenario::Autonomous && r.first_unsent_at.is_some_and(|f| t - f >= 30 * DAY_MS)
    {
        return pick("137", "0x14");
    }
    if r.shift_opened_at.is_some_and(|o| t - o >= DAY_MS) {
        return pick("141", "0x16");
    }
    if t >= r.fn_expires_at {
        return pick("120", "0x05");
    }
    if r.memory >= 0.99 {
        return pick("121", "0x06");
    }
    None
}

fn open_shift(r: &mut Reg, t: i64, offset: i32, out: &mut Vec<String>) {
    r.shift_number += 1;
    r.shift_open = true;
    r.shift_opened_at = Some(t);
    r.receipts = 0;
    document(r, t, 2, None, 0, offset, out);
}

fn document(
    r: &mut Reg,
    t: i64,
    kind: i64,
    op: Option<i64>,
    total: i64,
    offset: i32,
    out: &mut Vec<String>,
) {
    r.last_fd += 1;
    r.last_document_at = Some(t);
    if kind == 3 {
        r.receipts += 1;
        r.memory = (r.memory + 0.000_002).min(1.0);
    }
    r.unsent += 1;
    if r.first_unsent_fd.is_none() {
        r.first_unsent_fd = Some(r.last_fd);
        r.first_unsent_at = Some(t);
    }
    let skew = match r.scenario {
        Scenario::ClockSkew { seconds } => seconds * 1000,
        _ => 0,
    };
    let local = t + skew + i64::from(offset) * 60_000;
    let datetime = ts(local);
    let datetime = datetime.trim_end_matches('Z');
    let datetime = datetime.split('.').next().unwrap_or(datetime);
    let mut d = json!({
        "fd_number": r.last_fd,
        "kind": kind,
        "datetime": datetime,
        "fpd": mix(r.last_fd, t as u64, 7) % 4_294_967_296,
        "shift": r.shift_number,
    });
    if kind == 3 {
        d["operation"] = json!(op.unwrap_or(1));
        d["total_kop"] = json!(total);
        let cash = if r.last_fd.is_multiple_of(3) {
            total
        } else {
            0
        };
        d["cash_kop"] = json!(cash);
        d["cashless_kop"] = json!(total - cash);
        d["tax_system"] = json!(2);
    }
    out.push(line(r, t, "document", json!({"document": d})));
}

fn error_line(r: &Reg, t: i64, code: &str, out: &mut Vec<String>) {
    let known = crate::model::lookup(code);
    out.push(line(
        r,
        t,
        "error",
        json!({"error": {
            "code": code,
            "category": known.map_or("other", |k| k.category.label()),
            "message": known.map_or("", |k| k.meaning),
            "blocking": known.is_some_and(|k| k.blocking),
        }}),
    ));
}

fn status(r: &Reg, t: i64) -> String {
    let days_left = (r.fn_expires_at - t) as f64 / DAY_MS as f64;
    let ofd_timeout = r.first_unsent_at.is_some_and(|f| t - f > 2 * DAY_MS);
    line(
        r,
        t,
        "status",
        json!({
            "fn": {
                "number": r.fn_number,
                "expires_at": ts(r.fn_expires_at),
                "validity_months": 15,
                "memory_used_ratio": (r.memory * 10_000.0).round() / 10_000.0,
                "last_fd_number": r.last_fd,
                "flags": {
                    "resource_exhaustion_30d": days_left < 30.0,
                    "urgent_replacement_3d": days_left < 3.0,
                    "memory_full_90pct": r.memory >= 0.9,
                    "ofd_timeout": ofd_timeout && r.scenario != Scenario::Autonomous,
                },
            },
            "ofd_queue": {
                "unsent": r.unsent,
                "first_unsent_fd": r.first_unsent_fd,
                "first_unsent_at": r.first_unsent_at.map(ts),
                "last_ack_at": r.last_ack_at.map(ts),
                "unsent_marking_notices": 0,
            },
            "shift": {
                "number": r.shift_number,
                "open": r.shift_open,
                "opened_at": r.shift_opened_at.map(ts),
                "receipts": r.receipts,
            },
        }),
    )
}

fn line(r: &Reg, t: i64, event: &str, extra: Value) -> String {
    let mut v = json!({
        "ts": ts(t),
        "kkt": {
            "reg_number": r.reg_number,
            "serial": r.serial,
            "model": r.model,
            "driver": r.driver,
            "ffd": r.ffd,
            "autonomous": r.scenario == Scenario::Autonomous,
        },
        "event": event,
    });
    if let (Value::Object(m), Value::Object(x)) = (&mut v, extra) {
        m.extend(x);
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_line;
    use crate::fleet::{Fleet, FleetOptions};

    const END: i64 = 1_790_000_000_000;

    #[test]
    fn every_line_parses_and_the_fleet_is_deterministic() {
        let options = SimOptions::demo(12, 7, END, 6 * HOUR_MS);
        let mut a = Sim::new(options.clone());
        let mut b = Sim::new(options);
        let lines = a.step(END);
        // Stepping in small increments gives the same lines.
        let mut other = Vec::new();
        let mut t = b.now();
        while t < END {
            t += 7 * SLOT_MS;
            other.extend(b.step(t.min(END)));
        }
        assert_eq!(lines, other);
        assert!(lines.len() > 12 * 6 * 60, "{}", lines.len());
        for l in &lines {
            parse_line(l.as_bytes(), 180).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
    }

    #[test]
    fn the_faults_show_in_the_fleet() {
        let mut sim = Sim::new(SimOptions::demo(24, 3, END, 2 * HOUR_MS));
        let fleet = Fleet::new(FleetOptions::default());
        for l in sim.step(END) {
            fleet.apply(parse_line(l.as_bytes(), 180).unwrap(), END);
        }
        for (reg, scenario) in sim.registers() {
            let v = fleet.get(&reg, END).unwrap();
            let status = v["status"].as_str().unwrap().to_owned();
            let expected = match scenario {
                Scenario::OfdOutage { days } if days > 25.0 => "critical",
                Scenario::OfdOutage { .. }
                | Scenario::MemoryFill { .. }
                | Scenario::ClockSkew { .. } => "warning",
                Scenario::ForgottenShift { .. } | Scenario::FnEndOfLife { .. } => "critical",
                _ => "ok",
            };
            assert_eq!(status, expected, "{scenario:?}: {v}");
        }
        let skewed = sim
            .registers()
            .into_iter()
            .find(|(_, s)| matches!(s, Scenario::ClockSkew { .. }))
            .unwrap();
        let v = fleet.get(&skewed.0, END).unwrap();
        assert!(
            (v["clock_skew_seconds"].as_f64().unwrap() - 600.0).abs() < 1.0,
            "{v}"
        );
        assert!(sim.expected_alerts(false).contains(&(
            "KktOfdBlockImminent".to_owned(),
            sim.registers()[1].0.clone()
        )));
        assert!(
            !sim.expected_alerts(false)
                .iter()
                .any(|(a, _)| a == "OfdContractExpiring")
        );
        assert!(
            sim.expected_alerts(true)
                .iter()
                .any(|(a, _)| a == "OfdContractExpiring")
        );
    }

    #[test]
    fn scenarios_parse() {
        assert_eq!(
            Scenario::parse("ofd_outage:31").unwrap(),
            Scenario::OfdOutage { days: 31.0 }
        );
        assert_eq!(Scenario::parse("autonomous").unwrap(), Scenario::Autonomous);
        assert!(
            Scenario::parse("fire")
                .unwrap_err()
                .contains("unknown scenario")
        );
        assert!(
            Scenario::parse("clock_skew:x")
                .unwrap_err()
                .contains("not a number")
        );
        let blocked = Scenario::OfdOutage { days: 31.0 }.expected_alerts();
        assert!(blocked.contains(&"KktOfdBlocked"));
    }
}
