//! Fraud and behaviour detectors over event streams (seeds 002 and 004): ticket scalpers,
//! bots, activity at odd hours, amounts far from an account's own, many accounts behind
//! one address, and API calls an account never makes. Each finding carries a risk level and
//! the reasons a person reads ("12 tickets for event E in 2 h; the limit is 8").
//!
//! All of them are online: [`FraudDetector::observe`] takes one event and answers what it
//! reveals, from per-key state bounded by time windows and [`Config::max_keys`].
//!
//! - **Scalper**: tickets for one event bought by one account, card or address within
//!   [`Config::window_ms`]; above [`Config::ticket_limit`] (three times it for an address,
//!   which offices and carriers share) it is medium, above twice that high.
//! - **Bot**: requests of one account in the last minute above [`Config::rate_limit`], or
//!   at least [`Config::regular_min`] requests whose gaps barely vary (coefficient of
//!   variation below [`Config::regularity`]) — people are irregular, scripts are not.
//! - **Odd hours**: an event in the night hours (UTC, [`Config::night`]) from an account
//!   that has at least [`Config::habit_min`] earlier events, none of them at night.
//! - **Amount outlier**: an amount per unit whose robust z-score against the account's (or
//!   merchant's) last ones — at least [`Config::amount_min`] of them; an account with
//!   fewer is judged against its merchant's — is at least [`Config::amount_z`], and that
//!   is at least [`Config::amount_ratio`] times their median.
//! - **Shared address**: more than [`Config::users_per_ip`] accounts from one address
//!   within the window.
//! - **Unusual API**: a call of an endpoint the account has not called among at least
//!   [`Config::habit_min`] earlier calls, and that is rare overall (under 1 % of calls).
//!
//! Each pattern reports an account (or card, or address) once per window, so a scalper's
//! twentieth ticket does not page anyone twice.

use std::collections::{HashMap, VecDeque};

use crate::mad::median;

/// What an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Tickets (or goods) bought.
    Purchase,
    /// An API or page request.
    Request,
}

/// One event of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When, ms since the epoch.
    pub at_ms: i64,
    /// Purchase or request.
    pub kind: Kind,
    /// The account.
    pub user: String,
    /// The client address.
    pub ip: String,
    /// The card paid with (purchases).
    pub card: Option<String>,
    /// What was bought (an event's id, for tickets).
    pub item: Option<String>,
    /// Tickets (or units) bought.
    pub quantity: u32,
    /// The amount paid.
    pub amount: Option<f64>,
    /// The merchant paid.
    pub merchant: Option<String>,
    /// The endpoint called (requests).
    pub endpoint: Option<String>,
}

/// A pattern the detectors know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// Many tickets for one event.
    Scalper,
    /// Scripted requests.
    Bot,
    /// Activity at an unusual hour.
    OddHours,
    /// An amount far from the usual.
    AmountOutlier,
    /// Many accounts behind one address.
    SharedIp,
    /// An endpoint an account does not use.
    UnusualApi,
}

impl Pattern {
    /// Every pattern.
    pub const ALL: [Pattern; 6] = [
        Pattern::Scalper,
        Pattern::Bot,
        Pattern::OddHours,
        Pattern::AmountOutlier,
        Pattern::SharedIp,
        Pattern::UnusualApi,
    ];

    /// Its name in findings and APIs.
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Scalper => "scalper",
            Pattern::Bot => "bot",
            Pattern::OddHours => "odd_hours",
            Pattern::AmountOutlier => "amount_outlier",
            Pattern::SharedIp => "shared_ip",
            Pattern::UnusualApi => "unusual_api",
        }
    }
}

/// How risky a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Risk {
    /// Worth a look.
    Medium,
    /// Act on it.
    High,
}

/// What an event revealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The pattern.
    pub pattern: Pattern,
    /// How risky.
    pub risk: Risk,
    /// Who: `user:<id>`, `card:<id>`, `ip:<address>`, `merchant:<id>`.
    pub subject: String,
    /// Why, for a person.
    pub reason: String,
}

