//! A request's and a response's variables, as the rules see them: method,
//! URI and its parts, query arguments (decoded), headers, cookies; the body
//! through the URL-encoded, multipart, JSON or XML processor; the response
//! status, headers and body.

use crate::engine::{Transaction, Verdict};
use crate::transforms;

/// What the engine needs of a request.
pub struct RequestData<'a> {
    /// `GET`, `POST`...
    pub method: &'a str,
    /// The request target as sent (`/path?query`).
    pub uri: &'a str,
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    /// Headers in order, names as sent.
    pub headers: &'a [(String, Vec<u8>)],
    /// The body (already limited by the gateway).
    pub body: &'a [u8],
    /// The client address.
    pub remote_addr: &'a str,
    /// The transaction id.
    pub unique_id: &'a str,
}

/// Fills `t` with the request's variables (phase 1 and 2 data) and runs
/// phases 1 and 2: the body is read into variables after phase 1, as
/// ModSecurity does, so phase 1 rules can choose its processor.
pub fn inspect(t: &mut Transaction, r: &RequestData<'_>) -> Verdict {
    load_head(t, r);
    if t.run_phase(1) != Verdict::Pass {
        return t.verdict().clone();
    }
    load_body(t, r.headers, r.body);
    t.run_phase(2)
}

/// The variables of the request line and headers (phase 1).
pub fn load_head(t: &mut Transaction, r: &RequestData<'_>) {
    t.add("REQUEST_METHOD", "", r.method.as_bytes());
    t.add("REQUEST_PROTOCOL", "", r.protocol.as_bytes());
    t.add("REQUEST_LINE", "", format!("{} {} {}", r.method, r.uri, r.protocol).as_bytes());
    t.add("REQUEST_URI", "", r.uri.as_bytes());
    t.add("REQUEST_URI_RAW", "", r.uri.as_bytes());
    t.add("REMOTE_ADDR", "", r.remote_addr.as_bytes());
    t.add("UNIQUE_ID", "", r.unique_id.as_bytes());
    let (path, query) = r.uri.split_once('?').unwrap_or((r.uri, ""));
    // As ModSecurity: the path variables are percent-decoded (a `+` in a
    // path is a plus, not a space).
    let decoded = path_decode(path.as_bytes());
    let basename = decoded.rsplit(|b| *b == b'/').next().unwrap_or(b"");
    t.add("REQUEST_BASENAME", "", basename);
    t.add("REQUEST_FILENAME", "", &decoded);
    t.add("QUERY_STRING", "", query.as_bytes());
    let mut combined = 0usize;
    for (k, v) in form_pairs(query.as_bytes()) {
        if t.arguments_exceeded() {
            break;
        }
        combined += k.len() + v.len();
        add_arg(t, "ARGS_GET", "ARGS_GET_NAMES", &k, &v);
    }
    for (name, value) in r.headers {
        t.add("REQUEST_HEADERS", name, value);
        t.add("REQUEST_HEADERS_NAMES", name, name.as_bytes());
        if name.eq_ignore_ascii_case("cookie") {
            for (k, v, decoded) in cookie_pairs(value) {
                // Each cookie costs the rules as much as an argument.
                if !t.count_argument() {
                    break;
                }
                let k = String::from_utf8_lossy(k).into_owned();
                t.add("REQUEST_COOKIES", &k, v);
                // A quoted value as Python's and werkzeug's cookie parsers
                // give it to the application (`"1\047 or 1=1"` is
                // `1' or 1=1`): inspected too.
                if let Some(d) = decoded {
                    t.add("REQUEST_COOKIES", &k, &d);
                }
                t.add("REQUEST_COOKIES_NAMES", &k, k.as_bytes());
            }
        }
    }
    let content_type = content_type(r.headers).to_ascii_lowercase();
    // As ModSecurity: the processor is known from the headers, in phase 1.
    let processor: &[u8] = if content_type.starts_with("application/x-www-form-urlencoded") {
        b"URLENCODED"
    } else if content_type.starts_with("multipart/form-data") {
        b"MULTIPART"
    } else if is_json(&content_type) {
        b"JSON"
    } else if is_xml(&content_type) {
        b"XML"
    } else {
        b""
    };
    if !processor.is_empty() {
        t.add("REQBODY_PROCESSOR", "", processor);
    }
    t.set("ARGS_COMBINED_SIZE", combined.to_string().as_bytes());
}

