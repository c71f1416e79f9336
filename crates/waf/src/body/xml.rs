//! The XML body processor, for the `XML` variable as CRS reads it:
//! `XML:/*` is the text of every element, `XML://@*` every attribute
//! value. Entity references are decoded; external entities are never
//! fetched (none of them is resolved).
//!
//! Every attribute is read, duplicates included (parsers differ on which
//! one wins, so both are inspected, and a duplicate is no reason to stop
//! reading); at most [`MAX_ATTRIBUTES`] per element and [`MAX_DEPTH`]
//! levels, more is an error.
//!
//! `SecRule XML:/* "@rx <script" "id:1,deny"`

use quick_xml::events::Event;
use quick_xml::Reader;

use super::MAX_DEPTH;

/// Most attributes one element may carry.
pub const MAX_ATTRIBUTES: usize = 256;

/// What an XML body holds for the rules.
#[derive(Debug, Default, PartialEq)]
pub struct Xml {
    /// Text content of the elements, in document order.
    pub texts: Vec<Vec<u8>>,
    /// Attribute values, in document order.
    pub attributes: Vec<Vec<u8>>,
}

/// Parses a body, or says why it is not well-formed XML.
pub fn parse(body: &[u8]) -> Result<Xml, String> {
    parse_limited(body, usize::MAX)
}

/// [`parse`], with at most `max_values` attribute values and runs of text
/// (each costs the rules as much as an argument): more is an error, found
/// as soon as it is read.
pub fn parse_limited(body: &[u8], max_values: usize) -> Result<Xml, String> {
    let mut reader = Reader::from_reader(body);
    let mut out = Xml::default();
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    // Text arrives in pieces (entity references are separate events):
    // gathered here and kept per run of text.
    let mut text: Vec<u8> = Vec::new();
    let flush = |text: &mut Vec<u8>, out: &mut Xml| {
        if !text.iter().all(u8::is_ascii_whitespace) {
            out.texts.push(std::mem::take(text));
        }
        text.clear();
    };
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                flush(&mut text, &mut out);
                depth += 1;
                seen_root = true;
                if depth > MAX_DEPTH {
                    return Err(format!("XML nested deeper than {MAX_DEPTH}"));
                }
                attributes(&e, &mut out)?;
            }
            Ok(Event::Empty(e)) => {
                flush(&mut text, &mut out);
                seen_root = true;
                attributes(&e, &mut out)?;
            }
            Ok(Event::End(_)) => {
                flush(&mut text, &mut out);
                depth = depth.saturating_sub(1);
            }
            Ok(Event::Text(t)) => text.extend_from_slice(&t),
            Ok(Event::GeneralRef(r)) => {
                let name = String::from_utf8_lossy(&r).into_owned();
                match entity(&name) {
                    Some(c) => text.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                    None => text.extend_from_slice(format!("&{name};").as_bytes()),
                }
            }
            Ok(Event::CData(c)) => text.extend_from_slice(&c),
            // An internal DTD subset declares entities and default
            // attributes that the application's parser expands (expat,
            // libxml2) and this reader does not: what it holds would reach
            // the application uninspected.
            Ok(Event::DocType(d)) if d.contains(&b'[') => {
                return Err("XML with an internal DTD subset (entities, default attributes)".into());
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("XML parsing error at byte {}: {e}", reader.buffer_position())),
        }
        buf.clear();
        if out.texts.len() + out.attributes.len() > max_values {
            return Err(format!("XML with more than {max_values} values (attributes and texts)"));
        }
    }
    flush(&mut text, &mut out);
    if !seen_root {
        return Err("XML parsing error: no root element".into());
    }
    Ok(out)
}

/// The character of a predefined or numeric entity.
fn entity(name: &str) -> Option<char> {
    Some(match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(h) => u32::from_str_radix(h, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?
        }
    })
}

fn attributes(e: &quick_xml::events::BytesStart<'_>, out: &mut Xml) -> Result<(), String> {
    for (i, a) in e.attributes().with_checks(false).enumerate() {
        if i >= MAX_ATTRIBUTES {
            return Err(format!("XML element with more than {MAX_ATTRIBUTES} attributes"));
        }
        let a = a.map_err(|e| format!("XML parsing error: {e}"))?;
        // As an XML parser gives it to the application: entities decoded,
        // white space normalised. A value that is not UTF-8 (a body
        // declared ISO-8859-1) still has its entities decoded, or
        // `&lt;script>` would be inspected for `<script>`; one that cannot
        // be decoded is an error, as it is to the application's parser.
        let v = match a.normalized_value(quick_xml::XmlVersion::default()) {
            Ok(c) => c.into_owned().into_bytes(),
            Err(_) => {
                // Line ends, then each white space character, as a space
                // (XML 1.0 sections 2.11 and 3.3.3).
                let raw = String::from_utf8_lossy(&a.value).replace("\r\n", " ").replace(['\r', '\n', '\t'], " ");
                quick_xml::escape::unescape(&raw)
                    .map_err(|e| format!("XML parsing error: attribute value: {e}"))?
                    .into_owned()
                    .into_bytes()
            }
        };
        out.attributes.push(v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn texts_and_attributes() {
        let x = super::parse(br#"<?xml version="1.0"?><root><a probe="&lt;script&gt;">hi &amp; bye</a><b/></root>"#)
            .unwrap();
        assert_eq!(x.attributes, vec![b"<script>".to_vec()]);
        assert_eq!(x.texts, vec![b"hi & bye".to_vec()]);
        assert!(super::parse(b"<a><b></a>").is_err());
        assert!(super::parse(b"not xml").is_err());
        assert!(super::parse(br#"<!DOCTYPE r [<!ATTLIST r d CDATA "1' or 1=1--">]><r/>"#).is_err());
        assert!(super::parse(br#"<!DOCTYPE r [<!ENTITY e "1' or 1=1--">]><r>&e;</r>"#).is_err());
        assert!(super::parse(b"<!DOCTYPE r><r/>").is_ok());
        let latin1 = super::parse(b"<r a='&lt;script>\xe9'/>").unwrap();
        assert!(latin1.attributes[0].starts_with(b"<script>"), "{:?}", latin1.attributes);
    }

    #[test]
    fn duplicate_attributes_are_all_read_and_attributes_are_bounded() {
        let x = super::parse(br#"<a q="1' or 1=1--" q="1"/>"#).unwrap();
        assert_eq!(x.attributes, vec![b"1' or 1=1--".to_vec(), b"1".to_vec()]);
        let many: String = (0..90_000).map(|i| format!(" a{i}=\"x\"")).collect();
        let e = super::parse(format!("<r{many}/>").as_bytes()).unwrap_err();
        assert!(e.contains("more than 256 attributes"), "{e}");
    }
}
