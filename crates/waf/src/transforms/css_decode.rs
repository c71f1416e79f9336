//! `t:cssDecode`: CSS escapes: `\` and 1-6 hex digits (the low byte; full
//! width ASCII to ASCII), one optional whitespace after them eaten; `\`
//! before a newline removed; `\` before anything else dropped.
//!
//! `SecRule ARGS "@rx expression" "id:1,t:cssDecode"`

use std::borrow::Cow;

use super::{hex_value, unicode_to_byte};

/// Applies the transformation.
pub fn css_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'\\') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let Some(&next) = input.get(i + 1) else {
            i += 1;
            continue;
        };
        let digits = input[i + 1..].iter().take(6).take_while(|c| c.is_ascii_hexdigit()).count();
        if digits > 0 {
            let code = input[i + 1..i + 1 + digits]
                .iter()
                .fold(0u32, |acc, c| acc << 4 | u32::from(hex_value(*c).unwrap_or(0)));
            out.push(unicode_to_byte(code));
            i += 1 + digits;
            if input.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
                i += 1;
            }
        } else if next == b'\n' {
            i += 2;
        } else {
            out.push(next);
            i += 2;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn css_escapes() {
        assert_eq!(&*super::css_decode(b"\\65 xpression\\(\\\nx"), b"expression(x");
        assert_eq!(&*super::css_decode(b"\\ff1c"), b"<");
        assert_eq!(&*super::css_decode(b"a\\"), b"a");
    }
}
