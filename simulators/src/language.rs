//! The language a reply must be in: the one the gateway is configured to answer in, or,
//! under `language = "auto"`, the language of the citizen's text.
//!
//! The rule is the gateway's documented one (the rules file and README: "Cyrillic: ru;
//! Azerbaijani letters or words: az; English keywords: en", Azerbaijani Cyrillic letters
//! first, Cyrillic look-alikes alone as Russian, otherwise the default), applied here on
//! its own: by letters, and by the keywords among the words the simulator itself sends.

use crate::replies::Lang;
use anyhow::{Result, bail};

/// What the gateway answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyLanguage {
    /// Always this language.
    Fixed(Lang),
    /// The text's language, else this one.
    Auto(Lang),
}

impl ReplyLanguage {
    /// Reads `az`, `en`, `ru` or `auto` (whose fallback is `default`).
    pub fn parse(tag: &str, default: Lang) -> Result<ReplyLanguage> {
        Ok(match tag {
            "auto" => ReplyLanguage::Auto(default),
            "az" | "en" | "ru" => ReplyLanguage::Fixed(Lang::parse(tag)),
            other => bail!("--reply-language {other:?}: az, en, ru or auto"),
        })
    }

    /// Under `auto`, the fallback a rules file's `language` gives (`az` when it is `auto`
    /// too, or absent), as the gateway falls back to it.
    pub fn falling_back_to(self, rules_language: &str) -> ReplyLanguage {
        match (self, rules_language) {
            (ReplyLanguage::Auto(_), "en" | "ru" | "az") => {
                ReplyLanguage::Auto(Lang::parse(rules_language))
            }
            (ReplyLanguage::Auto(_), _) => ReplyLanguage::Auto(Lang::Az),
            (fixed, _) => fixed,
        }
    }

    /// The language the reply to `text` must be in.
    pub fn for_text(self, text: &str) -> Lang {
        match self {
            ReplyLanguage::Fixed(l) => l,
            ReplyLanguage::Auto(default) => text_language(text).unwrap_or(default),
        }
    }
}

/// Letters only the Azerbaijani Cyrillic alphabet has.
fn azerbaijani_cyrillic(c: char) -> bool {
    "ӘәҒғҸҹҺһӨөҮүҜҝЈј".contains(c)
}

/// Cyrillic letters with a Latin twin, typed for a series by anyone on a Russian layout.
fn look_alike(c: char) -> bool {
    "АаВвЕеКкМмНнОоРрСсТтУуХхІі".contains(c)
}

/// Letters of the Azerbaijani Latin alphabet beyond ASCII.
fn azerbaijani_latin(c: char) -> bool {
    "ƏəĞğıİÖöÜüÇçŞş".contains(c)
}

/// Keywords among the words the simulator sends, folded (lower case, Azerbaijani letters
/// to their Latin base), with their language. Words of no language (`info`, `status`,
/// `bazar`, `market`) are not listed.
const KEYWORDS: &[(&str, Lang)] = &[
    ("komek", Lang::Az),
    ("yardim", Lang::Az),
    ("kod", Lang::Az),
    ("kodu", Lang::Az),
    ("salam", Lang::Az),
    ("zehmet", Lang::Az),
    ("olmasa", Lang::Az),
    ("xahis", Lang::Az),
    ("edirem", Lang::Az),
    ("icaze", Lang::Az),
    ("sag", Lang::Az),
    ("olun", Lang::Az),
    ("tesekkur", Lang::Az),
    ("ve", Lang::Az),
    ("veziyyet", Lang::Az),
    ("yoxla", Lang::Az),
    ("help", Lang::En),
    ("please", Lang::En),
    ("hi", Lang::En),
    ("hello", Lang::En),
    ("code", Lang::En),
    ("thanks", Lang::En),
    ("and", Lang::En),
    // The one Russian keyword sent whose letters all have Latin twins; the others have a
    // letter without one (д, ж, п, з) and so read as Russian by letters alone.
    ("статус", Lang::Ru),
];

