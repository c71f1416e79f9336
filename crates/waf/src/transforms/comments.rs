//! Comments attackers hide keywords behind:
//! - `t:removeComments`: `/* ... */` and `<!-- ... -->` removed (an
//!   unterminated one runs to the end), `--` and `#` remove the rest of
//!   the line;
//! - `t:replaceComments`: `/* ... */` becomes one space (unterminated: to
//!   the end);
//! - `t:removeCommentsChar`: the markers `/*`, `*/`, `<!--`, `-->`, `--`
//!   and `#` removed, the text between kept.
//!
//! `SecRule ARGS "@rx union select" "id:1,t:replaceComments"`

use std::borrow::Cow;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `t:removeComments`.
pub fn remove_comments(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.iter().any(|b| matches!(b, b'/' | b'<' | b'-' | b'#')) {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"/*") {
            i = find(&rest[2..], b"*/").map_or(input.len(), |p| i + 2 + p + 2);
        } else if rest.starts_with(b"<!--") {
            i = find(&rest[4..], b"-->").map_or(input.len(), |p| i + 4 + p + 3);
        } else if rest.starts_with(b"--") || rest[0] == b'#' {
            i = rest.iter().position(|b| *b == b'\n').map_or(input.len(), |p| i + p);
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    super::unless_unchanged(input, out)
}

/// `t:replaceComments`.
pub fn replace_comments(input: &[u8]) -> Cow<'_, [u8]> {
    if find(input, b"/*").is_none() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(b"/*") {
            out.push(b' ');
            i = find(&input[i + 2..], b"*/").map_or(input.len(), |p| i + 2 + p + 2);
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    Cow::Owned(out)
}

/// `t:removeCommentsChar`.
pub fn remove_comments_char(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        let skip =
            [&b"<!--"[..], b"-->", b"/*", b"*/", b"--", b"#"].iter().find(|m| rest.starts_with(m)).map(|m| m.len());
        match skip {
            Some(n) => i += n,
            None => {
                out.push(rest[0]);
                i += 1;
            }
        }
    }
    super::unless_unchanged(input, out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn comments_of_three_kinds() {
        assert_eq!(&*super::remove_comments(b"un/**/ion sel<!-- x -->ect -- rest\nnext # x"), b"union select \nnext ");
        assert_eq!(&*super::replace_comments(b"union/**/select/* open"), b"union select ");
        assert_eq!(&*super::remove_comments_char(b"un/*x*/ion--#"), b"unxion");
    }
}
