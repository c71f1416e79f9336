//! Numeric comparisons: `@eq`, `@ge`, `@gt`, `@le`, `@lt`. Both sides are
//! read as integers the way ModSecurity does: leading whitespace skipped,
//! an optional sign, digits up to the first non-digit; no digits is 0. The
//! argument is usually a macro (`@ge %{tx.inbound_anomaly_score_threshold}`).
//!
//! `SecRule TX:BLOCKING_INBOUND_ANOMALY_SCORE "@ge %{tx.inbound_anomaly_score_threshold}" "id:1,deny"`

use std::cmp::Ordering;

use super::{expand, Operator, Vars};

#[derive(Debug)]
struct Compare {
    arg: String,
    want: fn(Ordering) -> bool,
}

/// The integer at the start of `s`, as C's `atoi` reads it (saturating).
pub fn atoi(s: &[u8]) -> i64 {
    let s = match s.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(p) => &s[p..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

impl Operator for Compare {
    fn matches(&self, input: &[u8], vars: Vars<'_>) -> bool {
        let arg =
            if self.arg.contains("%{") { atoi(expand(&self.arg, vars).as_bytes()) } else { atoi(self.arg.as_bytes()) };
        (self.want)(atoi(input).cmp(&arg))
    }
}

fn make(arg: &str, want: fn(Ordering) -> bool) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Compare { arg: arg.to_string(), want }))
}

/// `@eq`.
pub fn eq(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(arg, Ordering::is_eq)
}

/// `@ge`.
pub fn ge(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(arg, Ordering::is_ge)
}

/// `@gt`.
pub fn gt(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(arg, Ordering::is_gt)
}

/// `@le`.
pub fn le(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(arg, Ordering::is_le)
}

/// `@lt`.
pub fn lt(arg: &str) -> Result<Box<dyn Operator>, String> {
    make(arg, Ordering::is_lt)
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn numbers_as_atoi_reads_them() {
        assert_eq!(super::atoi(b"  -12abc"), -12);
        assert_eq!(super::atoi(b"x"), 0);
        assert_eq!(super::atoi(b"99999999999999999999999"), i64::MAX);
        assert!(super::eq("0").unwrap().matches(b"", &no_vars));
        assert!(super::ge("5").unwrap().matches(b"5", &no_vars));
        assert!(super::lt("5").unwrap().matches(b"4", &no_vars));
        let vars = |k: &str| (k == "tx.threshold").then(|| "5".to_string());
        assert!(super::ge("%{tx.threshold}").unwrap().matches(b"7", &vars));
        assert!(!super::gt("%{tx.threshold}").unwrap().matches(b"5", &vars));
    }
}