/// Limits; the defaults are the one configuration the simulator is scored with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// The window of counts (tickets, accounts per address), ms.
    pub window_ms: i64,
    /// Tickets for one event per account, card or address.
    pub ticket_limit: u32,
    /// Requests per account per minute.
    pub rate_limit: usize,
    /// Requests whose gaps are judged for regularity.
    pub regular_min: usize,
    /// Largest coefficient of variation of gaps that is scripted.
    pub regularity: f64,
    /// Night hours, UTC: from (inclusive) and to (exclusive).
    pub night: (u32, u32),
    /// Earlier events an account needs before its habits are judged.
    pub habit_min: usize,
    /// Earlier amounts an account or merchant needs before its amounts are judged.
    pub amount_min: usize,
    /// Robust z-score of an outlying amount.
    pub amount_z: f64,
    /// How many times the median an outlying amount is at least.
    pub amount_ratio: f64,
    /// Accounts per address in the window.
    pub users_per_ip: usize,
    /// Most keys tracked per kind of state; beyond it the least recent are forgotten.
    pub max_keys: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            window_ms: 24 * 3600 * 1000,
            ticket_limit: 8,
            rate_limit: 60,
            regular_min: 20,
            regularity: 0.1,
            night: (1, 5),
            habit_min: 20,
            amount_min: 3,
            amount_z: 8.0,
            amount_ratio: 10.0,
            users_per_ip: 10,
            max_keys: 100_000,
        }
    }
}

/// Per-account state.
#[derive(Debug, Clone)]
struct Account {
    last_ms: i64,
    /// Times of the last requests (a minute, at least `regular_min`).
    requests: VecDeque<i64>,
    /// Events seen, and whether any was at night.
    events: usize,
    night_seen: bool,
    amounts: VecDeque<f64>,
    endpoints: HashMap<String, usize>,
    calls: usize,
}

impl Account {
    fn new(at_ms: i64) -> Account {
        Account {
            last_ms: at_ms,
            requests: VecDeque::new(),
            events: 0,
            night_seen: false,
            amounts: VecDeque::new(),
            endpoints: HashMap::new(),
            calls: 0,
        }
    }
}

/// The detectors' state over one stream.
#[derive(Debug, Clone)]
pub struct FraudDetector {
    config: Config,
    accounts: HashMap<String, Account>,
    /// Tickets per (subject, item): times and quantities in the window.
    tickets: HashMap<(String, String), VecDeque<(i64, u32)>>,
    /// Accounts per address: last time seen each.
    ip_users: HashMap<String, HashMap<String, i64>>,
    merchants: HashMap<String, VecDeque<f64>>,
    endpoint_calls: HashMap<String, usize>,
    calls: usize,
    /// (pattern, subject) → when reported, so each is reported once per window.
    reported: HashMap<(Pattern, String), i64>,
}

impl FraudDetector {
    /// Detectors with `config`.
    pub fn new(config: Config) -> FraudDetector {
        FraudDetector {
            config,
            accounts: HashMap::new(),
            tickets: HashMap::new(),
            ip_users: HashMap::new(),
            merchants: HashMap::new(),
            endpoint_calls: HashMap::new(),
            calls: 0,
            reported: HashMap::new(),
        }
    }

    /// Takes the next event (events come in time order): what it reveals.
    pub fn observe(&mut self, e: &Event) -> Vec<Finding> {
        let mut found = Vec::new();
        self.bound();
        if e.kind == Kind::Purchase {
            self.scalper(e, &mut found);
            self.amounts(e, &mut found);
        } else {
            self.bot(e, &mut found);
            self.api(e, &mut found);
        }
        self.odd_hours(e, &mut found);
        self.shared_ip(e, &mut found);
        found.retain(|f| {
            let key = (f.pattern, f.subject.clone());
            match self.reported.get(&key) {
                Some(&at) if e.at_ms - at < self.config.window_ms => false,
                _ => {
                    self.reported.insert(key, e.at_ms);
                    true
                }
            }
        });
        found
    }

