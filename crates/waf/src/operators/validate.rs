//! Input validation operators; each matches when the input is *invalid*:
//! - `@validateByteRange 1-255` or `9,10,13,32-126`: a byte outside the
//!   ranges;
//! - `@validateUrlEncoding`: a `%` not followed by two hex digits;
//! - `@validateUtf8Encoding`: bytes that are not well-formed UTF-8
//!   (overlong forms and surrogates included, as `str::from_utf8` refuses).
//!
//! `SecRule ARGS "@validateByteRange 32-126" "id:1,block"`

use super::{Operator, Vars};

#[derive(Debug)]
struct ByteRange([bool; 256]);

impl Operator for ByteRange {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        input.iter().any(|b| !self.0[usize::from(*b)])
    }
}

/// `@validateByteRange`.
pub fn validate_byte_range(arg: &str) -> Result<Box<dyn Operator>, String> {
    let mut allowed = [false; 256];
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.trim()
                .parse::<u8>()
                .map_err(|_| format!("@validateByteRange: {part:?} is not a byte or a range of bytes"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            return Err(format!("@validateByteRange: {part:?} is an empty range"));
        }
        for b in lo..=hi {
            allowed[usize::from(b)] = true;
        }
    }
    Ok(Box::new(ByteRange(allowed)))
}

#[derive(Debug)]
struct UrlEncoding;

impl Operator for UrlEncoding {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        let mut i = 0;
        while i < input.len() {
            if input[i] == b'%' {
                let ok = input.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && input.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return true;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
        false
    }
}

/// `@validateUrlEncoding`.
pub fn validate_url_encoding(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(UrlEncoding))
}

#[derive(Debug)]
struct Utf8;

impl Operator for Utf8 {
    fn matches(&self, input: &[u8], _: Vars<'_>) -> bool {
        std::str::from_utf8(input).is_err()
    }
}

/// `@validateUtf8Encoding`.
pub fn validate_utf8_encoding(_: &str) -> Result<Box<dyn Operator>, String> {
    Ok(Box::new(Utf8))
}

#[cfg(test)]
mod tests {
    use super::super::no_vars;

    #[test]
    fn invalid_inputs_match() {
        let r = super::validate_byte_range("9,10,13,32-126").unwrap();
        assert!(!r.matches(b"hello\tworld\n", &no_vars));
        assert!(r.matches(b"a\x00b", &no_vars));
        assert!(super::validate_byte_range("1-x").is_err());
        let u = super::validate_url_encoding("").unwrap();
        assert!(!u.matches(b"a%20b", &no_vars));
        assert!(u.matches(b"a%2", &no_vars));
        assert!(u.matches(b"%zz", &no_vars));
        let v = super::validate_utf8_encoding("").unwrap();
        assert!(!v.matches("é".as_bytes(), &no_vars));
        assert!(v.matches(b"\xc0\xaf", &no_vars), "overlong");
    }
}
