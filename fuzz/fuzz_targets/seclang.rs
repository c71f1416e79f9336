//! The SecLang loader and compiler: any text loads to a rule set or an
//! error naming a line, and a loaded set compiles or errs, never panics.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(set) = rampart_waf::seclang::load_str(&text, "fuzz.conf") {
        let _ = rampart_waf::engine::Engine::new(&set);
    }
});