    /// Keeps every map within [`Config::max_keys`], forgetting the least recent half.
    fn bound(&mut self) {
        let max = self.config.max_keys.max(2);
        if self.accounts.len() > max {
            let mut times: Vec<i64> = self.accounts.values().map(|a| a.last_ms).collect();
            let mid = times.len() / 2;
            let cut = *times.select_nth_unstable(mid).1;
            self.accounts.retain(|_, a| a.last_ms > cut);
        }
        if self.tickets.len() > max {
            let mut times: Vec<i64> = self
                .tickets
                .values()
                .map(|q| q.back().map_or(0, |t| t.0))
                .collect();
            let mid = times.len() / 2;
            let cut = *times.select_nth_unstable(mid).1;
            self.tickets
                .retain(|_, q| q.back().is_some_and(|t| t.0 > cut));
        }
        if self.ip_users.len() > max {
            self.ip_users.clear();
        }
        if self.reported.len() > max {
            self.reported.clear();
        }
        if self.merchants.len() > max {
            self.merchants.clear();
        }
        if self.endpoint_calls.len() > max {
            self.endpoint_calls.clear();
            self.calls = 0;
        }
    }

    fn account(&mut self, e: &Event) -> &mut Account {
        account_in(&mut self.accounts, e)
    }

    fn scalper(&mut self, e: &Event, found: &mut Vec<Finding>) {
        let Some(item) = &e.item else {
            return;
        };
        let limit = self.config.ticket_limit;
        // Addresses are shared (offices, carriers' NAT): three times the limit for them.
        let mut subjects = vec![
            (format!("user:{}", e.user), limit),
            (format!("ip:{}", e.ip), 3 * limit),
        ];
        if let Some(card) = &e.card {
            subjects.push((format!("card:{card}"), limit));
        }
        for (subject, limit) in subjects {
            let q = self
                .tickets
                .entry((subject.clone(), item.clone()))
                .or_default();
            q.push_back((e.at_ms, e.quantity));
            while q
                .front()
                .is_some_and(|(t, _)| e.at_ms - t > self.config.window_ms)
            {
                q.pop_front();
            }
            let total: u32 = q.iter().map(|(_, n)| n).sum();
            if total > limit {
                let hours = (e.at_ms - q.front().map_or(e.at_ms, |t| t.0)) as f64 / 3.6e6;
                found.push(Finding {
                    pattern: Pattern::Scalper,
                    risk: if total > 2 * limit {
                        Risk::High
                    } else {
                        Risk::Medium
                    },
                    subject,
                    reason: format!(
                        "{total} tickets for {item} in {hours:.1} h; the limit is {limit}"
                    ),
                });
            }
        }
    }

    fn amounts(&mut self, e: &Event, found: &mut Vec<Finding>) {
        let Some(paid) = e.amount.filter(|a| a.is_finite() && *a > 0.0) else {
            return;
        };
        // Per unit: four tickets cost four times one, and are not an outlier for that.
        let amount = paid / f64::from(e.quantity.max(1));
        let c = self.config;
        let judge = |history: &VecDeque<f64>, subject: String, found: &mut Vec<Finding>| {
            if history.len() < c.amount_min {
                return;
            }
            let (m, z) = robust_z(history, amount);
            if z >= c.amount_z && amount >= c.amount_ratio * m {
                found.push(Finding {
                    pattern: Pattern::AmountOutlier,
                    risk: if z >= 2.0 * c.amount_z {
                        Risk::High
                    } else {
                        Risk::Medium
                    },
                    subject,
                    reason: format!(
                        "{amount:.2} a unit is {:.0}× the usual {m:.2} ({z:.0} spreads above)",
                        amount / m
                    ),
                });
            }
        };
        let user = format!("user:{}", e.user);
        let a = account_in(&mut self.accounts, e);
        let merchant = e
            .merchant
            .as_ref()
            .map(|m| (m, self.merchants.entry(m.clone()).or_default()));
        // An account with too short a history is judged against its merchant's.
        match &merchant {
            Some((_, history)) if a.amounts.len() < c.amount_min => judge(history, user, found),
            _ => judge(&a.amounts, user, found),
        }
        push_bounded(&mut a.amounts, amount, 50);
        if let Some((m, history)) = merchant {
            judge(history, format!("merchant:{m}"), found);
            push_bounded(history, amount, 200);
        }
    }

