//! `t:removeNulls` (NUL bytes go) and `t:replaceNulls` (they become
//! spaces).
//!
//! `SecRule ARGS "@rx select" "id:1,t:removeNulls"`

use std::borrow::Cow;

/// `t:removeNulls`.
pub fn remove_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&0) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.iter().copied().filter(|b| *b != 0).collect())
}

/// `t:replaceNulls`.
pub fn replace_nulls(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&0) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.iter().map(|b| if *b == 0 { b' ' } else { *b }).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn nulls() {
        assert_eq!(&*super::remove_nulls(b"a\0b"), b"ab");
        assert_eq!(&*super::replace_nulls(b"a\0b"), b"a b");
    }
}
