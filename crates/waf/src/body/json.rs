//! The JSON body processor: every scalar becomes an argument named by its
//! path (`json.user.name`, array items by index: `json.tags.0`), values as
//! text (`true`, `12`, strings without quotes).
//!
//! `SecRule ARGS:json.user.name "@rx <script" "id:1,deny"`
//!
//! What the application parses, the rules must see. So this reader is as
//! lenient as the parsers applications use, never stricter: every member
//! of an object is an argument, duplicates included (parsers keep the last
//! or the first; both are inspected); lone surrogate escapes (`"\ud800"`,
//! which Python and JavaScript accept) become U+FFFD; `NaN`, `Infinity`
//! and numbers of any size are kept as written; trailing commas and
//! comments (JSON5, Jackson's options) are skipped; UTF-16 and UTF-32
//! bodies (which Python's `json.loads` detects) are read in their
//! encoding. What none of them would parse is an error, which the gateway
//! refuses by default on blocking routes.
//!
//! Work is bounded: nesting depth, the number of arguments (the caller's
//! limit) and the bytes of argument names.

/// Deeper than this is an error (Python's parser stops near 1,000).
const MAX_DEPTH: usize = 1024;

/// At most this many bytes of argument names (paths) in all.
const MAX_NAME_BYTES: usize = 1 << 20;

/// The arguments of a JSON body, or why it is not JSON. At most
/// `max_args` arguments: more is an error.
pub fn parse(body: &[u8], max_args: usize) -> Result<Vec<(String, Vec<u8>)>, String> {
    let text = decode(body);
    let mut r = Reader { s: text.as_bytes(), at: 0, out: Vec::new(), path: String::from("json"), max_args, names: 0 };
    r.document().map_err(|e| format!("JSON parsing error: {e}"))?;
    Ok(r.out)
}

/// The body as UTF-8: a byte order mark or the pattern of zero bytes in
/// the first four (RFC 4627 section 3) tells UTF-16 and UTF-32 apart.
fn decode(b: &[u8]) -> std::borrow::Cow<'_, str> {
    let utf16 = |b: &[u8], le: bool| {
        let units =
            b.chunks_exact(2)
                .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) });
        std::borrow::Cow::Owned(char::decode_utf16(units).map(|c| c.unwrap_or('\u{fffd}')).collect())
    };
    let utf32 = |b: &[u8], le: bool| {
        let chars = b.chunks_exact(4).map(|c| {
            let n = if le {
                u32::from_le_bytes([c[0], c[1], c[2], c[3]])
            } else {
                u32::from_be_bytes([c[0], c[1], c[2], c[3]])
            };
            char::from_u32(n).unwrap_or('\u{fffd}')
        });
        std::borrow::Cow::Owned(chars.collect())
    };
    match b {
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest),
        [0, 0, 0xFE, 0xFF, rest @ ..] => utf32(rest, false),
        [0xFF, 0xFE, 0, 0, rest @ ..] => utf32(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0, 0, 0, x, ..] if *x != 0 => utf32(b, false),
        [x, 0, 0, 0, ..] if *x != 0 => utf32(b, true),
        [0, x, ..] if *x != 0 => utf16(b, false),
        [x, 0, ..] if *x != 0 => utf16(b, true),
        _ => String::from_utf8_lossy(b),
    }
}

/// Where a container's members go once read.
enum Frame {
    /// An object; the path's length before this member's key.
    Object { base: usize },
    /// An array and the index of its next item.
    Array { base: usize, next: usize },
}

struct Reader<'a> {
    s: &'a [u8],
    at: usize,
    out: Vec<(String, Vec<u8>)>,
    /// The path of the value being read.
    path: String,
    max_args: usize,
    names: usize,
}