    fn bot(&mut self, e: &Event, found: &mut Vec<Finding>) {
        let (rate, regular_min, regularity) = (
            self.config.rate_limit,
            self.config.regular_min,
            self.config.regularity,
        );
        let a = self.account(e);
        a.requests.push_back(e.at_ms);
        while a.requests.len() > regular_min
            && a.requests.front().is_some_and(|t| e.at_ms - t > 60_000)
        {
            a.requests.pop_front();
        }
        let last_minute = a
            .requests
            .iter()
            .filter(|t| e.at_ms - **t <= 60_000)
            .count();
        if last_minute > rate {
            found.push(Finding {
                pattern: Pattern::Bot,
                risk: if last_minute > 2 * rate {
                    Risk::High
                } else {
                    Risk::Medium
                },
                subject: format!("user:{}", e.user),
                reason: format!("{last_minute} requests in a minute; the limit is {rate}"),
            });
            return;
        }
        if a.requests.len() >= regular_min {
            let gaps: Vec<f64> = a
                .requests
                .iter()
                .zip(a.requests.iter().skip(1))
                .rev()
                .take(regular_min - 1)
                .map(|(x, y)| (y - x) as f64)
                .collect();
            let n = gaps.len() as f64;
            let mean = gaps.iter().sum::<f64>() / n;
            let sd = (gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / n).sqrt();
            if mean > 0.0 && sd / mean < regularity {
                found.push(Finding {
                    pattern: Pattern::Bot,
                    risk: Risk::High,
                    subject: format!("user:{}", e.user),
                    reason: format!(
                        "{} requests {:.1} s apart, varying by {:.0} ms: scripted",
                        gaps.len() + 1,
                        mean / 1000.0,
                        sd
                    ),
                });
            }
        }
    }

    fn api(&mut self, e: &Event, found: &mut Vec<Finding>) {
        let Some(endpoint) = &e.endpoint else {
            return;
        };
        let habit = self.config.habit_min;
        let global = *self.endpoint_calls.get(endpoint).unwrap_or(&0);
        let rare = self.calls >= 1000 && (global as f64) < 0.01 * self.calls as f64;
        *self.endpoint_calls.entry(endpoint.clone()).or_default() += 1;
        self.calls += 1;
        let a = self.account(e);
        let known = a.endpoints.contains_key(endpoint);
        let calls = a.calls;
        *a.endpoints.entry(endpoint.clone()).or_default() += 1;
        a.calls += 1;
        if !known && rare && calls >= habit {
            found.push(Finding {
                pattern: Pattern::UnusualApi,
                risk: Risk::Medium,
                subject: format!("user:{}", e.user),
                reason: format!(
                    "{endpoint}: never called in this account's {calls} calls, and rare overall"
                ),
            });
        }
    }

    fn odd_hours(&mut self, e: &Event, found: &mut Vec<Finding>) {
        let (from, to) = self.config.night;
        let hour = u32::try_from(e.at_ms.div_euclid(3_600_000).rem_euclid(24)).unwrap_or(0);
        let night = if from <= to {
            (from..to).contains(&hour)
        } else {
            hour >= from || hour < to
        };
        let habit = self.config.habit_min;
        let a = self.account(e);
        if night && !a.night_seen && a.events >= habit {
            found.push(Finding {
                pattern: Pattern::OddHours,
                risk: Risk::Medium,
                subject: format!("user:{}", e.user),
                reason: format!(
                    "active at {hour:02}:00 UTC; none of its {} earlier events was at night",
                    a.events
                ),
            });
        }
        a.events += 1;
        a.night_seen |= night;
    }

    fn shared_ip(&mut self, e: &Event, found: &mut Vec<Finding>) {
        let window = self.config.window_ms;
        let users = self.ip_users.entry(e.ip.clone()).or_default();
        users.insert(e.user.clone(), e.at_ms);
        users.retain(|_, t| e.at_ms - *t <= window);
        if users.len() > self.config.users_per_ip {
            found.push(Finding {
                pattern: Pattern::SharedIp,
                risk: if users.len() > 3 * self.config.users_per_ip {
                    Risk::High
                } else {
                    Risk::Medium
                },
                subject: format!("ip:{}", e.ip),
                reason: format!(
                    "{} accounts from this address within {} h; the limit is {}",
                    users.len(),
                    window / 3_600_000,
                    self.config.users_per_ip
                ),
            });
        }
    }
}

