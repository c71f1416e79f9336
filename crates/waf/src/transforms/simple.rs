//! The small ones: `t:none` (clears the transformations before it),
//! `t:length` (the length in decimal), `t:trim`, `t:trimLeft`,
//! `t:trimRight` (ASCII whitespace) and `t:sha1` (the raw digest; usually
//! followed by `t:hexEncode`).
//!
//! `SecRule ARGS "@gt 400" "id:1,t:length"`

use std::borrow::Cow;

fn is_space(b: &u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// `t:none`: changes nothing (the pipeline resets at it).
pub fn none(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Borrowed(input)
}

/// `t:length`.
pub fn length(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(input.len().to_string().into_bytes())
}

/// `t:trimLeft`.
pub fn trim_left(input: &[u8]) -> Cow<'_, [u8]> {
    let start = input.iter().position(|b| !is_space(b)).unwrap_or(input.len());
    Cow::Borrowed(&input[start..])
}

/// `t:trimRight`.
pub fn trim_right(input: &[u8]) -> Cow<'_, [u8]> {
    let end = input.iter().rposition(|b| !is_space(b)).map_or(0, |p| p + 1);
    Cow::Borrowed(&input[..end])
}

/// `t:trim`.
pub fn trim(input: &[u8]) -> Cow<'_, [u8]> {
    let start = input.iter().position(|b| !is_space(b)).unwrap_or(input.len());
    let end = input.iter().rposition(|b| !is_space(b)).map_or(start, |p| p + 1);
    Cow::Borrowed(&input[start..end])
}

/// `t:sha1`.
pub fn sha1(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, input).as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    #[test]
    fn small_ones() {
        assert_eq!(&*super::length(b"abcd"), b"4");
        assert_eq!(&*super::trim(b" \t a b \n"), b"a b");
        assert_eq!(&*super::trim_left(b"  a "), b"a ");
        assert_eq!(&*super::trim_right(b"  a "), b"  a");
        assert_eq!(super::sha1(b"abc").len(), 20);
        assert_eq!(&*super::none(b"x"), b"x");
    }
}