impl Reader<'_> {
    /// One value, and nothing but blanks after it. Containers are kept on
    /// an explicit stack: deep nesting costs memory, never the call stack.
    fn document(&mut self) -> Result<(), String> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // A value at the current path.
            self.blank()?;
            match self.peek() {
                Some(b'{') => {
                    self.at += 1;
                    stack.push(Frame::Object { base: self.path.len() });
                    if stack.len() > MAX_DEPTH {
                        return Err(format!("nested deeper than {MAX_DEPTH}"));
                    }
                    if self.open_member(&mut stack)? {
                        continue;
                    }
                    self.empty_container(&stack)?;
                }
                Some(b'[') => {
                    self.at += 1;
                    stack.push(Frame::Array { base: self.path.len(), next: 0 });
                    if stack.len() > MAX_DEPTH {
                        return Err(format!("nested deeper than {MAX_DEPTH}"));
                    }
                    self.blank()?;
                    if self.peek() == Some(b']') {
                        self.at += 1;
                        stack.pop();
                        self.empty_container(&stack)?;
                    } else {
                        self.open_item(&mut stack);
                        continue;
                    }
                }
                _ => {
                    let v = self.scalar()?;
                    self.emit(v)?;
                }
            }
            // After a value: the next member or item, or the end of
            // containers.
            loop {
                let Some(top) = stack.last() else {
                    self.blank()?;
                    return match self.peek() {
                        None => Ok(()),
                        Some(c) => Err(format!("unexpected {:?} after the value at byte {}", c as char, self.at)),
                    };
                };
                let (base, close) = match top {
                    Frame::Object { base } => (*base, b'}'),
                    Frame::Array { base, .. } => (*base, b']'),
                };
                self.path.truncate(base);
                self.blank()?;
                match self.peek() {
                    Some(b',') => {
                        self.at += 1;
                        self.blank()?;
                        // A trailing comma before the end.
                        if self.peek() == Some(close) {
                            self.at += 1;
                            stack.pop();
                            continue;
                        }
                        let more = match stack.last() {
                            Some(Frame::Object { .. }) => self.open_member(&mut stack)?,
                            _ => {
                                self.open_item(&mut stack);
                                true
                            }
                        };
                        if more {
                            break;
                        }
                    }
                    Some(c) if c == close => {
                        self.at += 1;
                        stack.pop();
                    }
                    Some(c) => return Err(format!("unexpected {:?} at byte {}", c as char, self.at)),
                    None => return Err("unexpected end of the body".into()),
                }
            }
        }
    }

    /// Reads `"key":` of an object's member and extends the path; `false`
    /// when the object ends instead (`{}`).
    fn open_member(&mut self, stack: &mut Vec<Frame>) -> Result<bool, String> {
        self.blank()?;
        match self.peek() {
            Some(b'}') => {
                self.at += 1;
                stack.pop();
                Ok(false)
            }
            Some(b'"' | b'\'') => {
                let key = self.string()?;
                self.blank()?;
                if self.peek() != Some(b':') {
                    return Err(format!("expected ':' at byte {}", self.at));
                }
                self.at += 1;
                self.path.push('.');
                self.path.push_str(&String::from_utf8_lossy(&key));
                Ok(true)
            }
            Some(c) => Err(format!("expected a member name at byte {}, found {:?}", self.at, c as char)),
            None => Err("unexpected end of the body".into()),
        }
    }

    /// Extends the path with the index of the array's next item.
    fn open_item(&mut self, stack: &mut [Frame]) {
        if let Some(Frame::Array { next, .. }) = stack.last_mut() {
            self.path.push('.');
            self.path.push_str(&next.to_string());
            *next += 1;
        }
    }

    /// An empty `{}` or `[]` inside another container is an argument
    /// with an empty value: its member name is data the application
    /// reads (`{"<attack>":{}}`), so the rules must see it in the path.
    fn empty_container(&mut self, stack: &[Frame]) -> Result<(), String> {
        if stack.is_empty() {
            return Ok(());
        }
        self.emit(Vec::new())
    }

    fn emit(&mut self, value: Vec<u8>) -> Result<(), String> {
        if self.out.len() >= self.max_args {
            return Err(format!("more than {} arguments", self.max_args));
        }
        self.names += self.path.len();
        if self.names > MAX_NAME_BYTES {
            return Err(format!("argument names longer than {MAX_NAME_BYTES} bytes in all"));
        }
        self.out.push((self.path.clone(), value));
        Ok(())
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    /// Skips white space and comments (`// ...`, `/* ... */`).
    fn blank(&mut self) -> Result<(), String> {
        loop {
            while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
                self.at += 1;
            }
            if self.s[self.at..].starts_with(b"//") {
                while self.peek().is_some_and(|c| c != b'\n') {
                    self.at += 1;
                }
            } else if self.s[self.at..].starts_with(b"/*") {
                let end = self.s[self.at + 2..].windows(2).position(|w| w == b"*/").ok_or("unterminated comment")?;
                self.at += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    /// A string, number, literal; its text as the rules see it.
    fn scalar(&mut self) -> Result<Vec<u8>, String> {
        match self.peek() {
            Some(b'"' | b'\'') => self.string(),
            Some(c) if c == b'-' || c == b'+' || c == b'.' || c.is_ascii_alphanumeric() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.')) {
                    self.at += 1;
                }
                let word = &self.s[start..self.at];
                let plain = word.strip_prefix(b"-").or_else(|| word.strip_prefix(b"+")).unwrap_or(word);
                let number = plain.first().is_some_and(|c| c.is_ascii_digit() || *c == b'.')
                    && plain
                        .iter()
                        .all(|c| c.is_ascii_hexdigit() || matches!(c, b'.' | b'e' | b'E' | b'-' | b'+' | b'x' | b'X'));
                match plain {
                    b"true" | b"false" | b"null" if plain.len() == word.len() => {
                        Ok(if plain == b"null" { Vec::new() } else { word.to_vec() })
                    }
                    b"NaN" | b"Infinity" => Ok(word.to_vec()),
                    _ if number => Ok(word.to_vec()),
                    _ => Err(format!("unexpected {:?} at byte {start}", String::from_utf8_lossy(word))),
                }
            }
            Some(c) => Err(format!("unexpected {:?} at byte {}", c as char, self.at)),
            None => Err("unexpected end of the body".into()),
        }
    }

    /// A quoted string (double quotes, or single as JSON5 allows), escapes
    /// decoded.
    fn string(&mut self) -> Result<Vec<u8>, String> {
        let quote = self.s[self.at];
        self.at += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else { return Err("unterminated string".into()) };
            self.at += 1;
            match c {
                _ if c == quote => return Ok(out),
                b'\\' => {
                    let Some(e) = self.peek() else { return Err("unterminated string".into()) };
                    self.at += 1;
                    match e {
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            out.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes());
                        }
                        // `\"`, `\\`, `\/`, and JSON5's `\'` and others: the
                        // character itself.
                        other => out.push(other),
                    }
                }
                _ => out.push(c),
            }
        }
    }

    /// The character of `\uXXXX` (after the `u`), a surrogate pair when one
    /// follows; a lone surrogate is U+FFFD.
    fn unicode_escape(&mut self) -> Result<char, String> {
        let hi = self.hex4()?;
        if (0xD800..0xDC00).contains(&hi) && self.s[self.at..].starts_with(b"\\u") {
            let save = self.at;
            self.at += 2;
            let lo = self.hex4()?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                return Ok(char::from_u32(c).unwrap_or('\u{fffd}'));
            }
            self.at = save;
        }
        Ok(char::from_u32(u32::from(hi)).unwrap_or('\u{fffd}'))
    }

    fn hex4(&mut self) -> Result<u16, String> {
        let digits = self.s.get(self.at..self.at + 4).ok_or("truncated \\u escape")?;
        let text = std::str::from_utf8(digits).map_err(|_| "bad \\u escape")?;
        let v = u16::from_str_radix(text, 16).map_err(|_| format!("bad \\u escape {text:?}"))?;
        self.at += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn values(body: &str) -> Vec<(String, String)> {
        parse(body.as_bytes(), 1000)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    }

    fn has(body: &str, key: &str, value: &str) -> bool {
        values(body).iter().any(|(k, v)| k == key && v == value)
    }

    #[test]
    fn paths_and_values() {
        let a = values(r#"{"user":{"name":"<b>","age":3},"tags":["x",true],"n":null,"e":{},"l":[]}"#);
        assert_eq!(
            a,
            [
                ("json.user.name", "<b>"),
                ("json.user.age", "3"),
                ("json.tags.0", "x"),
                ("json.tags.1", "true"),
                ("json.n", ""),
                ("json.e", ""),
                ("json.l", "")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert!(has(r#""top""#, "json", "top"));
        assert!(has(r#"[[1],[2,[3]]]"#, "json.1.1.0", "3"));
        assert!(parse(b"{not json", 10).unwrap_err().starts_with("JSON parsing error"));
        let deep = "[".repeat(2000) + &"]".repeat(2000);
        assert!(parse(deep.as_bytes(), 10).is_err(), "depth is bounded");
        assert!(parse(b"{\"a\":1} x", 10).is_err(), "trailing data");
        assert!(parse(b"", 10).is_err());
    }

    /// Each of these once made the body unparseable, so its attack went
    /// through uninspected; now the attack is an argument like any other.
    #[test]
    fn what_lenient_parsers_accept_is_read() {
        let attack = "1' or 1=1--";
        for body in [
            format!(r#"{{"id":"{attack}","x":"\ud800"}}"#),
            format!(r#"{{"id":"{attack}","x":NaN,"y":-Infinity}}"#),
            format!(r#"{{"id":"{attack}","x":1e999}}"#),
            format!(r#"{{"id":"{attack}",}}"#),
            format!(
                r#"{{"id":"{attack}", // comment
              "x":[1,2,],}}"#
            ),
        ] {
            assert!(has(&body, "json.id", attack), "{body}: {:?}", values(&body));
        }
        assert!(has(r#"{'id':'1 or \'1\'=\'1'}"#, "json.id", "1 or '1'='1"));
        // A member name whose value is an empty container.
        assert!(has(&format!(r#"{{"{attack}":{{}},"b":[[]]}}"#), &format!("json.{attack}"), ""));
        // Nested 70 levels (the old limit was 64).
        let deep = format!("{}\"{attack}\"{}", "[".repeat(70), "]".repeat(70));
        assert!(values(&deep).iter().any(|(_, v)| v == attack));
    }

    #[test]
    fn every_duplicate_member_is_an_argument() {
        let a = values(r#"{"id":"1' or 1=1--","id":"1"}"#);
        assert_eq!(a.len(), 2);
        assert!(has(r#"{"id":"1' or 1=1--","id":"1"}"#, "json.id", "1' or 1=1--"));
    }

    #[test]
    fn escapes_and_encodings() {
        assert!(has(r#"{"a":"\u003cscript\u003e \ud83d\ude00 \n"}"#, "json.a", "<script> \u{1F600} \n"));
        let utf16: Vec<u8> = r#"{"q":"<script>"}"#.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let a = parse(&utf16, 10).unwrap();
        assert_eq!(a, vec![("json.q".to_string(), b"<script>".to_vec())]);
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(br#"{"q":1}"#);
        assert_eq!(parse(&bom, 10).unwrap().len(), 1);
    }

    #[test]
    fn arguments_are_bounded() {
        let body = format!("[{}0]", "0,".repeat(5000));
        let e = parse(body.as_bytes(), 1000).unwrap_err();
        assert!(e.contains("more than 1000 arguments"), "{e}");
        assert_eq!(parse(b"[0,0,0]", 3).unwrap().len(), 3);
    }

    #[test]
    fn truncations_never_panic() {
        let body = br#"{"a":[1,"x\u00e9\ud83d\ude00",{"b":null,'c':NaN}], /* c */ "d":-1.5e3,}"#;
        for cut in 0..body.len() {
            let _ = parse(&body[..cut], 100);
        }
        assert!(parse(body, 100).is_ok());
    }
}
