//! Multipart bodies: the first line up to 70 bytes is the boundary, the
//! rest the body; parsing never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(0).min(70);
    let boundary = String::from_utf8_lossy(&data[..split]).into_owned();
    let body = data.get(split + 1..).unwrap_or(&[]);
    let _ = rampart_waf::body::multipart::parse(body, &boundary);
    let _ = rampart_waf::body::multipart::boundary(&String::from_utf8_lossy(data));
});
