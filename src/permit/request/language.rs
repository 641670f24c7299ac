//! The language a text is written in, for answering in it (`language = "auto"`).

use super::keywords::keyword;
use crate::permit::templates::Language;

/// Letters only the Azerbaijani Cyrillic alphabet has (still written by older people).
fn azerbaijani_cyrillic(c: char) -> bool {
    matches!(
        c,
        'Ә' | 'ә'
            | 'Ғ'
            | 'ғ'
            | 'Ҹ'
            | 'ҹ'
            | 'Һ'
            | 'һ'
            | 'Ө'
            | 'ө'
            | 'Ү'
            | 'ү'
            | 'Ҝ'
            | 'ҝ'
            | 'Ј'
            | 'ј'
    )
}

/// Cyrillic letters with a Latin twin: typed for a series on a Russian layout by anyone.
fn cyrillic_look_alike(c: char) -> bool {
    matches!(
        c,
        'А' | 'а'
            | 'В'
            | 'в'
            | 'Е'
            | 'е'
            | 'К'
            | 'к'
            | 'М'
            | 'м'
            | 'Н'
            | 'н'
            | 'О'
            | 'о'
            | 'Р'
            | 'р'
            | 'С'
            | 'с'
            | 'Т'
            | 'т'
            | 'У'
            | 'у'
            | 'Х'
            | 'х'
            | 'І'
            | 'і'
    )
}

/// Letters of the Azerbaijani Latin alphabet beyond ASCII.
fn azerbaijani_latin(c: char) -> bool {
    matches!(
        c,
        'Ə' | 'ə' | 'Ğ' | 'ğ' | 'ı' | 'İ' | 'Ö' | 'ö' | 'Ü' | 'ü' | 'Ç' | 'ç' | 'Ş' | 'ş'
    )
}

/// The language of a citizen's text, or `None` when nothing in it tells.
///
/// In order: a letter only Azerbaijani Cyrillic has (Ә, Ҹ, Һ…) is Azerbaijani; any other
/// Cyrillic letter without a Latin twin (Д, З, И, Ж, Я…, so also a series typed by sound,
/// `АЗЕ`) or a Russian keyword is Russian; an Azerbaijani letter (ə ğ ı ö ü ç ş) or
/// keyword (`salam`, `kömək`, `kod`) is Azerbaijani; Cyrillic look-alikes alone (`АZЕ`) are
/// Russian, unless Azerbaijani came first in that order; an English keyword (`help`,
/// `please`) is English. A text of only a code, a series and digits says nothing.
pub fn detect_language(text: &str) -> Option<Language> {
    let (mut ru, mut az, mut look_alike) = (false, false, false);
    for c in text.chars() {
        if azerbaijani_cyrillic(c) {
            return Some(Language::Az);
        }
        if ('\u{0400}'..='\u{04FF}').contains(&c) {
            if cyrillic_look_alike(c) {
                look_alike = true;
            } else {
                ru = true;
            }
        } else if azerbaijani_latin(c) {
            az = true;
        }
    }
    let mut en = false;
    for word in text.split(|c: char| {
        !c.is_alphanumeric() && c != '?' && !('\u{0300}'..='\u{036F}').contains(&c)
    }) {
        match keyword(word).and_then(|(_, lang)| lang) {
            Some(Language::Ru) => ru = true,
            Some(Language::Az) => az = true,
            Some(Language::En) => en = true,
            None => {}
        }
    }
    if ru {
        Some(Language::Ru)
    } else if az {
        Some(Language::Az)
    } else if look_alike {
        Some(Language::Ru)
    } else if en {
        Some(Language::En)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_from_letters_and_words() {
        let cases: &[(&str, Option<Language>)] = &[
            ("2 AZE 11111111", None),
            ("", None),
            ("2 АЗЕ 11111111", Some(Language::Ru)),
            ("2 АZЕ 11111111", Some(Language::Ru)),
            ("Код 2 AZE 11111111", Some(Language::Ru)),
            ("помощь", Some(Language::Ru)),
            ("2 AZE 11111111 пожалуйста", Some(Language::Ru)),
            ("2 MYİ 1234567", Some(Language::Az)),
            ("2 myı 1234567", Some(Language::Az)),
            ("kömək", Some(Language::Az)),
            ("Salam 2 AZE 11111111", Some(Language::Az)),
            ("kod 2 aze 11111111", Some(Language::Az)),
            ("2 АZЕ 11111111 sağ olun", Some(Language::Az)),
            ("2 AZE 11111111 Һ", Some(Language::Az)),
            ("help", Some(Language::En)),
            ("2 AZE 11111111 please", Some(Language::En)),
            ("Code 2 AZE 11111111", Some(Language::En)),
            ("status AZE 11111111", None),
            ("😀", None),
            ("bazar", None),
        ];
        for (text, want) in cases {
            assert_eq!(detect_language(text), *want, "{text:?}");
        }
    }
}
