//! Alertmanager's time intervals (`time_intervals`, formerly `mute_time_intervals`): named
//! sets of periods a route refers to in `mute_time_intervals` (no notifications then) or
//! `active_time_intervals` (notifications only then).
//!
//! A period holds any of `times` (`HH:MM` start inclusive, end exclusive, `24:00` allowed),
//! `weekdays` (`monday:friday`), `days_of_month` (`1:5`, negative counts from the month's
//! end: `-1` is its last day), `months` (`january:march` or `1:3`), `years` (`2025:2026`)
//! and a `location` (an IANA zone such as `Europe/Moscow`, `Local`, default `UTC`); every
//! field given must hold, a field not given always holds. A named interval holds when any of
//! its periods does. Zones come from the system's tz database, with jiff's bundled copy as
//! the fallback.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::Deserialize;

/// One named interval as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    /// The name routes use.
    pub name: String,
    /// Its periods.
    #[serde(default)]
    pub time_intervals: Vec<PeriodConfig>,
}

/// One period as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodConfig {
    /// Times of day.
    #[serde(default)]
    pub times: Vec<TimeRangeConfig>,
    /// Days of the week, names or ranges of names.
    #[serde(default)]
    pub weekdays: Vec<String>,
    /// Days of the month, numbers or ranges; negative from the end.
    #[serde(default)]
    pub days_of_month: Vec<String>,
    /// Months, names or numbers, or ranges of them.
    #[serde(default)]
    pub months: Vec<String>,
    /// Years or ranges of years.
    #[serde(default)]
    pub years: Vec<String>,
    /// The zone the fields are read in.
    #[serde(default)]
    pub location: Option<String>,
}

/// A range of times of day.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeConfig {
    /// `HH:MM`, inclusive.
    pub start_time: String,
    /// `HH:MM`, exclusive (`24:00`: midnight at the end of the day).
    pub end_time: String,
}

type Range = (i32, i32);

#[derive(Debug, Clone)]
struct Period {
    minutes: Vec<Range>,
    weekdays: Vec<Range>,
    days_of_month: Vec<Range>,
    months: Vec<Range>,
    years: Vec<Range>,
    zone: TimeZone,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn clock(s: &str) -> Result<i32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected HH:MM"))?;
    let h: i32 = h.parse().map_err(|_| format!("{s:?}: bad hour"))?;
    let m: i32 = m.parse().map_err(|_| format!("{s:?}: bad minute"))?;
    if !(0..=24).contains(&h) || !(0..60).contains(&m) || (h == 24 && m != 0) {
        return Err(format!("{s:?}: not a time of day"));
    }
    Ok(h * 60 + m)
}

/// Parses `a` or `a:b` with `one` reading each end; checks the order.
fn ranges(
    items: &[String],
    field: &str,
    one: impl Fn(&str) -> Result<i32, String>,
    ordered: bool,
) -> Result<Vec<Range>, String> {
    items
        .iter()
        .map(|item| {
            let (a, b) = match item.split_once(':') {
                Some((a, b)) => (one(a.trim())?, one(b.trim())?),
                None => {
                    let v = one(item.trim())?;
                    (v, v)
                }
            };
            if ordered && a > b {
                return Err(format!("{item:?}: the start is after the end"));
            }
            Ok((a, b))
        })
        .collect::<Result<_, String>>()
        .map_err(|e| format!("{field}: {e}"))
}

fn named(names: &'static [&'static str], base: i32) -> impl Fn(&str) -> Result<i32, String> {
    move |s: &str| {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i32::try_from(i).unwrap_or(0) + base);
        }
        match s.parse::<i32>() {
            Ok(n) if base == 1 && (1..=12).contains(&n) => Ok(n),
            _ => Err(format!("{s:?}: unknown name")),
        }
    }
}

fn number(lo: i32, hi: i32) -> impl Fn(&str) -> Result<i32, String> {
    move |s: &str| match s.parse::<i32>() {
        Ok(n) if (lo..=hi).contains(&n) && n != 0 => Ok(n),
        _ => Err(format!("{s:?}: not in {lo}..{hi}")),
    }
}

impl Period {
    fn compile(c: &PeriodConfig) -> Result<Period, String> {
        let minutes = c
            .times
            .iter()
            .map(|t| {
                let (a, b) = (clock(&t.start_time)?, clock(&t.end_time)?);
                if a >= b {
                    return Err(format!(
                        "times: {}–{} ends before it starts",
                        t.start_time, t.end_time
                    ));
                }
                Ok((a, b))
            })
            .collect::<Result<_, String>>()?;
        let zone = match c.location.as_deref() {
            None | Some("UTC") => TimeZone::UTC,
            Some("Local") => TimeZone::system(),
            Some(name) => TimeZone::get(name).map_err(|e| format!("location {name:?}: {e}"))?,
        };
        Ok(Period {
            minutes,
            weekdays: ranges(&c.weekdays, "weekdays", named(&WEEKDAYS, 0), true)?,
            // -1 … -31 and 1 … 31; mixed signs are ordered when the month is known.
            days_of_month: ranges(&c.days_of_month, "days_of_month", number(-31, 31), false)?,
            months: ranges(&c.months, "months", named(&MONTHS, 1), true)?,
            years: ranges(&c.years, "years", number(1, 9999), true)?,
            zone,
        })
    }

