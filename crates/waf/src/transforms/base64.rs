//! `t:base64Decode` (standard alphabet, stops at the first byte outside
//! it, padding optional), `t:base64DecodeExt` (skips bytes outside the
//! alphabet instead, and takes the URL-safe `-` and `_` too) and
//! `t:base64Encode`.
//!
//! `SecRule REQUEST_HEADERS:Authorization "@rx ^admin:" "id:1,t:base64Decode"`

use std::borrow::Cow;

fn value(b: u8, ext: bool) -> Option<u8> {
    Some(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        b'-' if ext => 62,
        b'_' if ext => 63,
        _ => return None,
    })
}

fn decode(input: &[u8], ext: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &b in input {
        if b == b'=' {
            break;
        }
        match value(b, ext) {
            Some(v) => {
                acc = acc << 6 | u32::from(v);
                bits += 6;
                if bits >= 8 {
                    bits -= 8;
                    out.push((acc >> bits) as u8);
                }
            }
            None if ext => {}
            None => break,
        }
    }
    out
}

/// `t:base64Decode`.
pub fn base64_decode(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(decode(input, false))
}

/// `t:base64DecodeExt`.
pub fn base64_decode_ext(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(decode(input, true))
}

/// `t:base64Encode`.
pub fn base64_encode(input: &[u8]) -> Cow<'_, [u8]> {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { T[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' });
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn decode_encode() {
        assert_eq!(&*super::base64_decode(b"YWRtaW46c2VjcmV0"), b"admin:secret");
        assert_eq!(&*super::base64_decode(b"YWJj!ZGVm"), b"abc");
        assert_eq!(&*super::base64_decode_ext(b"YW Jj!ZGVm"), b"abcdef");
        assert_eq!(&*super::base64_encode(b"ab"), b"YWI=");
        assert_eq!(&*super::base64_decode(&super::base64_encode(b"\x00\xff\x10")), b"\x00\xff\x10");
    }
}
