//! `t:lowercase`: ASCII letters to lower case (other bytes unchanged, as
//! ModSecurity does: no Unicode case folding).
//!
//! `SecRule ARGS "@contains select" "id:1,t:lowercase"`

use std::borrow::Cow;

/// Applies the transformation.
pub fn lowercase(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(u8::is_ascii_uppercase) {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lowers_ascii_only() {
        assert_eq!(&*super::lowercase(b"SeLeCT \xc3\x89"), b"select \xc3\x89");
        assert!(matches!(super::lowercase(b"abc"), std::borrow::Cow::Borrowed(_)));
    }
}