/// The account of `e` in `accounts` (created at its first event), its last time set.
fn account_in<'a>(accounts: &'a mut HashMap<String, Account>, e: &Event) -> &'a mut Account {
    let a = accounts
        .entry(e.user.clone())
        .or_insert_with(|| Account::new(e.at_ms));
    a.last_ms = e.at_ms;
    a
}

/// Appends `x`, keeping the last `max`.
fn push_bounded(q: &mut VecDeque<f64>, x: f64, max: usize) {
    q.push_back(x);
    while q.len() > max {
        q.pop_front();
    }
}

/// The median of `history` and the robust z-score of `x` against it (median and MAD as in
/// [`crate::mad`]; the mean absolute deviation when the MAD is 0, a tenth of the median
/// when that is 0 too).
fn robust_z(history: &VecDeque<f64>, x: f64) -> (f64, f64) {
    let mut v: Vec<f64> = history.iter().copied().collect();
    let m = median(&mut v);
    for d in &mut v {
        *d = (*d - m).abs();
    }
    #[allow(clippy::cast_precision_loss)] // at most 200 values
    let mean_ad = v.iter().sum::<f64>() / v.len() as f64;
    let mad = median(&mut v);
    let spread = if mad > 0.0 {
        mad / 0.6745
    } else if mean_ad > 0.0 {
        1.253_314 * mean_ad
    } else {
        (0.1 * m.abs()).max(f64::MIN_POSITIVE)
    };
    (m, (x - m) / spread)
}

/// A labelled stream for scoring the detectors: ordinary traffic with borderline cases
/// (families buying four tickets, heavy but human users, an office behind one address, a
/// night-shift worker, a few large but ordinary purchases) and injected abusers, each
/// labelled with its pattern and subject.
pub mod simulator {
    use super::{Event, Kind, Pattern};

    use crate::SplitMix as Rng;

    /// The stream (in time order) and its labels: (pattern, subject) of every injected
    /// abuser.
    pub struct Simulated {
        /// Events in time order.
        pub events: Vec<Event>,
        /// Who was injected with what.
        pub labels: Vec<(Pattern, String)>,
    }

    const ENDPOINTS: [&str; 6] = [
        "/api/events",
        "/api/events/{id}",
        "/api/cart",
        "/api/orders",
        "/api/profile",
        "/api/search",
    ];