    fn contains(&self, ms: i64) -> bool {
        let Ok(ts) = jiff::Timestamp::from_millisecond(ms) else {
            return false;
        };
        let t = ts.to_zoned_datetime(self.zone.clone());
        let within =
            |rs: &[Range], v: i32| rs.is_empty() || rs.iter().any(|(a, b)| *a <= v && v <= *b);
        let minute = i32::from(t.hour()) * 60 + i32::from(t.minute());
        let in_times = self.minutes.is_empty()
            || self
                .minutes
                .iter()
                .any(|(a, b)| *a <= minute && minute < *b);
        let days = i32::from(t.days_in_month());
        let day = i32::from(t.day());
        let resolve = |d: i32| if d < 0 { days + 1 + d } else { d };
        let in_days = self.days_of_month.is_empty()
            || self.days_of_month.iter().any(|(a, b)| {
                let (a, b) = (resolve(*a), resolve(*b).min(days));
                a <= day && day <= b
            });
        in_times
            && in_days
            && within(
                &self.weekdays,
                i32::from(t.weekday().to_sunday_zero_offset()),
            )
            && within(&self.months, i32::from(t.month()))
            && within(&self.years, i32::from(t.year()))
    }
}

/// The named intervals of one configuration.
#[derive(Debug, Clone, Default)]
pub struct TimeIntervals {
    by_name: BTreeMap<String, Vec<Period>>,
}

impl TimeIntervals {
    /// Compiles the intervals; errors name the interval.
    pub fn compile(configs: &[TimeIntervalConfig]) -> Result<TimeIntervals, String> {
        let mut by_name = BTreeMap::new();
        for c in configs {
            let periods = c
                .time_intervals
                .iter()
                .map(Period::compile)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("time_intervals {:?}: {e}", c.name))?;
            if by_name.insert(c.name.clone(), periods).is_some() {
                return Err(format!("time_intervals: {:?} appears twice", c.name));
            }
        }
        Ok(TimeIntervals { by_name })
    }

    /// Whether an interval of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Whether the named interval holds at `ms` (an unknown name never holds).
    pub fn contains(&self, name: &str, ms: i64) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|ps| ps.iter().any(|p| p.contains(ms)))
    }

    /// Whether a route with these `mute_time_intervals` and `active_time_intervals` is
    /// muted at `ms`.
    pub fn mutes(&self, mute: &[String], active: &[String], ms: i64) -> bool {
        mute.iter().any(|n| self.contains(n, ms))
            || (!active.is_empty() && !active.iter().any(|n| self.contains(n, ms)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intervals(yaml: &str) -> TimeIntervals {
        let c: Vec<TimeIntervalConfig> = serde_saphyr::from_str(yaml).unwrap();
        TimeIntervals::compile(&c).unwrap()
    }

    fn at(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn office_hours_in_moscow() {
        let t = intervals(
            "- name: office\n  time_intervals:\n    - times: [{start_time: '09:00', end_time: '18:00'}]\n      weekdays: ['monday:friday']\n      location: Europe/Moscow\n",
        );
        // 2026-12-07 is a Monday; Moscow is UTC+3.
        assert!(
            t.contains("office", at("2026-12-07T06:00:00Z")),
            "09:00 MSK"
        );
        assert!(
            !t.contains("office", at("2026-12-07T05:59:00Z")),
            "08:59 MSK"
        );
        assert!(
            !t.contains("office", at("2026-12-07T15:00:00Z")),
            "18:00 MSK, end exclusive"
        );
        assert!(
            !t.contains("office", at("2026-12-05T10:00:00Z")),
            "Saturday"
        );
        assert!(!t.contains("nope", at("2026-12-07T10:00:00Z")));
    }

    #[test]
    fn days_months_and_years() {
        let t = intervals(
            "- name: month_end\n  time_intervals:\n    - days_of_month: ['-2:-1']\n- name: winter\n  time_intervals:\n    - months: ['december', '1:2']\n      years: ['2026:2027']\n",
        );
        assert!(t.contains("month_end", at("2027-02-27T12:00:00Z")));
        assert!(t.contains("month_end", at("2027-02-28T23:59:00Z")));
        assert!(!t.contains("month_end", at("2027-02-26T12:00:00Z")));
        assert!(t.contains("winter", at("2026-12-31T00:00:00Z")));
        assert!(t.contains("winter", at("2027-02-01T00:00:00Z")));
        assert!(!t.contains("winter", at("2027-03-01T00:00:00Z")));
        assert!(!t.contains("winter", at("2025-12-01T00:00:00Z")));
    }

    #[test]
    fn mute_and_active_intervals_of_a_route() {
        let t = intervals(
            "- name: night\n  time_intervals:\n    - times: [{start_time: '00:00', end_time: '06:00'}]\n",
        );
        let night = at("2026-12-07T03:00:00Z");
        let day = at("2026-12-07T12:00:00Z");
        let n = ["night".to_owned()];
        assert!(t.mutes(&n, &[], night));
        assert!(!t.mutes(&n, &[], day));
        assert!(t.mutes(&[], &n, day), "active only at night");
        assert!(!t.mutes(&[], &n, night));
        assert!(!t.mutes(&[], &[], day));
    }

    #[test]
    fn bad_intervals_say_where() {
        for (yaml, want) in [
            (
                "- name: x\n  time_intervals:\n    - weekdays: [funday]\n",
                "weekdays",
            ),
            (
                "- name: x\n  time_intervals:\n    - times: [{start_time: '10:00', end_time: '09:00'}]\n",
                "ends before",
            ),
            (
                "- name: x\n  time_intervals:\n    - times: [{start_time: '25:00', end_time: '26:00'}]\n",
                "time of day",
            ),
            (
                "- name: x\n  time_intervals:\n    - location: Mars/Olympus\n",
                "location",
            ),
            (
                "- name: x\n  time_intervals:\n    - months: ['13']\n",
                "months",
            ),
            ("- name: x\n- name: x\n", "twice"),
        ] {
            let c: Vec<TimeIntervalConfig> = serde_saphyr::from_str(yaml).unwrap();
            let e = TimeIntervals::compile(&c).unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
    }
}