fn fold(c: char) -> char {
    match c {
        'İ' | 'ı' => 'i',
        'Ə' | 'ə' => 'e',
        'Ö' | 'ö' => 'o',
        'Ü' | 'ü' => 'u',
        'Ş' | 'ş' => 's',
        'Ç' | 'ç' => 'c',
        'Ğ' | 'ğ' => 'g',
        c => c.to_lowercase().next().unwrap_or(c),
    }
}

/// The language a text is written in, or `None` when nothing in it tells (a code, a
/// series and digits). In order: an Azerbaijani Cyrillic letter; another Cyrillic letter
/// without a Latin twin, or a Russian keyword; an Azerbaijani letter or keyword;
/// Cyrillic look-alikes; an English keyword.
pub fn text_language(text: &str) -> Option<Lang> {
    let (mut ru, mut az, mut looks) = (false, false, false);
    for c in text.chars() {
        if azerbaijani_cyrillic(c) {
            return Some(Lang::Az);
        }
        if ('\u{0400}'..='\u{04FF}').contains(&c) {
            if look_alike(c) {
                looks = true;
            } else {
                ru = true;
            }
        }
        az |= azerbaijani_latin(c);
    }
    let mut en = false;
    // A word is a run of letters and digits; one with digits (a car plate, `2aze`) is no
    // keyword.
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.chars().any(char::is_numeric) {
            continue;
        }
        let folded: String = word.chars().map(fold).collect();
        match KEYWORDS.iter().find(|(k, _)| *k == folded) {
            Some((_, Lang::Az)) => az = true,
            Some((_, Lang::En)) => en = true,
            Some((_, Lang::Ru)) => ru = true,
            _ => {}
        }
    }
    if ru {
        Some(Lang::Ru)
    } else if az {
        Some(Lang::Az)
    } else if looks {
        Some(Lang::Ru)
    } else if en {
        Some(Lang::En)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_tell_their_language_as_documented() {
        for (text, want) in [
            ("2 AZE 11111111", None),
            ("2 MYİ 1234567", Some(Lang::Az)),
            ("Salam 2 AZE 11111111", Some(Lang::Az)),
            ("Kod: 2 AA 1234567", Some(Lang::Az)),
            ("2 АЗЕ 11111111", Some(Lang::Ru)),
            ("код 2 AZE 11111111", Some(Lang::Ru)),
            ("2 АZЕ 11111111", Some(Lang::Ru)),
            ("2 АZЕ 11111111 sağ olun", Some(Lang::Az)),
            ("2 AZE 1111О111", Some(Lang::Ru)),
            ("please 2 AZE 11111111", Some(Lang::En)),
            ("Hello?", Some(Lang::En)),
            ("help", Some(Lang::En)),
            ("HELP", Some(Lang::En)),
            ("kömək", Some(Lang::Az)),
            ("komek", Some(Lang::Az)),
            ("помощь", Some(Lang::Ru)),
            ("info", None),
            ("?", None),
            ("2 AZE 11111111 market", None),
            ("2 ӘZE 11111111", Some(Lang::Az)),
            ("2 AZE 11111111 and AA 1234567", Some(Lang::En)),
            ("статус DYİ 2153155", Some(Lang::Ru)),
            ("vəziyyət AA 1234567", Some(Lang::Az)),
            ("yoxla AA 1234567", Some(Lang::Az)),
            // Letters of a car plate are no word.
            ("２ aze ３６８３２０４８ 18HI718", None),
        ] {
            assert_eq!(text_language(text), want, "{text:?}");
        }
        let auto = ReplyLanguage::parse("auto", Lang::Az).unwrap();
        assert_eq!(auto.for_text("2 AZE 11111111"), Lang::Az);
        assert_eq!(auto.for_text("help"), Lang::En);
        let en = ReplyLanguage::parse("en", Lang::Az).unwrap();
        assert_eq!(en.for_text("помощь"), Lang::En);
        assert!(ReplyLanguage::parse("de", Lang::Az).is_err());
    }
}
