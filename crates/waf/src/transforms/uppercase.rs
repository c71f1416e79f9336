//! `t:uppercase`: ASCII letters to upper case.
//!
//! `SecRule REQUEST_METHOD "@streq GET" "id:1,t:uppercase"`

use std::borrow::Cow;

/// Applies the transformation.
pub fn uppercase(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(u8::is_ascii_lowercase) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn uppers_ascii_only() {
        assert_eq!(&*super::uppercase(b"get"), b"GET");
    }
}