/// One cookie: its name, its value as sent, and its value unquoted when
/// that differs.
type Cookie<'a> = (&'a [u8], &'a [u8], Option<Vec<u8>>);

/// The cookies of a `Cookie` header: name, value as sent, and for a
/// quoted value that escapes something, the value unquoted the way
/// Python's `http.cookies` and werkzeug read it (`\ooo` octal escapes,
/// `\"`, `\\`). A `;` inside quotes does not end the cookie, as for
/// those parsers.
fn cookie_pairs(header: &[u8]) -> Vec<Cookie<'_>> {
    let mut out = Vec::new();
    let mut rest = header;
    while !rest.is_empty() {
        // The end of this cookie: the first `;` outside a quoted value.
        let mut quoted = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, c) in rest.iter().enumerate() {
            match c {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b';' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let part = trim(&rest[..end]);
        rest = rest.get(end + 1..).unwrap_or(b"");
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(p) => (trim(&part[..p]), trim(&part[p + 1..])),
            None => (part, &b""[..]),
        };
        out.push((k, v, unquote_cookie(v)));
    }
    out
}

/// A quoted cookie value with its escapes decoded, when it has any.
fn unquote_cookie(v: &[u8]) -> Option<Vec<u8>> {
    let inner = v.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if !inner.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let octal = inner.get(i + 1..i + 4).filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
            match octal {
                Some(d) => {
                    let n = d.iter().fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                    out.push((n & 0xff) as u8);
                    i += 4;
                }
                None => {
                    out.push(inner[i + 1]);
                    i += 2;
                }
            }
            continue;
        }
        out.push(inner[i]);
        i += 1;
    }
    Some(out)
}

/// `%HH` decoded; everything else, `+` included, kept.
fn path_decode(path: &[u8]) -> Vec<u8> {
    let decode = transforms::lookup("urlDecode");
    let mut out = Vec::with_capacity(path.len());
    for (i, part) in path.split(|b| *b == b'+').enumerate() {
        if i > 0 {
            out.push(b'+');
        }
        match decode {
            Some(f) => out.extend_from_slice(&f(part)),
            None => out.extend_from_slice(part),
        }
    }
    out
}

