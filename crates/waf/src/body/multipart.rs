//! The multipart/form-data body processor: fields become arguments, file
//! parts become `FILES` (name to file name), every part's header lines are
//! kept in `MULTIPART_PART_HEADERS`, and irregularities that evasion relies
//! on are flagged (`MULTIPART_STRICT_ERROR` and its parts): data before the
//! first boundary or after the last, a missing final boundary, bare LF line
//! ends, unparseable part headers.
//!
//! `SecRule FILES "@rx \.php$" "id:1,deny"`

/// One part.
#[derive(Debug, Default, PartialEq)]
pub struct Part {
    /// `name` of its Content-Disposition.
    pub name: String,
    /// `filename`, for a file part.
    pub filename: Option<String>,
    /// Its header lines as sent.
    pub headers: Vec<Vec<u8>>,
    /// Its content.
    pub body: Vec<u8>,
}

/// A parsed body and what was irregular about it.
#[derive(Debug, Default, PartialEq)]
pub struct Multipart {
    /// The parts, in order.
    pub parts: Vec<Part>,
    /// Data before the first boundary.
    pub data_before: bool,
    /// Data after the final boundary.
    pub data_after: bool,
    /// No final boundary (`--boundary--`).
    pub unmatched_boundary: bool,
    /// Lines ending in a bare LF.
    pub lf_line: bool,
    /// A part header that is not `Name: value`, or a part without a name.
    pub invalid_part: bool,
}

impl Multipart {
    /// Any irregularity at all.
    pub fn strict_error(&self) -> bool {
        self.data_before || self.data_after || self.unmatched_boundary || self.lf_line || self.invalid_part
    }
}

