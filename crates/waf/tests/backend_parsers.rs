//! What a permissive backend parser reads from a request body, the WAF
//! must see (issue 10, point 2). Each test here generates thousands of
//! adversarial bodies from a fixed seed, gives them to parsers that
//! applications really use, and checks that every value such a parser
//! extracts is among the WAF's variables, or that the WAF flags the body
//! (`REQBODY_ERROR` or `MULTIPART_STRICT_ERROR`, refused by default on
//! blocking routes):
//!
//! - JSON: Python's `json.loads` (NaN, lone surrogates, duplicate keys,
//!   UTF-16 and UTF-32 detection) and Node's `JSON.parse`;
//! - URL-encoded forms: Python's `urllib.parse.parse_qsl` (what Django
//!   and werkzeug use) and Node's `URLSearchParams`;
//! - multipart: werkzeug's form parser (Flask's `request.form`, `request.files`);
//! - XML: Python's `xml.etree.ElementTree` (expat).
//!
//! Values are compared as text, after replacing every run of U+FFFD
//! (what each side makes of bytes that are not UTF-8, or of a lone
//! surrogate) by one; XML text also with each run of white space as one
//! space (line ends are reported normalised). A value is "seen" when it is an argument (JSON
//! and form values, multipart fields), inside an argument's name (a JSON
//! member name is part of its path), a file name in `FILES`, inside the
//! text of `XML:/*` or an attribute value of `XML://@*`.
//!
//! All bodies of a test go to one Python and one Node process, so a test
//! takes seconds. `RAMPART_PROP_SEED` and `RAMPART_PROP_CASES` change the
//! seed and the number of generated cases; a failure names the seed and
//! shows the bodies.
#![allow(clippy::unwrap_used)] // Tests may unwrap.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use rampart_waf::engine::Engine;
use rampart_waf::request::{self, RequestData};

