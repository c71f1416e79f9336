//! Transformations (`t:name`): one file per transformation (or family),
//! each with its tests, and this table, alphabetical, aliases written out,
//! looked up without case. A transformation takes bytes and returns
//! `Cow::Borrowed` when it changed nothing, so chains of them allocate only
//! when they must. Work per input byte is bounded: no transformation scans
//! back or loops without consuming input.

use std::borrow::Cow;

mod base64;
mod cmd_line;
mod comments;
mod css_decode;
mod escape_seq_decode;
mod hex;
mod html_entity_decode;
mod js_decode;
mod lowercase;
mod normalize_path;
mod nulls;
mod simple;
mod uppercase;
mod url_decode;
mod url_decode_uni;
mod utf8_to_unicode;
mod whitespace;

/// A transformation.
pub type Transform = for<'a> fn(&'a [u8]) -> Cow<'a, [u8]>;

/// Every transformation by name, alphabetical, aliases included.
pub const TABLE: &[(&str, Transform)] = &[
    ("base64Decode", base64::base64_decode),
    ("base64DecodeExt", base64::base64_decode_ext),
    ("base64Encode", base64::base64_encode),
    ("cmdLine", cmd_line::cmd_line),
    ("compressWhitespace", whitespace::compress_whitespace),
    ("cssDecode", css_decode::css_decode),
    ("escapeSeqDecode", escape_seq_decode::escape_seq_decode),
    ("hexDecode", hex::hex_decode),
    ("hexEncode", hex::hex_encode),
    ("htmlEntityDecode", html_entity_decode::html_entity_decode),
    ("jsDecode", js_decode::js_decode),
    ("length", simple::length),
    ("lowercase", lowercase::lowercase),
    ("none", simple::none),
    ("normalisePath", normalize_path::normalize_path),
    ("normalisePathWin", normalize_path::normalize_path_win),
    ("normalizePath", normalize_path::normalize_path),
    ("normalizePathWin", normalize_path::normalize_path_win),
    ("removeComments", comments::remove_comments),
    ("removeCommentsChar", comments::remove_comments_char),
    ("removeNulls", nulls::remove_nulls),
    ("removeWhitespace", whitespace::remove_whitespace),
    ("replaceComments", comments::replace_comments),
    ("replaceNulls", nulls::replace_nulls),
    ("sha1", simple::sha1),
    ("sqlHexDecode", hex::sql_hex_decode),
    ("trim", simple::trim),
    ("trimLeft", simple::trim_left),
    ("trimRight", simple::trim_right),
    ("uppercase", uppercase::uppercase),
    ("urlDecode", url_decode::url_decode),
    ("urlDecodeUni", url_decode_uni::url_decode_uni),
    ("utf8toUnicode", utf8_to_unicode::utf8_to_unicode),
];

/// Names the loader accepts but the engine does not implement yet; a rule
/// set using one loads, and the engine reports it (none of them is used by
/// the Core Rule Set).
pub const NOT_YET: &[&str] = &["md5", "parityEven7bit", "parityOdd7bit", "parityZero7bit", "urlEncode"];

/// The transformation called `name` (without regard to case).
pub fn lookup(name: &str) -> Option<Transform> {
    TABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, t)| *t)
}

/// The value of a hex digit.
pub(crate) fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Up to three octal digits at the start of `s` (a `\OOO` escape): the
/// byte (low 8 bits, as C) and how many digits were used.
pub(crate) fn octal(s: &[u8]) -> (u8, usize) {
    let n = s.iter().take(3).take_while(|c| (b'0'..=b'7').contains(c)).count();
    let v = s[..n].iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
    (v as u8, n)
}

/// `Borrowed` when a transformation changed nothing, so chains allocate
/// only when they must.
pub(crate) fn unless_unchanged(input: &[u8], out: Vec<u8>) -> Cow<'_, [u8]> {
    if out == input {
        Cow::Borrowed(input)
    } else {
        Cow::Owned(out)
    }
}

/// A `%uHHHH`-style code point as one byte, as ModSecurity does without a
/// Unicode map: full-width ASCII (U+FF01-U+FF5E) becomes its ASCII
/// character, anything else its low byte.
pub(crate) fn unicode_to_byte(code: u32) -> u8 {
    if (0xff01..=0xff5e).contains(&code) {
        (code - 0xfee0) as u8
    } else {
        code as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_alphabetical_and_matches_the_vocabulary() {
        let names: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
        let mut sorted = names.clone();
        sorted.sort_by_key(|n| n.to_ascii_lowercase());
        assert_eq!(names, sorted);
        for n in crate::names::TRANSFORMATIONS {
            assert!(lookup(n).is_some() || NOT_YET.contains(n), "{n} is neither implemented nor listed as a gap");
        }
    }

    /// Property test over random inputs rich in the characters decoders
    /// care about: no panic, bounded growth, and `Borrowed` means unchanged.
    #[test]
    fn every_transformation_is_total_and_bounded() {
        let alphabet = b"%uU+&#;x\\/*-<!>'\"^ \t\n\r\x00\xa0\xc3\xa9\xef\xbc\x9c0123456789abcdefABCDEF=.,";
        let mut rng = fastrand::Rng::with_seed(42);
        for (name, t) in TABLE {
            for _ in 0..3000 {
                let len = rng.usize(0..64);
                let input: Vec<u8> = (0..len)
                    .map(|_| if rng.u8(..) < 200 { alphabet[rng.usize(..alphabet.len())] } else { rng.u8(..) })
                    .collect();
                let out = t(&input);
                // hexEncode doubles, utf8toUnicode at most 6/2 per byte.
                assert!(out.len() <= input.len() * 3 + 24, "{name} grew {} -> {}", input.len(), out.len());
                if let Cow::Borrowed(b) = &out {
                    assert!(
                        input.windows(b.len().max(1)).any(|w| w == *b) || b.is_empty(),
                        "{name} borrowed something else"
                    );
                }
            }
        }
    }
}
