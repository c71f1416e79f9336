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
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("XML parsing error at byte {}: {e}", reader.buffer_position())),
        }
        buf.clear();
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
        // white space normalised; the raw bytes when that fails.
        let v = a
            .normalized_value(quick_xml::XmlVersion::default())
            .map(|c| c.into_owned().into_bytes())
            .unwrap_or_else(|_| a.value.to_vec());
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
