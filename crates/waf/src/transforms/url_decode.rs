//! `t:urlDecode`: `%HH` to the byte and `+` to a space. Invalid or
//! truncated `%` sequences are left as they are (ModSecurity's non-strict
//! decoding).
//!
//! `SecRule ARGS "@rx <script" "id:1,t:urlDecode"`

use std::borrow::Cow;

use super::hex_value;

/// Applies the transformation.
pub fn url_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                match (input.get(i + 1).and_then(|c| hex_value(*c)), input.get(i + 2).and_then(|c| hex_value(*c))) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
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
