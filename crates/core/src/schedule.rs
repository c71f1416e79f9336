//! When a recurring task runs: `"every 6h"`, `"daily 02:30"` or
//! `"weekly sun 03:00"` (times in UTC).

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const DAY: u64 = 86_400;
const WEEK: u64 = 7 * DAY;
const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A recurring time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// At a fixed interval from the last run.
    Every(Duration),
    /// Every day at this many seconds after midnight UTC.
    Daily(u64),
    /// Every week on this day (0 = Monday) at this many seconds after
    /// midnight UTC.
    Weekly(u8, u64),
}

impl Schedule {
    /// The first time this schedule is due after `last` (the previous
    /// run), or at `now` when there was none for an interval schedule.
    pub fn next_after(&self, last: Option<SystemTime>, now: SystemTime) -> SystemTime {
        let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        match *self {
            Schedule::Every(d) => last.map_or(now, |l| l + d),
            Schedule::Daily(offset) => {
                let from = secs(last.unwrap_or(now));
                let today = from - from % DAY + offset;
                at(if today > from { today } else { today + DAY })
            }
            Schedule::Weekly(day, offset) => {
                let from = secs(last.unwrap_or(now));
                // 1970-01-01 was a Thursday (day 3 counting from Monday).
                let week_start = ((from + 3 * DAY) / WEEK * WEEK).saturating_sub(3 * DAY);
                let this = week_start + u64::from(day) * DAY + offset;
                at(if this > from { this } else { this + WEEK })
            }
        }
    }

    /// The longest time between two runs.
    pub fn period(&self) -> Duration {
        match *self {
            Schedule::Every(d) => d,
            Schedule::Daily(_) => Duration::from_secs(DAY),
            Schedule::Weekly(..) => Duration::from_secs(WEEK),
        }
    }
}

fn time_of_day(s: &str) -> Option<u64> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u64, u64) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 3600 + m * 60)
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "\"every 6h\", \"daily 02:30\" or \"weekly sun 03:00\" (UTC)";
        let words: Vec<&str> = s.split_whitespace().collect();
        let parsed = match words.as_slice() {
            ["every", rest @ ..] if !rest.is_empty() => humantime::parse_duration(&rest.join(" "))
                .ok()
                .filter(|d| *d >= Duration::from_secs(1))
                .map(Schedule::Every),
            ["hourly"] => Some(Schedule::Every(Duration::from_secs(3600))),
            ["daily", t] => time_of_day(t).map(Schedule::Daily),
            ["weekly", day, t] => {
                let d = DAYS.iter().position(|d| day.to_ascii_lowercase().starts_with(d));
                d.zip(time_of_day(t)).map(|(d, t)| Schedule::Weekly(d as u8, t))
            }
            _ => None,
        };
        parsed.ok_or_else(|| EXPECTED.to_string())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |s: u64| format!("{:02}:{:02}", s / 3600, s % 3600 / 60);
        match *self {
            Schedule::Every(d) => write!(f, "every {}", humantime::format_duration(d)),
            Schedule::Daily(t) => write!(f, "daily {}", hm(t)),
            Schedule::Weekly(d, t) => write!(f, "weekly {} {}", DAYS[usize::from(d) % 7], hm(t)),
        }
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(|e: String| serde::de::Error::custom(format!("{s:?}: expected {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn parses_and_prints_the_three_forms() {
        for text in ["every 6h", "daily 02:30", "weekly sun 03:00"] {
            assert_eq!(text.parse::<Schedule>().unwrap().to_string(), text);
        }
        assert_eq!("hourly".parse::<Schedule>(), Ok(Schedule::Every(Duration::from_secs(3600))));
        for bad in ["", "every", "every 0s", "daily 25:00", "daily 2", "weekly xyz 01:00", "monthly"] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad}");
        }
    }

    #[test]
    fn next_runs() {
        let now = t(10 * DAY + 5 * 3600); // day 10, 05:00 UTC
        let every = Schedule::Every(Duration::from_secs(600));
        assert_eq!(every.next_after(None, now), now);
        assert_eq!(every.next_after(Some(now), now), t(10 * DAY + 5 * 3600 + 600));
        let daily: Schedule = "daily 02:30".parse().unwrap();
        assert_eq!(daily.next_after(Some(now), now), t(11 * DAY + 2 * 3600 + 1800));
        assert_eq!(daily.next_after(Some(t(10 * DAY)), now), t(10 * DAY + 2 * 3600 + 1800));
        // 1970-01-12 was a Monday; day 10 a Sunday.
        let weekly: Schedule = "weekly mon 01:00".parse().unwrap();
        assert_eq!(weekly.next_after(Some(now), now), t(11 * DAY + 3600));
        let weekly: Schedule = "weekly sun 06:00".parse().unwrap();
        assert_eq!(weekly.next_after(Some(now), now), t(10 * DAY + 6 * 3600));
    }
}