/// The boundary of a `multipart/form-data; boundary=...` content type, or
/// why there is none that every parser would agree on: none, empty, longer
/// than 200 bytes (RFC 2046 allows 70), or given twice (parsers differ on
/// which one they take, so the WAF could read other parts than the app).
pub fn boundary(content_type: &str) -> Result<String, String> {
    let (_, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    let mut found: Option<String> = None;
    let mut rest = params;
    while !rest.is_empty() {
        let (piece, after) = split_param(rest);
        rest = after;
        let Some((k, v)) = piece.split_once('=') else { continue };
        if !k.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        if found.is_some() {
            return Err("multipart: the content type names its boundary twice".into());
        }
        let v = v.trim();
        found = Some(v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v).to_string());
    }
    match found {
        None => Err("multipart: no boundary in the content type".into()),
        Some(b) if b.is_empty() => Err("multipart: an empty boundary".into()),
        Some(b) if b.len() > 200 => Err("multipart: a boundary longer than 200 bytes".into()),
        Some(b) => Ok(b),
    }
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Parses a body with `boundary`.
pub fn parse(body: &[u8], boundary: &str) -> Result<Multipart, String> {
    let delim = format!("--{boundary}").into_bytes();
    let mut out = Multipart::default();
    let Some(first) = find(body, &delim, 0) else {
        return Err("multipart: no boundary in the body".into());
    };
    out.data_before = body[..first].iter().any(|b| !b.is_ascii_whitespace());
    let mut pos = first + delim.len();
    loop {
        if body[pos..].starts_with(b"--") {
            out.data_after = body[pos + 2..].iter().any(|b| !b.is_ascii_whitespace());
            break;
        }
        // Line end after the boundary.
        pos += if body[pos..].starts_with(b"\r\n") {
            2
        } else if body[pos..].starts_with(b"\n") {
            out.lf_line = true;
            1
        } else {
            out.invalid_part = true;
            0
        };
        // Headers up to the empty line.
        let mut part = Part::default();
        let mut seen_disposition = false;
        loop {
            let Some(nl) = find(body, b"\n", pos) else {
                out.unmatched_boundary = true;
                return Ok(out);
            };
            let mut line = &body[pos..nl];
            if let Some(l) = line.strip_suffix(b"\r") {
                line = l;
            } else {
                out.lf_line = true;
            }
            pos = nl + 1;
            if line.is_empty() {
                break;
            }
            part.headers.push(line.to_vec());
            let Some(colon) = line.iter().position(|b| *b == b':') else {
                out.invalid_part = true;
                continue;
            };
            let (name, value) = (&line[..colon], String::from_utf8_lossy(&line[colon + 1..]).into_owned());
            if name.eq_ignore_ascii_case(b"content-disposition") {
                // A second Content-Disposition, or a parameter given
                // twice, is read differently by different parsers.
                if seen_disposition
                    || count_params(&value, "name") > 1
                    || count_params(&value, "filename") > 1
                    || !well_formed(&value)
                {
                    out.invalid_part = true;
                }
                seen_disposition = true;
                part.name = param(&value, "name").unwrap_or_default();
                part.filename = param(&value, "filename");
            }
        }
        if part.name.is_empty() {
            out.invalid_part = true;
        }
        // Content up to the next boundary (its line end belongs to it).
        let Some(next) = find(body, &delim, pos) else {
            part.body = body[pos..].to_vec();
            out.parts.push(part);
            out.unmatched_boundary = true;
            return Ok(out);
        };
        // A delimiter is one only at the start of a line (RFC 2046):
        // werkzeug reads `value--boundary` as part of the value.
        if body[next - 1] != b'\n' {
            out.invalid_part = true;
        }
        let mut end = next;
        if body[..end].ends_with(b"\r\n") {
            end -= 2;
        } else if body[..end].ends_with(b"\n") {
            end -= 1;
            out.lf_line = true;
        }
        part.body = body[pos..end.max(pos)].to_vec();
        out.parts.push(part);
        pos = next + delim.len();
        if pos >= body.len() {
            out.unmatched_boundary = true;
            break;
        }
    }
    Ok(out)
}

/// A `key="value"` (or unquoted) parameter of a header value. A quoted
/// value runs to its closing quote (`;` inside is data); `\"` is a quote.
fn param(value: &str, key: &str) -> Option<String> {
    let mut rest = value;
    while !rest.is_empty() {
        let (piece, after) = split_param(rest);
        rest = after;
        let Some((k, v)) = piece.split_once('=') else { continue };
        if k.trim().eq_ignore_ascii_case(key) {
            let v = v.trim();
            let v = v.strip_prefix('"').map(|x| x.strip_suffix('"').unwrap_or(x)).unwrap_or(v);
            // As werkzeug and the HTML standard: `\\`, `\"` and `%22`.
            return Some(v.replace("\\\\", "\\").replace("\\\"", "\"").replace("%22", "\""));
        }
    }
    None
}

/// Whether every parameter after the disposition type is `key=token` or
/// `key="quoted string"` and nothing more. Parsers read anything else
/// differently: werkzeug ends a quoted value at its first unescaped quote
/// (`filename="a.php"x.jpg"` is `a.php`), ends a token at the first
/// character that is not a token's (`filename=a.php"x`; tokens are
/// ASCII, so `filename=é.php` makes no file), drops a key with
/// spaces before `=` or an empty value (`filename=` makes no file), and
/// reads RFC 2231's `filename*=UTF-8''...` and `name*0=` continuations.
fn well_formed(value: &str) -> bool {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let (_, mut rest) = split_param(value);
    while !rest.is_empty() {
        let (piece, after) = split_param(rest);
        rest = after;
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let Some((k, v)) = piece.split_once('=') else { return false };
        if k.is_empty() || k.contains('*') || !k.chars().all(token) {
            return false;
        }
        match v.strip_prefix('"') {
            Some(quoted) => {
                // The closing quote must be the last character.
                let mut escaped = false;
                let mut end = None;
                for (i, c) in quoted.char_indices() {
                    match c {
                        _ if escaped => escaped = false,
                        '\\' => escaped = true,
                        '"' => {
                            end = Some(i);
                            break;
                        }
                        _ => {}
                    }
                }
                if end.map(|e| e + 1) != Some(quoted.len()) {
                    return false;
                }
            }
            None if v.is_empty() || !v.chars().all(token) => return false,
            None => {}
        }
    }
    true
}

/// How many times `key` is given in a header value.
fn count_params(value: &str, key: &str) -> usize {
    let mut n = 0;
    let mut rest = value;
    while !rest.is_empty() {
        let (piece, after) = split_param(rest);
        rest = after;
        if piece.split_once('=').is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(key)) {
            n += 1;
        }
    }
    n
}

