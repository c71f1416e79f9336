//! Human-readable durations in configuration (`"10s"`, `"5m"`, `"250ms"`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A duration written the way people write it in a config file.
///
/// Accepts anything `humantime` understands (`"250ms"`, `"10s"`, `"1h 30m"`)
/// and serializes back to the same form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// A duration of `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// A duration of `ms` milliseconds.
    pub const fn millis(ms: u64) -> Self {
        Self(Duration::from_millis(ms))
    }

    /// The standard-library duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(HumanDuration)
            .map_err(|e| format!("a duration such as \"10s\" or \"5m\" ({e})"))
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"10s\" or \"5m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.parse().map_err(|_| E::invalid_value(de::Unexpected::Str(v), &"a duration such as \"10s\" or \"5m\""))
            }
        }
        d.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!("10s".parse::<HumanDuration>().unwrap(), HumanDuration::secs(10));
        assert_eq!("250ms".parse::<HumanDuration>().unwrap(), HumanDuration::millis(250));
        assert_eq!("1h 30m".parse::<HumanDuration>().unwrap(), HumanDuration::secs(5400));
        assert!("ten seconds".parse::<HumanDuration>().is_err());
    }

    #[test]
    fn round_trips_through_display() {
        let d = HumanDuration::secs(90);
        assert_eq!(d.to_string().parse::<HumanDuration>().unwrap(), d);
    }
}
