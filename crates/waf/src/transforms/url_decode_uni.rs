//! `t:urlDecodeUni`: like `urlDecode`, and `%uHHHH` too. Without a Unicode
//! map (`SecUnicodeMapFile`), ModSecurity keeps the low byte of the code
//! point, except full-width ASCII (U+FF01-U+FF5E), which becomes its ASCII
//! letter: `%uff1c` is `<`.
//!
//! `SecRule ARGS "@rx <script" "id:1,t:urlDecodeUni"`

use std::borrow::Cow;

/// Applies the transformation.
pub fn url_decode_uni(input: &[u8]) -> Cow<'_, [u8]> {
    super::url_decode::decode(input, true)
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