/// The first `;`-separated piece of `s` (quotes respected) and the rest.
fn split_param(s: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => return (&s[..i], &s[i + 1..]),
            _ => {}
        }
    }
    (s, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_parameters_keep_their_semicolons() {
        let h = r#"form-data; name="&auml;&euml;zzz"; filename="a;b\"c.txt""#;
        assert_eq!(param(h, "name").as_deref(), Some("&auml;&euml;zzz"));
        assert_eq!(param(h, "filename").as_deref(), Some("a;b\"c.txt"));
        assert_eq!(param("form-data; name=plain", "name").as_deref(), Some("plain"));
    }

    #[test]
    fn fields_files_and_flags() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x.php\"\r\nContent-Type: text/plain\r\n\r\n<?php ?>\r\n--XyZ--\r\n";
        let m = parse(body, "XyZ").unwrap();
        assert_eq!(m.parts.len(), 2);
        assert_eq!(m.parts[0].body, b"1");
        assert_eq!(m.parts[1].filename.as_deref(), Some("x.php"));
        assert_eq!(m.parts[1].headers.len(), 2);
        assert!(!m.strict_error());
        let sloppy = parse(b"junk\n--B\nContent-Disposition: form-data; name=a\n\nv\n--B", "B").unwrap();
        assert!(sloppy.data_before && sloppy.lf_line && sloppy.unmatched_boundary);
        assert_eq!(boundary("multipart/form-data; boundary=\"abc\"; x=1").as_deref(), Ok("abc"));
        assert_eq!(boundary("multipart/form-data; BOUNDARY=AbC").as_deref(), Ok("AbC"));
        assert!(parse(b"no boundary here", "B").is_err());
        for cut in 0..body.len() {
            let _ = parse(&body[..cut], "XyZ");
        }
    }

    /// Envelopes that parsers read differently are errors, so the WAF
    /// never inspects other parts than the application reads.
    #[test]
    fn ambiguous_envelopes_are_errors() {
        assert!(boundary("multipart/form-data; boundary=AAA; boundary=XyZ").is_err());
        assert!(boundary("multipart/form-data; boundary=").is_err());
        assert!(boundary(&format!("multipart/form-data; boundary={}", "a".repeat(201))).is_err());
        assert!(boundary("multipart/form-data").is_err());
        // `boundary=` inside another parameter's quoted value is not one.
        assert_eq!(boundary("multipart/form-data; x=\"boundary=no\"; boundary=yes").as_deref(), Ok("yes"));
        let two = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"b\"\r\n\r\nv\r\n--B--\r\n";
        assert!(parse(two, "B").unwrap().strict_error());
        let twice = b"--B\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nv\r\n--B--\r\n";
        assert!(parse(twice, "B").unwrap().strict_error());
        // Parameters werkzeug reads otherwise, and a delimiter inside a line.
        for cd in [
            r#"form-data; name="a"; filename="x.php"y.jpg""#,
            r#"form-data; name="a"; filename=x.php"y"#,
            r#"form-data; name="a"; filename="#,
            r#"form-data; name = "a""#,
            r#"form-data; name="a"; filename*=UTF-8''x.php"#,
            r#"form-data; name="a"; filename=é.php"#,
        ] {
            let body = format!("--B\r\nContent-Disposition: {cd}\r\n\r\nv\r\n--B--\r\n");
            assert!(parse(body.as_bytes(), "B").unwrap().strict_error(), "{cd}");
        }
        let inline = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv--B\r\nX: y\r\n\r\n\r\n--B--\r\n";
        assert!(parse(inline, "B").unwrap().strict_error());
        let fine = b"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--B--\r\n";
        assert!(!parse(fine, "B").unwrap().strict_error());
    }
}