fn content_type(headers: &[(String, Vec<u8>)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

/// The variables of the request body (phase 2), parsed by the processor
/// the headers or a phase 1 rule chose.
pub fn load_body(t: &mut Transaction, headers: &[(String, Vec<u8>)], body: &[u8]) {
    t.set("REQUEST_BODY_LENGTH", body.len().to_string().as_bytes());
    let mut combined = t.get("ARGS_COMBINED_SIZE").map_or(0, |v| crate::operators::numeric_value(v) as usize);
    let mut error = None;
    let processor = match t.body_processor() {
        Some(p) => p.to_string(),
        None => String::from_utf8_lossy(t.get("REQBODY_PROCESSOR").unwrap_or(b"")).into_owned(),
    };
    if !body.is_empty() && t.body_access() {
        // An XML body is inspected through XML:/* and XML://@* only: its raw
        // text would expose element names, which are markup, not data (CRS
        // 944120's XML tests expect no match on them).
        if processor != "XML" || t.force_body_variable() {
            t.add("REQUEST_BODY", "", body);
        }
        t.set("REQBODY_PROCESSOR", processor.as_bytes());
        match processor.as_str() {
            "URLENCODED" => {
                for (k, v) in form_pairs(body) {
                    if t.arguments_exceeded() {
                        break;
                    }
                    combined += k.len() + v.len();
                    add_arg(t, "ARGS_POST", "ARGS_POST_NAMES", &k, &v);
                }
            }
            "JSON" => match crate::body::json::parse(body, t.arguments_left()) {
                Ok(args) => {
                    for (k, v) in args {
                        combined += k.len() + v.len();
                        add_arg(t, "ARGS_POST", "ARGS_POST_NAMES", &k, &v);
                    }
                }
                Err(e) => error = Some(e),
            },
            "MULTIPART" => {
                // The boundary keeps its case.
                match crate::body::multipart::boundary(&content_type(headers))
                    .and_then(|b| crate::body::multipart::parse(body, &b))
                {
                    Ok(m) if m.parts.len() > t.arguments_left() => {
                        error = Some(format!("multipart: more than {} parts", t.arguments_left()));
                    }
                    Ok(m) => combined += load_multipart(t, &m),
                    Err(e) => error = Some(e),
                }
            }
            "XML" => match crate::body::xml::parse_limited(body, t.arguments_left()) {
                Ok(x) => {
                    let all: Vec<u8> = x.texts.concat();
                    t.add("XML", "/*", &all);
                    for a in &x.attributes {
                        t.add("XML", "//@*", a);
                    }
                }
                Err(e) => error = Some(e),
            },
            _ => {}
        }
    }
    if t.arguments_exceeded() && error.is_none() {
        error = Some(format!("more than {} arguments", t.arguments_limit()));
    }
    if let Some(e) = &error {
        // What the declared processor could not read is read as a form,
        // the way lenient applications do, so its values are inspected
        // all the same when unparseable bodies are not refused.
        if matches!(processor.as_str(), "JSON" | "XML") {
            for (k, v) in form_pairs(body) {
                if t.arguments_exceeded() {
                    break;
                }
                combined += k.len() + v.len();
                add_arg(t, "ARGS_POST", "ARGS_POST_NAMES", &k, &v);
            }
        }
        let _ = e;
    }
    match error {
        Some(e) => {
            t.set("REQBODY_ERROR", b"1");
            t.set("REQBODY_ERROR_MSG", e.as_bytes());
        }
        None => t.set("REQBODY_ERROR", b"0"),
    }
    t.set("ARGS_COMBINED_SIZE", combined.to_string().as_bytes());
}

/// Multipart parts into FILES*, MULTIPART_* and ARGS_POST; returns the
/// bytes of names and values added to the arguments.
fn load_multipart(t: &mut Transaction, m: &crate::body::multipart::Multipart) -> usize {
    let mut combined = 0;
    let mut files_size = 0usize;
    for p in &m.parts {
        for h in &p.headers {
            t.add("MULTIPART_PART_HEADERS", &p.name, h);
        }
        match &p.filename {
            Some(f) => {
                t.add("FILES", &p.name, f.as_bytes());
                t.add("FILES_NAMES", &p.name, p.name.as_bytes());
                t.add("FILES_SIZES", &p.name, p.body.len().to_string().as_bytes());
                t.add("MULTIPART_FILENAME", &p.name, f.as_bytes());
                files_size += p.body.len();
            }
            None => {
                combined += p.name.len() + p.body.len();
                add_arg(t, "ARGS_POST", "ARGS_POST_NAMES", &p.name, &p.body);
            }
        }
        t.add("MULTIPART_NAME", &p.name, p.name.as_bytes());
    }
    t.add("FILES_COMBINED_SIZE", "", files_size.to_string().as_bytes());
    let flag = |b: bool| if b { &b"1"[..] } else { &b"0"[..] };
    t.add("MULTIPART_STRICT_ERROR", "", flag(m.strict_error()));
    t.add("MULTIPART_UNMATCHED_BOUNDARY", "", flag(m.unmatched_boundary));
    t.add("MULTIPART_DATA_BEFORE", "", flag(m.data_before));
    t.add("MULTIPART_DATA_AFTER", "", flag(m.data_after));
    t.add("MULTIPART_LF_LINE", "", flag(m.lf_line));
    t.add("MULTIPART_INVALID_PART", "", flag(m.invalid_part));
    combined
}

/// What the engine needs of a response.
pub struct ResponseData<'a> {
    /// `200`.
    pub status: u16,
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    /// Headers in order.
    pub headers: &'a [(String, Vec<u8>)],
}

/// The variables of the response status line and headers (phase 3).
pub fn load_response_head(t: &mut Transaction, r: &ResponseData<'_>) {
    t.set("RESPONSE_STATUS", r.status.to_string().as_bytes());
    t.set("RESPONSE_PROTOCOL", r.protocol.as_bytes());
    t.set("STATUS_LINE", format!("{} {}", r.protocol, r.status).as_bytes());
    for (name, value) in r.headers {
        t.add("RESPONSE_HEADERS", name, value);
        t.add("RESPONSE_HEADERS_NAMES", name, name.as_bytes());
        if name.eq_ignore_ascii_case("content-type") {
            t.set("RESPONSE_CONTENT_TYPE", value);
        }
        if name.eq_ignore_ascii_case("content-length") {
            t.set("RESPONSE_CONTENT_LENGTH", value);
        }
    }
}

/// The response body (phase 4), or the part of it that was inspected.
pub fn load_response_body(t: &mut Transaction, body: &[u8]) {
    t.set("RESPONSE_BODY", body);
}

fn is_json(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence == "application/json" || essence.ends_with("+json")
}

fn is_xml(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence == "application/xml" || essence == "text/xml" || essence.ends_with("+xml")
}

fn add_arg(t: &mut Transaction, coll: &'static str, names: &'static str, k: &str, v: &[u8]) {
    if !t.count_argument() {
        return;
    }
    t.add(coll, k, v);
    t.add("ARGS", k, v);
    t.add(names, k, k.as_bytes());
    t.add("ARGS_NAMES", k, k.as_bytes());
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let e = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(s, |p| p + 1);
    &b[s..e]
}

/// `a=1&b=2` pairs, URL-decoded (`+` as space), as ModSecurity splits them.
pub fn form_pairs(s: &[u8]) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
    s.split(|b| *b == b'&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = match p.iter().position(|b| *b == b'=') {
            Some(i) => (&p[..i], &p[i + 1..]),
            None => (p, &b""[..]),
        };
        let k = transforms::lookup("urlDecode").map_or_else(|| k.to_vec(), |f| f(k).into_owned());
        let v = transforms::lookup("urlDecode").map_or_else(|| v.to_vec(), |f| f(v).into_owned());
        (String::from_utf8_lossy(&k).into_owned(), v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ModSecurity's SecArgumentsLimit: past the limit nothing more is
    /// added, and the transaction says so (the gateway then refuses).
    #[test]
    fn arguments_past_the_limit_are_counted_not_added() {
        let set = crate::seclang::load_str("SecRuleEngine On\n", "t.conf").unwrap();
        let e = std::sync::Arc::new(crate::engine::Engine::new(&set).unwrap());
        let mut t = e.transaction();
        t.set_arguments_limit(10);
        let headers = vec![("Content-Type".to_string(), b"application/x-www-form-urlencoded".to_vec())];
        let r = RequestData {
            method: "POST",
            uri: "/?q=1",
            protocol: "HTTP/1.1",
            headers: &headers,
            body: b"",
            remote_addr: "192.0.2.1",
            unique_id: "1",
        };
        load_head(&mut t, &r);
        assert!(!t.arguments_exceeded());
        load_body(&mut t, &headers, "a=&".repeat(100_000).as_bytes());
        assert!(t.arguments_exceeded());
        assert_eq!(t.get("REQBODY_ERROR"), Some(&b"1"[..]));
        assert!(t.arguments() <= 12);
    }

    /// Quoted cookie values as Python frameworks read them: an outside
    /// review passed SQL injection through `id="1\047 or 1=1--"`.
    #[test]
    fn quoted_cookies_are_read_unquoted_too() {
        let pairs = cookie_pairs(br#"a=1; id="1\047 or \0471\047=\0471"; q="x;\"y"; plain="v"; e="#);
        let got: Vec<(String, Option<String>)> = pairs
            .iter()
            .map(|(k, _, d)| {
                (String::from_utf8_lossy(k).into_owned(), d.as_ref().map(|d| String::from_utf8_lossy(d).into_owned()))
            })
            .collect();
        assert_eq!(got[0], ("a".to_string(), None));
        assert_eq!(got[1], ("id".to_string(), Some("1' or '1'='1".to_string())));
        assert_eq!(got[2], ("q".to_string(), Some("x;\"y".to_string())), "a quoted ; does not end the cookie");
        assert_eq!(got[3], ("plain".to_string(), None));
        assert_eq!(got[4].0, "e");
        assert_eq!(unquote_cookie(br#""..\057etc\057passwd""#).unwrap(), b"../etc/passwd");
    }

    #[test]
    fn form_pairs_are_decoded() {
        let p: Vec<_> = form_pairs(b"a=1&b=x+y%21&c&&d=").collect();
        assert_eq!(p.len(), 4);
        assert_eq!(p[1], ("b".to_string(), b"x y!".to_vec()));
        assert_eq!(p[2], ("c".to_string(), Vec::new()));
    }
}