    /// Seven days of `users` ordinary accounts and the injected abusers, from `seed`.
    pub fn simulate(seed: u64, users: usize) -> Simulated {
        let mut r = Rng(seed);
        let day = 24 * 3_600_000_i64;
        let start = 1_796_515_200_000_i64; // a Monday, 00:00 UTC
        let mut events: Vec<Event> = Vec::new();
        let mut labels = Vec::new();
        let purchase =
            |at_ms, user: &str, ip: &str, card: &str, item: &str, q: u32, amount: f64| Event {
                at_ms,
                kind: Kind::Purchase,
                user: user.to_owned(),
                ip: ip.to_owned(),
                card: Some(card.to_owned()),
                item: Some(item.to_owned()),
                quantity: q,
                amount: Some(amount),
                merchant: Some(format!("m{}", item.len() % 3)),
                endpoint: None,
            };
        let request = |at_ms, user: &str, ip: &str, endpoint: &str| Event {
            at_ms,
            kind: Kind::Request,
            user: user.to_owned(),
            ip: ip.to_owned(),
            card: None,
            item: None,
            quantity: 0,
            amount: None,
            merchant: None,
            endpoint: Some(endpoint.to_owned()),
        };
        // Ordinary accounts: active 08–23 h (a few night-shift workers at night from the
        // start), a few sessions a day of irregular requests, a purchase now and then.
        for u in 0..users {
            let user = format!("u{u}");
            // One office address shared by 8 colleagues; the rest their own.
            let ip = if u % 50 < 8 {
                format!("10.1.{}.1", u / 50)
            } else {
                format!("10.2.{}.{}", u / 250, u % 250)
            };
            let card = format!("c{u}");
            let night_worker = u % 97 == 0;
            let heavy = u % 31 == 0;
            let spend = 20.0 + r.next() * 80.0;
            // People buy for different events; the same one twice is rare.
            let mut bought = 0;
            for d in 0..7 {
                let sessions = 1 + r.below(if heavy { 6 } else { 3 });
                for _ in 0..sessions {
                    let hour = if night_worker {
                        1 + r.below(4) as i64
                    } else {
                        8 + r.below(15) as i64
                    };
                    let mut t = start + d * day + hour * 3_600_000 + r.below(3_600_000) as i64;
                    let clicks = 3 + r.below(if heavy { 40 } else { 12 });
                    for _ in 0..clicks {
                        let ep = ENDPOINTS[r.below(ENDPOINTS.len() as u64) as usize];
                        events.push(request(t, &user, &ip, ep));
                        // People pause irregularly: 1–40 s.
                        t += 1_000 + r.below(39_000) as i64;
                    }
                    if r.below(3) == 0 {
                        // Families buy up to four; a few buy six.
                        let q = if r.below(20) == 0 {
                            6
                        } else {
                            1 + r.below(4) as u32
                        };
                        let item = format!("e{}", (u + 11 * bought) % 40);
                        bought += 1;
                        // A few large but ordinary purchases: twice the usual.
                        let scale = if r.below(25) == 0 {
                            2.0
                        } else {
                            0.7 + r.next() * 0.6
                        };
                        events.push(purchase(
                            t,
                            &user,
                            &ip,
                            &card,
                            &item,
                            q,
                            spend * f64::from(q) * scale,
                        ));
                    }
                }
            }
        }
        let inject_day = |r: &mut Rng| start + (3 + r.below(4) as i64) * day;
        // Scalpers: 15–40 tickets for one event in a few hours, several purchases.
        for s in 0..6 {
            let user = format!("scalper{s}");
            let ip = format!("172.16.0.{s}");
            let card = format!("sc{s}");
            let item = format!("e{}", r.below(40));
            let mut t = inject_day(&mut r) + 10 * 3_600_000;
            for _ in 0..(4 + r.below(5)) {
                events.push(purchase(
                    t,
                    &user,
                    &ip,
                    &card,
                    &item,
                    4 + r.below(4) as u32,
                    300.0,
                ));
                t += r.below(1_800_000) as i64;
            }
            labels.push((Pattern::Scalper, format!("user:{user}")));
            labels.push((Pattern::Scalper, format!("ip:{ip}")));
            labels.push((Pattern::Scalper, format!("card:{card}")));
        }
        // Bots: a request every 2 s ± 50 ms for ten minutes, or 100 a minute.
        for b in 0..6 {
            let user = format!("bot{b}");
            let ip = format!("172.17.0.{b}");
            let mut t = inject_day(&mut r) + 14 * 3_600_000;
            let fast = b % 2 == 0;
            for _ in 0..300 {
                events.push(request(t, &user, &ip, "/api/events/{id}"));
                t += if fast {
                    500 + r.below(200) as i64
                } else {
                    2_000 + r.below(100) as i64 - 50
                };
            }
            labels.push((Pattern::Bot, format!("user:{user}")));
        }
        // Odd hours, amount outliers and unusual API calls: ordinary accounts that turn.
        for k in 0..8 {
            let u = 1 + 13 * k; // not a night worker (multiples of 97), not heavy
            let user = format!("u{u}");
            let ip = format!("10.2.{}.{}", u / 250, u % 250);
            let t =
                start + 5 * day + (2 + r.below(2) as i64) * 3_600_000 + r.below(3_600_000) as i64;
            events.push(request(t, &user, &ip, "/api/profile"));
            labels.push((Pattern::OddHours, format!("user:{user}")));
        }
        for k in 0..8 {
            let u = 2 + 17 * k;
            let user = format!("u{u}");
            let ip = format!("10.2.{}.{}", u / 250, u % 250);
            let t = start + 6 * day + 15 * 3_600_000 + r.below(3_600_000) as i64;
            events.push(purchase(
                t,
                &user,
                &ip,
                &format!("c{u}"),
                "e7",
                2,
                5_000.0 + r.next() * 5_000.0,
            ));
            labels.push((Pattern::AmountOutlier, format!("user:{user}")));
        }
        // The merchant of those payments (item `e7`) sees them too.
        labels.push((Pattern::AmountOutlier, "merchant:m2".to_owned()));
        for k in 0..8 {
            let u = 3 + 19 * k;
            let user = format!("u{u}");
            let ip = format!("10.2.{}.{}", u / 250, u % 250);
            let t = start + 6 * day + 16 * 3_600_000 + r.below(3_600_000) as i64;
            events.push(request(t, &user, &ip, "/api/admin/export"));
            labels.push((Pattern::UnusualApi, format!("user:{user}")));
        }
        // Account farms: 20–60 new accounts from one address within an hour.
        for f in 0..4 {
            let ip = format!("192.0.2.{f}");
            let t0 = inject_day(&mut r) + 12 * 3_600_000;
            for a in 0..(20 + r.below(40)) {
                let at = t0 + r.below(3_600_000) as i64;
                events.push(request(at, &format!("farm{f}x{a}"), &ip, "/api/events"));
            }
            labels.push((Pattern::SharedIp, format!("ip:{ip}")));
        }
        events.sort_by_key(|e| e.at_ms);
        Simulated { events, labels }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashSet};