/// Records every value of the variables compared here in `TX`, hex-encoded
/// and space-separated (after a leading `v`), so the test reads exactly
/// what the rules would inspect.
const RULES: &str = r#"SecRuleEngine On
SecRequestBodyAccess On
SecAction "id:1,phase:2,pass,nolog,setvar:tx.args=v,setvar:tx.names=v,setvar:tx.files=v,setvar:tx.xml=v,setvar:tx.attrs=v"
SecRule ARGS "@unconditionalMatch" "id:2,phase:2,pass,nolog,t:hexEncode,setvar:'tx.args=%{tx.args} %{MATCHED_VAR}'"
SecRule ARGS_NAMES "@unconditionalMatch" "id:3,phase:2,pass,nolog,t:hexEncode,setvar:'tx.names=%{tx.names} %{MATCHED_VAR}'"
SecRule FILES "@unconditionalMatch" "id:4,phase:2,pass,nolog,t:hexEncode,setvar:'tx.files=%{tx.files} %{MATCHED_VAR}'"
SecRule XML:/* "@unconditionalMatch" "id:5,phase:2,pass,nolog,t:hexEncode,setvar:'tx.xml=%{tx.xml} %{MATCHED_VAR}'"
SecRule XML://@* "@unconditionalMatch" "id:6,phase:2,pass,nolog,t:hexEncode,setvar:'tx.attrs=%{tx.attrs} %{MATCHED_VAR}'"
"#;

/// Payloads the generated bodies carry.
const ATTACKS: &[&str] = &[
    "1' or 1=1--",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    ";cat /etc/passwd",
    "${jndi:ldap://x/a}",
    "union select password from users",
];

/// What the WAF made of one body.
struct Seen {
    /// `REQBODY_ERROR` or `MULTIPART_STRICT_ERROR` is 1.
    flagged: bool,
    args: Vec<String>,
    names: Vec<String>,
    files: Vec<String>,
    xml_text: String,
    xml_attrs: Vec<String>,
}

struct Waf(Arc<Engine>);

impl Waf {
    fn new() -> Self {
        let set = rampart_waf::seclang::load_str(RULES, "backend_parsers.conf").unwrap();
        Waf(Arc::new(Engine::new(&set).unwrap()))
    }

    fn inspect(&self, content_type: &str, body: &[u8]) -> Seen {
        let mut t = self.0.transaction();
        let headers = vec![
            ("Host".to_string(), b"example.com".to_vec()),
            ("Content-Type".to_string(), content_type.as_bytes().to_vec()),
            ("Content-Length".to_string(), body.len().to_string().into_bytes()),
        ];
        let r = RequestData {
            method: "POST",
            uri: "/",
            protocol: "HTTP/1.1",
            headers: &headers,
            body,
            remote_addr: "192.0.2.1",
            unique_id: "1",
        };
        request::inspect(&mut t, &r);
        let flag = |name: &str| t.get(name) == Some(&b"1"[..]);
        let values = |key: &str| -> Vec<String> {
            let all = t.tx(key).unwrap_or_else(|| panic!("tx.{key} not set"));
            all.split(' ').skip(1).map(|h| text(&unhex(h))).collect()
        };
        Seen {
            flagged: flag("REQBODY_ERROR") || flag("MULTIPART_STRICT_ERROR"),
            args: values("args"),
            names: values("names"),
            files: values("files"),
            xml_text: xml_text(&values("xml").concat()),
            xml_attrs: values("attrs"),
        }
    }
}

/// Whether the WAF saw what a backend extracted: `kind` says where it
/// must be (see the scripts below).
fn sees(seen: &Seen, kind: &str, want: &str) -> bool {
    if let Some(kind) = kind.strip_suffix("_ascii") {
        let skeleton = |s: &str| {
            let mut out = String::new();
            for c in s.chars() {
                if c.is_ascii() {
                    out.push(c);
                } else if !out.ends_with('\u{fffd}') {
                    out.push('\u{fffd}');
                }
            }
            out
        };
        let all = |v: &[String]| v.iter().map(|s| skeleton(s)).collect::<Vec<_>>();
        let loose = Seen {
            flagged: seen.flagged,
            args: all(&seen.args),
            names: all(&seen.names),
            files: all(&seen.files),
            xml_text: skeleton(&seen.xml_text),
            xml_attrs: all(&seen.xml_attrs),
        };
        return sees(&loose, kind, &skeleton(want));
    }
    let want = norm(want);
    match kind {
        "arg" => seen.args.contains(&want),
        "arg_hex" => seen.args.contains(&text(&unhex(&want))),
        "in_name" => seen.names.iter().any(|n| n.contains(&want)),
        // An empty name holds nothing to inspect.
        "name" => want.is_empty() || seen.names.contains(&want),
        "name_hex" => seen.names.contains(&text(&unhex(&want))),
        "file" => seen.files.contains(&want),
        "text" => {
            let want = xml_text(&want);
            want.trim().is_empty() || seen.xml_text.contains(&want)
        }
        "attr" => seen.xml_attrs.contains(&want),
        _ => panic!("unknown kind {kind}"),
    }
}

/// Bytes as text, each run of replacement characters as one.
fn text(b: &[u8]) -> String {
    norm(&String::from_utf8_lossy(b))
}

fn norm(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !(c == '\u{fffd}' && out.ends_with('\u{fffd}')) {
            out.push(c);
        }
    }
    out
}

/// XML text with each run of white space as one space: an XML parser
/// reports line ends as LF (section 2.11) but a character reference
/// `&#10;` after a CR as written, which this reader cannot tell apart.
fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_ascii_whitespace() {
            out.push(c);
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2).map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn seed(default: u64) -> u64 {
    std::env::var("RAMPART_PROP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn case_count() -> usize {
    std::env::var("RAMPART_PROP_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3000)
}

/// One generated request.
struct Case {
    content_type: String,
    body: Vec<u8>,
}

/// Writes the cases to a temporary file (each a content type and a body,
/// both after their length as 4 bytes, little-endian), runs
/// each backend's script once over all of them and checks what each
/// extracted against what the WAF saw.
fn check(what: &str, seed: u64, cases: &[Case], backends: &[(&str, &str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for c in cases {
        for field in [c.content_type.as_bytes(), &c.body] {
            all.extend_from_slice(&u32::try_from(field.len()).unwrap().to_le_bytes());
            all.extend_from_slice(field);
        }
    }
    std::fs::write(dir.path().join("cases"), all).unwrap();
    let started = std::time::Instant::now();
    let waf = Waf::new();
    let seen: Vec<Seen> = cases.iter().map(|c| waf.inspect(&c.content_type, &c.body)).collect();
    eprintln!("{what}: the WAF took {:?}", started.elapsed());
    let mut failures = Vec::new();
    let (mut parsed, mut checked) = (0, 0);
    for (backend, program, script) in backends {
        let started = std::time::Instant::now();
        let results = run(program, script, dir.path(), cases.len());
        eprintln!("{what}: {backend} took {:?}", started.elapsed());
        for (i, r) in results.iter().enumerate() {
            let Some(values) = r.as_array() else { continue };
            parsed += 1;
            if seen[i].flagged {
                continue;
            }
            checked += 1;
            for v in values {
                let (kind, want) = (v[0].as_str().unwrap(), v[1].as_str().unwrap());
                if !sees(&seen[i], kind, want) {
                    failures.push(format!(
                        "case {i}, {backend} reads {kind} {want:?} that the WAF neither sees nor flags\n  \
                         content type: {:?}\n  body: {:?}\n  WAF: args {:?}, names {:?}, files {:?}, xml {:?}, attributes {:?}",
                        cases[i].content_type,
                        String::from_utf8_lossy(&cases[i].body),
                        seen[i].args,
                        seen[i].names,
                        seen[i].files,
                        seen[i].xml_text,
                        seen[i].xml_attrs,
                    ));
                    break;
                }
            }
        }
    }
    let flagged = seen.iter().filter(|s| s.flagged).count();
    eprintln!(
        "{what}: {} cases, {parsed} parses by {} backends ({checked} of bodies the WAF did not flag), \
         {flagged} bodies flagged by the WAF, seed {seed}",
        cases.len(),
        backends.len()
    );
    if !failures.is_empty() {
        let n = failures.len();
        failures.truncate(10);
        panic!(
            "{what}: {n} discrepancies (seed {seed}; rerun with RAMPART_PROP_SEED={seed}):\n{}",
            failures.join("\n")
        );
    }
    // The generator must give the backends bodies they accept, or the
    // test proves nothing.
    assert!(
        checked * 4 >= cases.len() * backends.len(),
        "{what}: only {checked} unflagged bodies parsed by the backends"
    );
}

/// Runs `program script cases n`; its standard output is a JSON array with,
/// per body, `null` (not parsed) or a list of `[kind, value]`.
fn run(program: &str, script: &str, dir: &Path, n: usize) -> Vec<serde_json::Value> {
    let ext = if program == "node" { "js" } else { "py" };
    let path = dir.join(format!("check-{}.{ext}", n));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(program)
        .arg(&path)
        .arg(dir.join("cases"))
        .arg(n.to_string())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (the backend parsers must be installed)"));
    assert!(out.status.success(), "{program} failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.len(), n);
    v
}

/// Python helpers shared by the scripts: `norm` replaces each lone
/// surrogate (which Python keeps in a `str`) by U+FFFD.
const PY_PRELUDE: &str = r#"
import json, re, struct, sys
sys.setrecursionlimit(20000)
with open(sys.argv[1], "rb") as f:
    data = f.read()
cases, at = [], 0
while at < len(data):
    fields = []
    for _ in range(2):
        (size,) = struct.unpack_from("<I", data, at)
        fields.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    cases.append((fields[0].decode("latin-1"), fields[1]))
assert len(cases) == int(sys.argv[2])
def norm(s):
    return re.sub('[\ud800-\udfff]', '\ufffd', s)
def main(extract):
    out = []
    for content_type, body in cases:
        try:
            out.append([[k, norm(v)] for k, v in extract(content_type, body)])
        except Exception:
            out.append(None)
    sys.stdout.write(json.dumps(out))
"#;

const NODE_PRELUDE: &str = r#"
const data = require('fs').readFileSync(process.argv[2]);
const cases = [];
for (let at = 0; at < data.length; ) {
  const fields = [];
  for (let f = 0; f < 2; f++) {
    const size = data.readUInt32LE(at);
    fields.push(data.subarray(at + 4, at + 4 + size));
    at += 4 + size;
  }
  cases.push([fields[0].toString('latin1'), fields[1]]);
}
if (cases.length !== Number(process.argv[3])) throw new Error('cases');
const norm = (s) => s.toWellFormed();
function main(extract) {
  const out = [];
  for (const [contentType, body] of cases) {
    try { out.push(extract(body, contentType).map(([k, v]) => [k, norm(v)])); } catch (e) { out.push(null); }
  }
  process.stdout.write(JSON.stringify(out));
}
"#;

// ---------------------------------------------------------------- JSON

/// Every member name and scalar, numbers and constants as written
/// (`parse_float=str`...), every duplicate member (`object_pairs_hook`).
const PY_JSON: &str = r#"
class Obj(list):
    pass
def extract(content_type, body):
    v = json.loads(body, parse_float=str, parse_int=str, parse_constant=str, object_pairs_hook=Obj)
    out = []
    def walk(v):
        if isinstance(v, Obj):
            for k, x in v:
                out.append(["in_name", k])
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif v is None:
            out.append(["arg", ""])
        elif v is True or v is False:
            out.append(["arg", "true" if v else "false"])
        else:
            out.append(["arg", v])
    walk(v)
    return out
main(extract)
"#;

/// As body-parser gives it to an Express app: UTF-8, a BOM dropped. Numbers
/// are compared only through Python (Node keeps no text of them).
const NODE_JSON: &str = r#"
main((b) => {
  let s = b.toString('utf8');
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  const out = [];
  const walk = (v) => {
    if (v === null) out.push(['arg', '']);
    else if (typeof v === 'string') out.push(['arg', v]);
    else if (typeof v === 'boolean') out.push(['arg', String(v)]);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object') for (const k of Object.keys(v)) { out.push(['in_name', k]); walk(v[k]); }
  };
  walk(JSON.parse(s));
  return out;
});
"#;

fn pick<T: Copy>(rng: &mut fastrand::Rng, items: &[T]) -> T {
    items[rng.usize(..items.len())]
}

fn json_blank(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    if rng.u8(..3) == 0 {
        // Mostly what JSON allows, sometimes what only lenient readers do.
        let b = if rng.u8(..6) == 0 {
            pick(rng, &["\x0b", "\x0c", "\u{a0}", "/**/", "//c\n", "\u{feff}", "\u{2028}"])
        } else {
            pick(rng, &["", " ", "\t", "\n", "\r\n", "  \n ", "\r"])
        };
        out.extend_from_slice(b.as_bytes());
    }
}

