//! `t:normalizePath` (alias `normalisePath`): `//` collapsed, `./`
//! removed, `dir/..` resolved (never above the start; a leading `..` is
//! kept, as ModSecurity does); `t:normalizePathWin` first turns `\` into
//! `/`.
//!
//! `SecRule REQUEST_FILENAME "@contains /etc/passwd" "id:1,t:normalizePath"`

use std::borrow::Cow;

/// `t:normalizePath`.
pub fn normalize_path(input: &[u8]) -> Cow<'_, [u8]> {
    let suspicious =
        input.windows(2).any(|w| w == b"//" || w == b"/." || w == b"./") || input == b"." || input == b"..";
    if !suspicious {
        return Cow::Borrowed(input);
    }
    let absolute = input.first() == Some(&b'/');
    let trailing = input.last() == Some(&b'/') || input.ends_with(b"/.") || input.ends_with(b"/..");
    let mut parts: Vec<&[u8]> = Vec::new();
    for seg in input.split(|b| *b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !absolute {
                    parts.push(seg);
                }
            }
            s => parts.push(s),
        }
    }
    let mut out = Vec::with_capacity(input.len());
    if absolute {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if trailing && !parts.is_empty() {
        out.push(b'/');
    }
    Cow::Owned(out)
}

/// `t:normalizePathWin`.
pub fn normalize_path_win(input: &[u8]) -> Cow<'_, [u8]> {
    if !input.contains(&b'\\') {
        return normalize_path(input);
    }
    let slashed: Vec<u8> = input.iter().map(|b| if *b == b'\\' { b'/' } else { *b }).collect();
    Cow::Owned(normalize_path(&slashed).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths() {
        assert_eq!(&*super::normalize_path(b"/a//b/./c/../../etc/passwd"), b"/a/etc/passwd");
        assert_eq!(&*super::normalize_path(b"/../../etc"), b"/etc");
        assert_eq!(&*super::normalize_path(b"../x/./y/"), b"../x/y/");
        assert_eq!(&*super::normalize_path_win(b"c:\\windows\\..\\win.ini"), b"c:/win.ini");
    }
}
