//! `t:htmlEntityDecode`: `&#DDD;`, `&#xHH;` (the low byte of the value) and
//! `&quot; &amp; &lt; &gt; &nbsp; &apos;`; the `;` may be missing, as
//! browsers accept. Anything else is kept.
//!
//! `SecRule ARGS "@rx <script" "id:1,t:htmlEntityDecode"`

use std::borrow::Cow;

/// Applies the transformation.
pub fn html_entity_decode(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'&') {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'&' {
            if let Some((byte, used)) = entity(&input[i + 1..]) {
                out.push(byte);
                i += 1 + used;
                continue;
            }
        }
        out.push(input[i]);
        i += 1;
    }
    Cow::Owned(out)
}

/// Decodes the entity after `&`: the byte and the bytes used (with `;`).
fn entity(s: &[u8]) -> Option<(u8, usize)> {
    let semi = |n: usize| if s.get(n) == Some(&b';') { n + 1 } else { n };
    if let Some(rest) = s.strip_prefix(b"#") {
        let (hex, digits) = match rest.first() {
            Some(b'x' | b'X') => (true, &rest[1..]),
            _ => (false, rest),
        };
        let n = digits.iter().take_while(|c| if hex { c.is_ascii_hexdigit() } else { c.is_ascii_digit() }).count();
        if n == 0 {
            return None;
        }
        // Leading zeros carry no value (`&#0000000123;` is `{`), however
        // many there are; of the rest, the first 12 digits are read.
        let text = std::str::from_utf8(&digits[..n]).ok()?.trim_start_matches('0');
        let value = if text.is_empty() {
            0
        } else {
            u64::from_str_radix(&text[..text.len().min(12)], if hex { 16 } else { 10 }).ok()?
        };
        let used = 1 + usize::from(hex) + n;
        return Some((value as u8, semi(used)));
    }
    for (name, byte) in
        [(&b"quot"[..], b'"'), (b"amp", b'&'), (b"lt", b'<'), (b"gt", b'>'), (b"nbsp", 0xa0), (b"apos", b'\'')]
    {
        if s.len() >= name.len() && s[..name.len()].eq_ignore_ascii_case(name) {
            return Some((byte, semi(name.len())));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn numeric_and_named_entities() {
        assert_eq!(&*super::html_entity_decode(b"&lt;script&gt;&#97;&#x62&quot;&bogus;&"), b"<script>ab\"&bogus;&");
        assert_eq!(&*super::html_entity_decode(b"&#x"), b"&#x");
        let padded = format!("&#x24;&#{}123;jndi", "0".repeat(47));
        assert_eq!(&*super::html_entity_decode(padded.as_bytes()), b"${jndi");
        assert_eq!(&*super::html_entity_decode(b"&#0000;"), b"\0");
    }
}
