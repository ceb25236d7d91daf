//! What the host keeps of a plugin's answer: a step's output parsed as
//! JSON and cleaned for the stores, and text (log lines, errors,
//! descriptions) made safe to keep and to log.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova::plugins::text::clean;
use nova::store::RawJson;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);

    // Text: no line breaks or control characters survive, and it is cut
    // to the length asked for.
    let max = 16 + usize::from(first) * 4;
    let cleaned = clean(&text, max);
    assert!(cleaned.len() <= max, "{} > {max}", cleaned.len());
    assert!(
        !cleaned
            .chars()
            .any(|c| (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}')),
        "{cleaned:?}"
    );

    // Output: parsed once, kept as text. What the stores would refuse (a
    // NUL, a lone surrogate) is found, and cleaning removes it; after
    // that, every JSON reader takes it.
    if let Ok(raw) = RawJson::parse(text.as_ref()) {
        let problem = raw.problem();
        let cleaned = raw.clone().cleaned();
        assert!(cleaned.problem().is_none(), "{cleaned}");
        let again: serde_json::Value =
            serde_json::from_str(cleaned.get()).expect("cleaned is JSON every reader takes");
        if problem.is_none() {
            assert_eq!(cleaned, raw);
            let value: serde_json::Value =
                serde_json::from_str(raw.get()).expect("what parsed is JSON");
            assert_eq!(again, value);
        }
    }
});
