//! Any bytes as a config file: the loader must answer Ok or a list of errors,
//! never panic, whatever the YAML.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let env = |k: &str| if k == "SET" { Some("4317".to_string()) } else { None };
        let _ = sluice::config::load(text, &env);
    }
});
