//! `t:urlDecode`: `%HH` to the byte and `+` to a space. Invalid or
//! truncated `%` sequences are left as they are (ModSecurity's non-strict
//! decoding).
//!
//! `SecRule ARGS "@rx <script" "id:1,t:urlDecode"`

use std::borrow::Cow;

use super::{hex_value, unicode_to_byte};

/// Applies the transformation.
pub fn url_decode(input: &[u8]) -> Cow<'_, [u8]> {
    decode(input, false)
}

/// `%HH` and `+`, and with `uni` also `%uHHHH` (see `url_decode_uni`).
pub(super) fn decode(input: &[u8], uni: bool) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(input);
    }
    let hex = |i: usize| input.get(i).and_then(|c| hex_value(*c));
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if uni && matches!(input.get(i + 1), Some(b'u' | b'U')) => {
                if let (Some(a), Some(b), Some(c), Some(d)) = (hex(i + 2), hex(i + 3), hex(i + 4), hex(i + 5)) {
                    let code = u32::from(a) << 12 | u32::from(b) << 8 | u32::from(c) << 4 | u32::from(d);
                    out.push(unicode_to_byte(code));
                    i += 6;
                    continue;
                }
                out.push(b'%');
            }
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_and_keeps_invalid_sequences() {
        assert_eq!(&*super::url_decode(b"a%20b+c%3c%zz%4"), b"a b c<%zz%4");
        assert_eq!(&*super::url_decode(b"%00"), b"\0");
    }
}
