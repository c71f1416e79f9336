//! `t:urlDecodeUni`: like `urlDecode`, and `%uHHHH` too. Without a Unicode
//! map (`SecUnicodeMapFile`), ModSecurity keeps the low byte of the code
//! point, except full-width ASCII (U+FF01-U+FF5E), which becomes its ASCII
//! letter: `%uff1c` is `<`.
//!
//! `SecRule ARGS "@rx <script" "id:1,t:urlDecodeUni"`

use std::borrow::Cow;

use super::{hex_value, unicode_to_byte};

/// Applies the transformation.
pub fn url_decode_uni(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(input);
    }
    let hex = |i: usize| input.get(i).and_then(|c| hex_value(*c));
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' if matches!(input.get(i + 1), Some(b'u' | b'U')) => {
                match (hex(i + 2), hex(i + 3), hex(i + 4), hex(i + 5)) {
                    (Some(a), Some(b), Some(c), Some(d)) => {
                        let code = u32::from(a) << 12 | u32::from(b) << 8 | u32::from(c) << 4 | u32::from(d);
                        out.push(unicode_to_byte(code));
                        i += 6;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
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
    fn decodes_unicode_escapes_like_modsecurity() {
        assert_eq!(&*super::url_decode_uni(b"%uff1cscript%u003e%20x+y"), b"<script> x y");
        assert_eq!(&*super::url_decode_uni(b"%u12"), b"%u12");
        assert_eq!(&*super::url_decode_uni(b"%u0141"), b"\x41");
    }
}