fn json_string(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    let quote = if rng.u8(..30) == 0 { b'\'' } else { b'"' };
    out.push(quote);
    for _ in 0..rng.usize(0..6) {
        match rng.u8(..12) {
            0 | 1 => out.extend_from_slice(pick(rng, ATTACKS).as_bytes()),
            2 => out.extend_from_slice(pick(rng, &["a", "id", "x.y", "", "key", "a b"]).as_bytes()),
            3 if rng.u8(..6) == 0 => out.extend_from_slice(pick(rng, &[r"\'", r"\x", r"\u12", r"\a", "\\"]).as_bytes()),
            3 => {
                out.extend_from_slice(pick(rng, &[r#"\""#, r"\\", r"\/", r"\b", r"\f", r"\n", r"\r", r"\t"]).as_bytes())
            }
            4 => out.extend_from_slice(format!("\\u{:04x}", rng.u16(..)).as_bytes()),
            5 => out.extend_from_slice(format!("\\u{:04X}", rng.u16(0xd800..0xe000)).as_bytes()),
            6 => out.extend_from_slice(
                pick(
                    rng,
                    &[
                        r"\ud83d\ude00",
                        r"\ude00\ud83d",
                        r"\ud800",
                        r"\udfff",
                        r"\ud800\ud800\udc00",
                        r"\u0000",
                        r"\u003cscript\u003e",
                        r"\u0027 or 1=1--",
                        r"\ud800\u0027",
                    ],
                )
                .as_bytes(),
            ),
            7 => out.extend_from_slice(
                pick(rng, &["é", "中文", "😀", "\u{2028}", "\u{feff}", "\u{fffd}", "\u{7f}"]).as_bytes(),
            ),
            8 if rng.u8(..3) == 0 => {
                let raw: &[&[u8]] = &[b"\xff", b"\xed\xa0\x80", b"\x01", b"\n", b"\t", b"\xc3"];
                out.extend_from_slice(pick(rng, raw));
            }
            _ => out.extend_from_slice(b"abc"),
        }
    }
    out.push(quote);
}

fn json_scalar(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    match rng.u8(..10) {
        0..=4 => json_string(rng, out),
        5 | 6 => {
            let n: String = match rng.u8(..4) {
                0 => (0..rng.usize(20..400))
                    .map(|_| char::from(b'0' + rng.u8(..10)))
                    .collect::<String>()
                    .replacen('0', "1", 1),
                1 => pick(rng, &["0x10", "01", ".5", "1.", "+1", "1e", "--1", "1_000", "-", "0.e1"]).to_string(),
                _ => pick(rng, &["0", "-0", "12", "1.5", "-2.5e10", "1e999", "-1e999", "1E+2", "1.5e-400", "-0.0e-0"])
                    .to_string(),
            };
            out.extend_from_slice(n.as_bytes());
        }
        _ => out.extend_from_slice(
            pick(
                rng,
                &["true", "false", "null", "NaN", "Infinity", "-Infinity", "true", "null", "+Infinity", "True", "nul"],
            )
            .as_bytes(),
        ),
    }
}

fn json_value(rng: &mut fastrand::Rng, depth: usize, out: &mut Vec<u8>) {
    let kind = if depth > 4 { 9 } else { rng.u8(..10) };
    match kind {
        0..=2 => {
            out.push(b'{');
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for i in 0..rng.usize(0..5) {
                json_blank(rng, out);
                if i > 0 {
                    out.push(b',');
                    json_blank(rng, out);
                }
                let key = if !keys.is_empty() && rng.u8(..3) == 0 {
                    keys[rng.usize(..keys.len())].clone()
                } else {
                    let mut k = Vec::new();
                    json_string(rng, &mut k);
                    k
                };
                out.extend_from_slice(&key);
                keys.push(key);
                json_blank(rng, out);
                out.push(b':');
                json_blank(rng, out);
                json_value(rng, depth + 1, out);
            }
            json_blank(rng, out);
            if !keys.is_empty() && rng.u8(..8) == 0 {
                out.push(b',');
            }
            out.push(b'}');
        }
        3..=5 => {
            out.push(b'[');
            let n = rng.usize(0..5);
            for i in 0..n {
                json_blank(rng, out);
                if i > 0 {
                    out.push(b',');
                    json_blank(rng, out);
                }
                json_value(rng, depth + 1, out);
            }
            if n > 0 && rng.u8(..8) == 0 {
                out.push(b',');
            }
            json_blank(rng, out);
            out.push(b']');
        }
        _ => json_scalar(rng, out),
    }
}

fn utf16(s: &str, le: bool, bom: bool) -> Vec<u8> {
    let units = bom.then_some(0xfeff).into_iter().chain(s.encode_utf16());
    units.flat_map(|u| if le { u.to_le_bytes() } else { u.to_be_bytes() }).collect()
}

fn utf32(s: &str, le: bool, bom: bool) -> Vec<u8> {
    let chars = bom.then_some(0xfeff).into_iter().chain(s.chars().map(u32::from));
    chars.flat_map(|c| if le { c.to_le_bytes() } else { c.to_be_bytes() }).collect()
}

/// A small random edit: what a hand-made evasion looks like.
fn mutate(rng: &mut fastrand::Rng, body: &mut Vec<u8>, alphabet: &[u8]) {
    if body.is_empty() {
        return;
    }
    let at = rng.usize(..body.len());
    match rng.u8(..3) {
        0 => {
            body.remove(at);
        }
        1 => body.insert(at, pick(rng, alphabet)),
        _ => {
            let end = (at + rng.usize(1..8)).min(body.len());
            let piece = body[at..end].to_vec();
            body.splice(at..at, piece);
        }
    }
}

fn json_case(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    json_blank(rng, &mut out);
    if rng.u8(..12) == 0 {
        // Deep nesting, past the old limit of 64.
        let depth = rng.usize(50..90);
        let opens: Vec<bool> = (0..depth).map(|_| rng.bool()).collect();
        for &object in &opens {
            out.extend_from_slice(if object { b"{\"k\":" } else { b"[" });
        }
        json_string(rng, &mut out);
        for &object in opens.iter().rev() {
            out.push(if object { b'}' } else { b']' });
        }
    } else {
        json_value(rng, 0, &mut out);
    }
    json_blank(rng, &mut out);
    if rng.u8(..10) == 0 {
        mutate(rng, &mut out, b",\"\\{}[]:' \x00\xff");
    }
    let Ok(s) = String::from_utf8(out.clone()) else { return out };
    match rng.u8(..24) {
        0 => [&b"\xef\xbb\xbf"[..], s.as_bytes()].concat(),
        1 => utf16(&s, true, false),
        2 => utf16(&s, true, true),
        3 => utf16(&s, false, false),
        4 => utf16(&s, false, true),
        5 => utf32(&s, true, false),
        6 => utf32(&s, false, true),
        _ => out,
    }
}

#[test]
fn json_values_python_and_node_read_are_seen() {
    let seed = seed(0x6a73_6f6e);
    let mut rng = fastrand::Rng::with_seed(seed);
    let attack = ATTACKS[0];
    let ct = "application/json";
    let mut cases: Vec<Case> = [
        // Issue 10's bodies.
        format!(r#"{{"id":"{attack}","x":"\ud800"}}"#),
        format!(r#"{{"id":"{attack}","x":NaN}}"#),
        format!(r#"{{"id":"{attack}","x":1e999}}"#),
        format!(r#"{{"id":"{attack}","id":"1"}}"#),
        format!("{}\"{attack}\"{}", "[".repeat(70), "]".repeat(70)),
        format!("id={attack}"),
    ]
    .into_iter()
    .map(|b| Case { content_type: ct.into(), body: b.into_bytes() })
    .collect();
    for _ in 0..case_count() {
        let content_type = pick(&mut rng, &[ct, ct, ct, "application/json; charset=utf-8", "application/vnd.api+json"]);
        cases.push(Case { content_type: content_type.to_string(), body: json_case(&mut rng) });
    }
    check(
        "JSON",
        seed,
        &cases,
        &[
            ("python json.loads", "python3", &format!("{PY_PRELUDE}{PY_JSON}")),
            ("node JSON.parse", "node", &format!("{NODE_PRELUDE}{NODE_JSON}")),
        ],
    );
}

// ------------------------------------------------------------- forms

/// Byte for byte: the body read as Latin-1 so that every `%HH` decodes to
/// its byte, as Django and werkzeug call `parse_qsl` but without their
/// final decoding.
const PY_FORM: &str = r#"
from urllib.parse import parse_qsl
def extract(content_type, body):
    out = []
    for k, v in parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="latin-1"):
        out.append(["name_hex", k.encode("latin-1").hex()])
        out.append(["arg_hex", v.encode("latin-1").hex()])
    return out
main(extract)
"#;

/// `URLSearchParams` drops a leading `?`: names are compared as parts of
/// the WAF's (which keeps it). Where `%HH` escapes of bytes that are not
/// UTF-8 meet raw multi-byte characters, Node sometimes makes U+FFFD of
/// the characters too: text is compared with each run of non-ASCII
/// characters as one U+FFFD (`_ascii`).
const NODE_FORM: &str = r#"
main((b) => {
  const out = [];
  for (const [k, v] of new URLSearchParams(b.toString('utf8'))) out.push(['in_name_ascii', k], ['arg_ascii', v]);
  return out;
});
"#;

fn form_text(rng: &mut fastrand::Rng, out: &mut Vec<u8>) {
    for _ in 0..rng.usize(0..5) {
        match rng.u8(..8) {
            0 => out.extend_from_slice(pick(rng, ATTACKS).as_bytes()),
            1 => {
                for b in pick(rng, ATTACKS).bytes() {
                    out.extend_from_slice(format!("%{b:02X}").as_bytes());
                }
            }
            2 | 3 => out.extend_from_slice(
                pick(
                    rng,
                    &[
                        "+",
                        "%",
                        "%2",
                        "%zz",
                        "%41",
                        "%2B",
                        "%26",
                        "%3D",
                        "%00",
                        "%C3%A9",
                        "%FF",
                        "%u0041",
                        "%%31",
                        "%%",
                        "%+",
                        "%2",
                        "%e9",
                        "%ED%A0%80",
                    ],
                )
                .as_bytes(),
            ),
            4 => {
                let raw: &[&[u8]] = &[b" ", "é".as_bytes(), b"\xff", b"#", b"\n", b"?", b"=", b";", b"\0", b"\t"];
                out.extend_from_slice(pick(rng, raw));
            }
            _ => out.extend_from_slice(pick(rng, &["a", "id", "q", "user[name]", "x.y", "1"]).as_bytes()),
        }
    }
}

fn form_case(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.u8(..10) == 0 {
        out.extend_from_slice(pick(rng, &["?", "&", "&&", "=", ";"]).as_bytes());
    }
    for i in 0..rng.usize(0..6) {
        if i > 0 {
            out.extend_from_slice(pick(rng, &["&", "&", "&", "&&", ";", "&;"]).as_bytes());
        }
        form_text(rng, &mut out);
        match rng.u8(..8) {
            0 => {}
            1 => out.extend_from_slice(b"=="),
            _ => out.push(b'='),
        }
        form_text(rng, &mut out);
    }
    if rng.u8(..10) == 0 {
        out.push(b'&');
    }
    out
}

#[test]
fn form_values_python_and_node_read_are_seen() {
    let seed = seed(0x666f_726d);
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut cases = Vec::new();
    for _ in 0..case_count() {
        let content_type = pick(
            &mut rng,
            &[
                "application/x-www-form-urlencoded",
                "application/x-www-form-urlencoded; charset=UTF-8",
                "Application/X-WWW-Form-Urlencoded",
            ],
        );
        cases.push(Case { content_type: content_type.to_string(), body: form_case(&mut rng) });
    }
    check(
        "form",
        seed,
        &cases,
        &[
            ("python parse_qsl", "python3", &format!("{PY_PRELUDE}{PY_FORM}")),
            ("node URLSearchParams", "node", &format!("{NODE_PRELUDE}{NODE_FORM}")),
        ],
    );
}

// --------------------------------------------------------- multipart

/// What a Flask application gets in `request.form` and `request.files`.
const PY_MULTIPART: &str = r#"
import io
from werkzeug.formparser import parse_form_data
def extract(content_type, body):
    env = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    _, form, files = parse_form_data(env, silent=False)
    out = []
    for k, v in form.items(multi=True):
        out += [["name", k or ""], ["arg", v]]
    for k, f in files.items(multi=True):
        out.append(["file", f.filename or ""])
    return out
main(extract)
"#;

/// A parameter `key=value` of a header, in one of the ways clients and
/// attackers write it.
fn mp_param(rng: &mut fastrand::Rng, wild: bool, key: &str, value: &str) -> String {
    let key = match rng.u8(..10) {
        0 => key.to_uppercase(),
        1 => {
            let mut k = key.to_string();
            k[..1].make_ascii_uppercase();
            k
        }
        _ => key.to_string(),
    };
    match if wild { rng.u8(..14) } else { 5 } {
        0 if !value.contains([' ', ';', '"']) => format!("{key}={value}"),
        1 => format!("{key}=\"{}\"", value.replace('"', "\\\"")),
        2 => format!("{key}=\"{}\"", value.replace('"', "%22")),
        3 => format!("{key}*=UTF-8''{}", value.bytes().map(|b| format!("%{b:02X}")).collect::<String>()),
        4 => format!("{key} = \"{value}\""),
        _ => format!("{key}=\"{value}\""),
    }
}

fn mp_case(rng: &mut fastrand::Rng) -> Case {
    // Half the bodies are what browsers send (names, values and file
    // names still adversarial), half carry irregularities too.
    let wild = rng.bool();
    const BCHARS: &[u8] = b"abcXYZ0123456789'()+_,-./:=? ";
    let len = match rng.u8(..20) {
        0 => rng.usize(60..80),
        1 => rng.usize(190..210),
        _ => rng.usize(1..30),
    };
    let mut boundary: String = (0..len).map(|_| char::from(pick(rng, BCHARS))).collect();
    if boundary.ends_with(' ') {
        boundary.push('x');
    }
    // The content type.
    let mut params = vec![mp_param(rng, wild, "boundary", &boundary)];
    if rng.u8(..4) == 0 {
        params.push(pick(rng, &["charset=utf-8", "x=\"boundary=zz\"", "foo=bar"]).to_string());
    }
    if wild && rng.u8(..20) == 0 {
        params.push(format!("boundary={}", pick(rng, &["zz", "other"])));
    }
    rng.shuffle(&mut params);
    let base = pick(rng, &["multipart/form-data", "multipart/form-data", "Multipart/Form-Data"]);
    let content_type = format!("{base}; {}", params.join(pick(rng, &["; ", ";", " ; "])));
    // Line ends: CRLF, LF, or a mix.
    let mode = if wild { rng.u8(..5) } else { 9 };
    let nl = |rng: &mut fastrand::Rng| -> &'static str {
        match mode {
            0 => "\n",
            1 => pick(rng, &["\r\n", "\n", "\r\n", "\r"]),
            _ => "\r\n",
        }
    };
    let mut body = Vec::new();
    if wild && rng.u8(..5) == 0 {
        body.extend_from_slice(pick(rng, &["preamble", "", "--", ATTACKS[0]]).as_bytes());
        body.extend_from_slice(nl(rng).as_bytes());
    }
    for _ in 0..rng.usize(1..5) {
        body.extend_from_slice(format!("--{boundary}").as_bytes());
        if wild && rng.u8(..15) == 0 {
            body.extend_from_slice(b" \t");
        }
        body.extend_from_slice(nl(rng).as_bytes());
        let name = pick(rng, &["a", "id", "q", "user[name]", "a b", "é", ATTACKS[0], "x;y", "x\"y", ""]);
        let file = rng.u8(..3) == 0;
        let mut disposition = vec![mp_param(rng, wild, "name", name)];
        if file {
            let f = pick(
                rng,
                &["f.txt", "shell.php", "../../x.php", "a;b.php", "a\"b.php", "", ATTACKS[1], "é.php", "c:\\x\\y.php"],
            );
            disposition.push(mp_param(rng, wild, "filename", f));
        }
        if wild && rng.u8(..15) == 0 {
            let key = pick(rng, &["name", "filename"]);
            disposition.push(mp_param(rng, wild, key, "other"));
        }
        if rng.u8(..5) == 0 {
            rng.shuffle(&mut disposition);
        }
        let kind = pick(rng, &["form-data", "form-data", "Form-Data", "attachment"]);
        let header = pick(rng, &["Content-Disposition", "content-disposition", "CONTENT-DISPOSITION"]);
        let colon = pick(rng, &[": ", ":", ":  "]);
        let mut headers = vec![format!("{header}{colon}{kind}; {}", disposition.join("; "))];
        if rng.u8(..3) == 0 {
            headers.push(
                pick(rng, &["Content-Type: text/plain", "Content-Type: application/octet-stream", "X-Extra: 1"])
                    .to_string(),
            );
        }
        if wild && rng.u8(..15) == 0 {
            headers.push(
                pick(
                    rng,
                    &[
                        "Content-Disposition: form-data; name=\"other\"",
                        "Content-Transfer-Encoding: base64",
                        " folded",
                        "no colon",
                        "Content-Type: text/plain;\r\n charset=utf-8",
                    ],
                )
                .to_string(),
            );
        }
        if rng.u8(..4) == 0 {
            rng.shuffle(&mut headers);
        }
        for h in headers {
            body.extend_from_slice(h.as_bytes());
            body.extend_from_slice(nl(rng).as_bytes());
        }
        body.extend_from_slice(nl(rng).as_bytes());
        for _ in 0..rng.usize(0..4) {
            match rng.u8(..8) {
                0 | 1 => body.extend_from_slice(pick(rng, ATTACKS).as_bytes()),
                2 => body.extend_from_slice(nl(rng).as_bytes()),
                3 => body.extend_from_slice(format!("--{}", &boundary[..rng.usize(..=boundary.len())]).as_bytes()),
                4 => body.extend_from_slice(pick(rng, &["\r", "--", "é", "\u{feff}", "\0"]).as_bytes()),
                _ => body.extend_from_slice(b"value"),
            }
        }
        body.extend_from_slice(nl(rng).as_bytes());
    }
    match if wild { rng.u8(..6) } else { 9 } {
        0 => {}
        1 => body.extend_from_slice(format!("--{boundary}").as_bytes()),
        2 => body.extend_from_slice(format!("--{boundary}--{}epilogue", nl(rng)).as_bytes()),
        3 => body.extend_from_slice(format!("--{boundary}--").as_bytes()),
        _ => body.extend_from_slice(format!("--{boundary}--{}", nl(rng)).as_bytes()),
    }
    if wild && rng.u8(..6) == 0 {
        mutate(rng, &mut body, b"\r\n-\";=: ");
    }
    Case { content_type, body }
}

#[test]
fn multipart_values_werkzeug_reads_are_seen() {
    let seed = seed(0x6d70_6172);
    let mut rng = fastrand::Rng::with_seed(seed);
    let cases: Vec<Case> = (0..case_count()).map(|_| mp_case(&mut rng)).collect();
    check("multipart", seed, &cases, &[("werkzeug", "python3", &format!("{PY_PRELUDE}{PY_MULTIPART}"))]);
}

// --------------------------------------------------------------- XML

/// Every element's text and tail and every attribute value, as expat
/// gives them to a Python application (internal DTD entities expanded,
/// default attributes added). Compared with each run of non-ASCII
/// characters as one U+FFFD: expat decodes a declared ISO-8859-1 or UTF-16
/// body, the WAF reads UTF-8 only (its ASCII, where the payloads are, is
/// the same).
const PY_XML: &str = r#"
import xml.etree.ElementTree as ET
def extract(content_type, body):
    out = []
    for el in ET.fromstring(body).iter():
        out += [["text_ascii", t] for t in (el.text, el.tail) if t]
        out += [["attr_ascii", v] for v in el.attrib.values()]
    return out
main(extract)
"#;

fn xml_chars(rng: &mut fastrand::Rng, attribute: bool, out: &mut String) {
    for _ in 0..rng.usize(0..4) {
        match rng.u8(..10) {
            0 | 1 => {
                let a = pick(rng, ATTACKS);
                out.push_str(&a.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;"));
            }
            2 => out.push_str(pick(
                rng,
                &["&lt;", "&gt;", "&amp;", "&quot;", "&apos;", "&#65;", "&#x3c;", "&#10;", "&#x1F600;"],
            )),
            3 => out.push_str(pick(rng, &["\t", "\n", "\r\n", " ", "é", "中", "\r"])),
            4 if !attribute => out.push_str(&format!("<![CDATA[{}]]>", pick(rng, ATTACKS))),
            5 if !attribute => out.push_str(pick(rng, &["<!-- c -->", "<?pi x?>", "<!---->"])),
            6 if rng.u8(..4) == 0 => out.push_str(pick(rng, &["&e;", "&", "]]>", "<", "&#0;", "&#xD800;"])),
            _ => out.push_str(pick(rng, &["a", "value", "x y"])),
        }
    }
}

fn xml_element(rng: &mut fastrand::Rng, depth: usize, out: &mut String) {
    let name = pick(rng, &["r", "a", "p:b", "x-y", "_z", "item"]);
    out.push('<');
    out.push_str(name);
    let mut names = vec![];
    for _ in 0..rng.usize(0..4) {
        let attr = pick(rng, &["id", "q", "p:q", "xmlns:p", "xmlns", "a", "xml:lang"]);
        if names.contains(&attr) && rng.u8(..4) != 0 {
            continue;
        }
        names.push(attr);
        let quote = if rng.bool() { '"' } else { '\'' };
        let mut v = String::new();
        xml_chars(rng, true, &mut v);
        if attr.starts_with("xmlns") {
            v = format!("urn:{}", v.len());
        }
        let v = v.replace(quote, if quote == '"' { "&quot;" } else { "&apos;" });
        out.push_str(&format!("{}{attr}{}={quote}{v}{quote}", pick(rng, &[" ", "\n", "\t "]), pick(rng, &["", " "])));
    }
    if depth > 3 || rng.u8(..5) == 0 {
        out.push_str(pick(rng, &["/>", " />"]));
        return;
    }
    out.push('>');
    for _ in 0..rng.usize(0..4) {
        if rng.bool() {
            xml_element(rng, depth + 1, out);
        } else {
            xml_chars(rng, false, out);
        }
    }
    out.push_str(&format!("</{name}>"));
}

fn xml_case(rng: &mut fastrand::Rng) -> Vec<u8> {
    let mut doc = String::new();
    let decl = rng.u8(..8);
    match decl {
        0 => doc.push_str("<?xml version=\"1.0\"?>"),
        1 => doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n"),
        2 => doc.push_str("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"),
        3 => doc.push_str("<?xml version=\"1.0\" encoding=\"UTF-16\"?>"),
        _ => {}
    }
    match rng.u8(..12) {
        0 => doc.push_str(&format!("<!DOCTYPE r [<!ENTITY e \"{}\">]>", ATTACKS[0])),
        1 => doc.push_str(&format!("<!DOCTYPE r [<!ATTLIST r d CDATA \"{}\">]>", ATTACKS[2])),
        2 => doc.push_str("<!DOCTYPE r>"),
        _ => {}
    }
    if rng.u8(..6) == 0 {
        doc.push_str(pick(rng, &["<!-- c -->", "\n", "<?pi?>"]));
    }
    xml_element(rng, 0, &mut doc);
    if rng.u8(..6) == 0 {
        doc.push_str(pick(rng, &["\n", "<!-- c -->", "<x/>", "text"]));
    }
    let mut body = match decl {
        2 => doc.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect(),
        3 => utf16(&doc, true, true),
        _ => doc.into_bytes(),
    };
    if rng.u8(..10) == 0 {
        mutate(rng, &mut body, b"<>&\"'=/;! ");
    }
    body
}

#[test]
fn xml_values_expat_reads_are_seen() {
    let seed = seed(0x786d_6c00);
    let mut rng = fastrand::Rng::with_seed(seed);
    let cases: Vec<Case> = (0..case_count())
        .map(|_| {
            let content_type = pick(&mut rng, &["application/xml", "text/xml", "application/soap+xml"]);
            Case { content_type: content_type.to_string(), body: xml_case(&mut rng) }
        })
        .collect();
    check("XML", seed, &cases, &[("python ElementTree", "python3", &format!("{PY_PRELUDE}{PY_XML}"))]);
}
