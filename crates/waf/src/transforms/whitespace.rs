//! `t:compressWhitespace` (runs of whitespace, including vertical tab,
//! form feed and non-breaking space 0xA0, become one space) and
//! `t:removeWhitespace` (all of them go).
//!
//! `SecRule ARGS "@rx union select" "id:1,t:compressWhitespace"`

use std::borrow::Cow;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

/// `t:compressWhitespace`.
pub fn compress_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.windows(2).any(|w| is_space(w[0]) && is_space(w[1])) && !input.iter().any(|b| is_space(*b) && *b != b' ')
    {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut in_space = false;
    for &b in input {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b);
            in_space = false;
        }
    }
    Cow::Owned(out)
}

/// `t:removeWhitespace`.
pub fn remove_whitespace(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| is_space(*b)) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.iter().copied().filter(|b| !is_space(*b)).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn compress_and_remove() {
        assert_eq!(&*super::compress_whitespace(b"a \t\n b\xa0c"), b"a b c");
        assert_eq!(&*super::remove_whitespace(b"un ion\tsel\xa0ect"), b"unionselect");
        assert!(matches!(super::compress_whitespace(b"a b"), std::borrow::Cow::Borrowed(_)));
    }
}
