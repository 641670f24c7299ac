//! The words people put around a request, and what they mean: asking for help, asking for
//! the status of a document, or only politeness ("salam", "kod", "пожалуйста").
//!
//! Words are compared folded: lower case, and the Azerbaijani letters read as their plain
//! Latin base (`kömək` = `komek`, `YARDIM` = `yardım` = `yardim`), a trailing `?` dropped.

use crate::permit::templates::Language;

/// What a word around a request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Meaning {
    /// Asks how the service works.
    Help,
    /// Asks which permits a document has today.
    Status,
    /// Politeness or the name of a part ("code", "please", "hello"): no meaning of its own.
    Filler,
}

/// Every keyword, folded, with its meaning and language (`None`: shared by languages);
/// help and status words first.
const KEYWORDS: &[(&str, Meaning, Option<Language>)] = &[
    ("komek", Meaning::Help, Some(Language::Az)),
    ("yardim", Meaning::Help, Some(Language::Az)),
    ("melumat", Meaning::Help, Some(Language::Az)),
    ("help", Meaning::Help, Some(Language::En)),
    ("info", Meaning::Help, None),
    ("помощь", Meaning::Help, Some(Language::Ru)),
    ("помогите", Meaning::Help, Some(Language::Ru)),
    ("справка", Meaning::Help, Some(Language::Ru)),
    ("status", Meaning::Status, None),
    ("veziyyet", Meaning::Status, Some(Language::Az)),
    ("yoxla", Meaning::Status, Some(Language::Az)),
    ("статус", Meaning::Status, Some(Language::Ru)),
    ("kod", Meaning::Filler, Some(Language::Az)),
    ("kodu", Meaning::Filler, Some(Language::Az)),
    ("salam", Meaning::Filler, Some(Language::Az)),
    ("zehmet", Meaning::Filler, Some(Language::Az)),
    ("olmasa", Meaning::Filler, Some(Language::Az)),
    ("xahis", Meaning::Filler, Some(Language::Az)),
    ("edirem", Meaning::Filler, Some(Language::Az)),
    ("icaze", Meaning::Filler, Some(Language::Az)),
    ("seriya", Meaning::Filler, Some(Language::Az)),
    ("nomre", Meaning::Filler, Some(Language::Az)),
    ("sag", Meaning::Filler, Some(Language::Az)),
    ("olun", Meaning::Filler, Some(Language::Az)),
    ("tesekkur", Meaning::Filler, Some(Language::Az)),
    ("ve", Meaning::Filler, Some(Language::Az)),
    ("code", Meaning::Filler, Some(Language::En)),
    ("please", Meaning::Filler, Some(Language::En)),
    ("pls", Meaning::Filler, Some(Language::En)),
    ("hello", Meaning::Filler, Some(Language::En)),
    ("hi", Meaning::Filler, Some(Language::En)),
    ("thanks", Meaning::Filler, Some(Language::En)),
    ("permit", Meaning::Filler, Some(Language::En)),
    ("and", Meaning::Filler, Some(Language::En)),
    ("код", Meaning::Filler, Some(Language::Ru)),
    ("пожалуйста", Meaning::Filler, Some(Language::Ru)),
    ("привет", Meaning::Filler, Some(Language::Ru)),
    ("здравствуйте", Meaning::Filler, Some(Language::Ru)),
    ("спасибо", Meaning::Filler, Some(Language::Ru)),
    ("разрешение", Meaning::Filler, Some(Language::Ru)),
    ("серия", Meaning::Filler, Some(Language::Ru)),
    ("номер", Meaning::Filler, Some(Language::Ru)),
    ("и", Meaning::Filler, Some(Language::Ru)),
];

/// One character folded for comparison: lower case, Azerbaijani and Turkish letters to
/// their Latin base, `ё` to `е`; `None` for a combining mark (skipped).
fn fold(c: char) -> Option<char> {
    Some(match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        'a'..='z' => c,
        'İ' | 'ı' => 'i',
        'Ə' | 'ə' => 'e',
        'Ö' | 'ö' => 'o',
        'Ü' | 'ü' => 'u',
        'Ş' | 'ş' => 's',
        'Ç' | 'ç' => 'c',
        'Ğ' | 'ğ' => 'g',
        'Ё' | 'ё' => 'е',
        '\u{0300}'..='\u{036F}' => return None,
        c => c.to_lowercase().next().unwrap_or(c),
    })
}

/// Whether `word` (as typed) folds to `keyword`.
fn folds_to(word: &str, keyword: &str) -> bool {
    let mut typed = word.chars().filter_map(fold);
    let mut want = keyword.chars();
    loop {
        match (typed.next(), want.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The meaning and language of a word, if it is a keyword. A trailing `?` (`Help?`) is
/// dropped.
// `starts_with(char)` calls memcmp per keyword; comparing the decoded first char is cheaper.
#[allow(clippy::chars_next_cmp)]
pub(super) fn keyword(word: &str) -> Option<(Meaning, Option<Language>)> {
    let word = word.trim_end_matches(['?', '？']);
    // The longest keyword, "здравствуйте", is 24 bytes; a word twice that is none.
    if word.len() > 48 {
        return None;
    }
    let first = word.chars().find_map(fold)?;
    KEYWORDS
        .iter()
        .filter(|(k, _, _)| k.chars().next() == Some(first))
        .find(|(k, _, _)| folds_to(word, k))
        .map(|&(_, meaning, lang)| (meaning, lang))
}

/// How many of [`KEYWORDS`] (the first ones) are help or status words.
const ASKING: usize = 12;

/// Whether a word asks for help or for a status ([`Meaning::Help`], [`Meaning::Status`]);
/// fillers are `None`. Cheap for most words: only the few asking keywords that start with
/// the same letter are compared.
#[allow(clippy::chars_next_cmp)]
pub(super) fn asks(word: &str) -> Option<Meaning> {
    let word = word.trim_end_matches(['?', '？']);
    if word.len() > 24 {
        return None;
    }
    let first = word.chars().find_map(fold)?;
    KEYWORDS[..ASKING]
        .iter()
        .filter(|(k, _, _)| k.chars().next() == Some(first))
        .find(|(k, _, _)| folds_to(word, k))
        .map(|&(_, meaning, _)| meaning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_asking_words_come_first() {
        assert!(KEYWORDS[..ASKING].iter().all(|k| k.1 != Meaning::Filler));
        assert!(KEYWORDS[ASKING..].iter().all(|k| k.1 == Meaning::Filler));
        assert_eq!(asks("Kömək?"), Some(Meaning::Help));
        assert_eq!(asks("статус"), Some(Meaning::Status));
        assert_eq!(asks("salam"), None);
    }

    #[test]
    fn keywords_fold_case_and_azerbaijani_letters() {
        for (word, meaning) in [
            ("kömək", Meaning::Help),
            ("KÖMƏK", Meaning::Help),
            ("komek", Meaning::Help),
            ("Yardım", Meaning::Help),
            ("YARDIM", Meaning::Help),
            ("help?", Meaning::Help),
            ("Помощь", Meaning::Help),
            ("СПРАВКА", Meaning::Help),
            ("vəziyyət", Meaning::Status),
            ("Статус", Meaning::Status),
            ("Kod", Meaning::Filler),
            ("КОД", Meaning::Filler),
            ("zəhmət", Meaning::Filler),
            ("пожалуйста", Meaning::Filler),
        ] {
            assert_eq!(keyword(word).map(|k| k.0), Some(meaning), "{word}");
        }
        for word in ["kömə", "helping", "AZE", "", "?"] {
            assert_eq!(keyword(word), None, "{word}");
        }
    }
}
