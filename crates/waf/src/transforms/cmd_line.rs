//! `t:cmdLine`: what a shell or cmd.exe would ignore, gone: `\ " ' ^`
//! deleted; spaces before `/` and `(` deleted; `,`, `;` and whitespace runs
//! become one space; lower case.
//!
//! `SecRule ARGS "@rx \bcat /etc" "id:1,t:cmdLine"`

use std::borrow::Cow;

/// Applies the transformation.
pub fn cmd_line(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len());
    let mut space = false;
    for &b in input {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b',' | b';' => space = true,
            b'/' | b'(' => {
                space = false;
                out.push(b);
            }
            _ => {
                if space && !out.is_empty() {
                    out.push(b' ');
                }
                space = false;
                out.push(b.to_ascii_lowercase());
            }
        }
    }
    if space && !out.is_empty() {
        out.push(b' ');
    }
    super::unless_unchanged(input, out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_noise_removed() {
        assert_eq!(&*super::cmd_line(b"C^at  /etc/pa\"ss'wd;ls ,X"), b"cat/etc/passwd ls x");
        assert_eq!(&*super::cmd_line(b"ping  (x)"), b"ping(x)");
    }
}