    fn ticket(at_ms: i64, user: &str, q: u32) -> Event {
        Event {
            at_ms,
            kind: Kind::Purchase,
            user: user.into(),
            ip: format!("ip-{user}"),
            card: None,
            item: Some("e1".into()),
            quantity: q,
            amount: Some(10.0 * f64::from(q)),
            merchant: None,
            endpoint: None,
        }
    }

    #[test]
    fn a_scalper_is_reported_once_with_reasons() {
        let mut d = FraudDetector::new(Config::default());
        assert!(d.observe(&ticket(0, "a", 4)).is_empty());
        assert!(
            d.observe(&ticket(1_000, "a", 4)).is_empty(),
            "8 is the limit"
        );
        let f = d.observe(&ticket(2_000, "a", 2));
        let user: Vec<&Finding> = f.iter().filter(|f| f.subject == "user:a").collect();
        assert_eq!(user.len(), 1);
        assert_eq!(user[0].pattern, Pattern::Scalper);
        assert_eq!(user[0].risk, Risk::Medium);
        assert!(
            user[0].reason.starts_with("10 tickets for e1"),
            "{}",
            user[0].reason
        );
        assert!(
            d.observe(&ticket(3_000, "a", 9)).is_empty(),
            "reported once per window"
        );
    }

    #[test]
    fn every_pattern_scores_f1_of_at_least_0_9_on_the_simulator() {
        for seed in [7, 2026] {
            let sim = simulator::simulate(seed, 2_000);
            let mut d = FraudDetector::new(Config::default());
            let mut reported: HashSet<(Pattern, String)> = HashSet::new();
            for e in &sim.events {
                for f in d.observe(e) {
                    assert!(!f.reason.is_empty());
                    reported.insert((f.pattern, f.subject));
                }
            }
            let truth: HashSet<(Pattern, String)> = sim.labels.iter().cloned().collect();
            let mut table = BTreeMap::new();
            for p in Pattern::ALL {
                let count = |f: &dyn Fn(&(Pattern, String)) -> bool, set: &HashSet<_>| {
                    set.iter().filter(|x| f(x)).count() as f64
                };
                let tp = count(&|r| r.0 == p && truth.contains(r), &reported);
                let fp = count(&|r| r.0 == p && !truth.contains(r), &reported);
                let fn_ = count(&|t| t.0 == p && !reported.contains(t), &truth);
                table.insert(p.name(), (tp, fp, fn_, 2.0 * tp / (2.0 * tp + fp + fn_)));
            }
            println!("seed {seed}: pattern (true positives, false positives, false negatives, F1)");
            for (name, row) in &table {
                println!("  {name}: {row:?}");
            }
            for (name, (tp, fp, fn_, f1)) in &table {
                assert!(
                    *f1 >= 0.9,
                    "seed {seed}, {name}: tp {tp} fp {fp} fn {fn_} F1 {f1:.3}"
                );
            }
        }
    }
}
