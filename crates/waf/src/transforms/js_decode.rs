//! `t:jsDecode`: JavaScript escapes: `\xHH`, `\uHHHH` (low byte, full-width
//! ASCII to ASCII, as `urlDecodeUni`), octal `\OOO`, `\a \b \f \n \r \t \v`,
//! and `\c` for any other character `c`.
//!
//! `SecRule ARGS "@rx alert\(" "id:1,t:jsDecode"`

use std::borrow::Cow;

use super::{hex_value, octal, unicode_to_byte};

/// Applies the transformation.
pub fn js_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'\\') {
        return Cow::Borrowed(input);
    }
    let hex = |i: usize| input.get(i).and_then(|c| hex_value(*c));
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let c = input[i + 1];
        match c {
            b'u' => {
                if let (Some(a), Some(b), Some(c2), Some(d)) = (hex(i + 2), hex(i + 3), hex(i + 4), hex(i + 5)) {
                    out.push(unicode_to_byte(
                        u32::from(a) << 12 | u32::from(b) << 8 | u32::from(c2) << 4 | u32::from(d),
                    ));
                    i += 6;
                    continue;
                }
                out.push(b'u');
            }
            b'x' => {
                if let (Some(h), Some(l)) = (hex(i + 2), hex(i + 3)) {
                    out.push(h << 4 | l);
                    i += 4;
                    continue;
                }
                out.push(b'x');
            }
            b'0'..=b'7' => {
                let (byte, n) = octal(&input[i + 1..]);
                out.push(byte);
                i += 1 + n;
                continue;
            }
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            other => out.push(other),
        }
        i += 2;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn javascript_escapes() {
        assert_eq!(&*super::js_decode(br"\x61\u0062\143\n\'\q\"), b"abc\n'q\\");
        assert_eq!(&*super::js_decode(br"\uff1c"), b"<");
        assert_eq!(&*super::js_decode(br"\xZ"), b"xZ");
    }
}
