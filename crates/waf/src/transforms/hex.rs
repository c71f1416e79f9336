//! `t:hexDecode` (pairs of hex digits to bytes; stops at the first pair
//! that is not one), `t:hexEncode`, and `t:sqlHexDecode` (`0xHHHH...`
//! literals inside the text to their bytes).
//!
//! `SecRule ARGS "@rx union" "id:1,t:sqlHexDecode"`

use std::borrow::Cow;

use super::hex_value;

/// `t:hexDecode`.
pub fn hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len() / 2);
    for pair in input.chunks_exact(2) {
        match (hex_value(pair[0]), hex_value(pair[1])) {
            (Some(h), Some(l)) => out.push(h << 4 | l),
            _ => break,
        }
    }
    Cow::Owned(out)
}

/// `t:hexEncode`.
pub fn hex_encode(input: &[u8]) -> Cow<'_, [u8]> {
    Cow::Owned(input.iter().flat_map(|b| format!("{b:02x}").into_bytes()).collect())
}

/// `t:sqlHexDecode`.
pub fn sql_hex_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.windows(2).any(|w| w[0] == b'0' && (w[1] | 0x20) == b'x') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'0' && input.get(i + 1).is_some_and(|c| (c | 0x20) == b'x') {
            let digits = input[i + 2..].iter().take_while(|c| c.is_ascii_hexdigit()).count();
            if digits >= 2 {
                for pair in input[i + 2..i + 2 + digits - digits % 2].chunks_exact(2) {
                    out.push(hex_value(pair[0]).unwrap_or(0) << 4 | hex_value(pair[1]).unwrap_or(0));
                }
                i += 2 + digits - digits % 2;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex() {
        assert_eq!(&*super::hex_decode(b"414243zz44"), b"ABC");
        assert_eq!(&*super::hex_encode(b"AB"), b"4142");
        assert_eq!(&*super::sql_hex_decode(b"select 0x756e696f6e, 0x1"), b"select union, 0x1");
    }
}
