//! `t:utf8toUnicode`: every multi-byte UTF-8 character becomes `%uHHHH`
//! (as ModSecurity writes it), so rules written for `%u` escapes also see
//! raw UTF-8; invalid sequences are kept byte for byte.
//!
//! `SecRule ARGS "@rx %uff1c" "id:1,t:utf8toUnicode"`

use std::borrow::Cow;

/// Applies the transformation.
pub fn utf8_to_unicode(input: &[u8]) -> Cow<'_, [u8]> {
    if input.is_ascii() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() * 2);
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        let len = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 1,
        };
        if len > 1 {
            if let Some(ch) =
                input.get(i..i + len).and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| s.chars().next())
            {
                out.extend_from_slice(format!("%u{:04x}", u32::from(ch)).as_bytes());
                i += len;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn multibyte_to_percent_u() {
        assert_eq!(&*super::utf8_to_unicode("a＜é".as_bytes()), b"a%uff1c%u00e9");
        assert_eq!(&*super::utf8_to_unicode(b"\xff\xc3"), b"\xff\xc3");
    }
}
