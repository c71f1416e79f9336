//! `t:escapeSeqDecode`: ANSI C escapes: `\a \b \f \n \r \t \v \\ \? \' \"`,
//! `\xHH` and octal `\OOO`; an unknown escape keeps both characters.
//!
//! `SecRule ARGS "@rx /etc/passwd" "id:1,t:escapeSeqDecode"`

use std::borrow::Cow;

use super::{hex_value, octal};

/// Applies the transformation.
pub fn escape_seq_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'\\') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let c = input[i + 1];
        let simple = match c {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' | b'?' | b'\'' | b'"' => Some(c),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            i += 2;
        } else if c == b'x' {
            match (input.get(i + 2).and_then(|x| hex_value(*x)), input.get(i + 3).and_then(|x| hex_value(*x))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 4;
                }
                _ => {
                    out.extend_from_slice(b"\\x");
                    i += 2;
                }
            }
        } else if (b'0'..=b'7').contains(&c) {
            let (byte, n) = octal(&input[i + 1..]);
            out.push(byte);
            i += 1 + n;
        } else {
            out.extend_from_slice(&[b'\\', c]);
            i += 2;
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn c_escapes() {
        assert_eq!(&*super::escape_seq_decode(br"\x2fetc\057passwd\n\q"), b"/etc/passwd\n\\q");
    }
}
