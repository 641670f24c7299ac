//! The message parser, through its public entry point: `Rules::parser().parse(text)` with
//! the rules shipped in `config/rules.toml`.
//!
//! Kept small on purpose (the parser's insides change): never panic, an accepted text names
//! a code the rules have and reads back the same from its canonical form, `extra` stays
//! within its bound, and a refusal's echo stays short enough for one SMS.
#![no_main]

use icaze::permit::request::{MAX_ECHO_CHARS, MAX_EXTRA_BYTES, ParseError, Parsed};
use icaze::permit::rules::Rules;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static RULES: LazyLock<Rules> = LazyLock::new(|| {
    Rules::from_toml(include_str!("../../config/rules.toml")).expect("shipped rules load")
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parser = RULES.parser();
    match parser.parse(&text) {
        Ok(Parsed::Permits(requests)) => {
            for req in requests.as_slice() {
                assert!(
                    RULES.code(req.code).is_some(),
                    "accepted a code the rules lack"
                );
                assert!(req.extra.len() <= MAX_EXTRA_BYTES, "extra over its bound");
                let canonical = format!("{} {}", req.code, req.document);
                let again = parser.parse(&canonical).expect("canonical form parses");
                let again = again
                    .into_permits()
                    .expect("canonical form asks for a permit");
                let [one] = again.as_slice() else {
                    panic!("canonical form of one document read as several");
                };
                assert_eq!((one.code, one.document), (req.code, req.document));
                assert!(one.extra.is_empty());
            }
        }
        Ok(Parsed::Help | Parsed::Status(_)) => {}
        Err(e) => {
            assert!(!e.reason().is_empty());
            if let ParseError::UnknownSeries { series } = &e {
                assert!(series.chars().count() <= MAX_ECHO_CHARS, "echo too long");
            }
        }
    }
});
