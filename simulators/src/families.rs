//! Texts that name several documents or codes: a household's family request, and the
//! refusals only such texts can earn (two codes, a number two series could own, a series
//! or a number left without its other half beside a good document, more documents than one
//! SMS may name).
//!
//! As everywhere in the simulator, a text is spelled from what it must mean; the spellings
//! keep to the gateway's documented reading (the parser's module documentation): a digit
//! group after a number joins it only across a plain space or one dash or dot and while
//! the total stays within the kind's largest digit count, so a code repeated before the
//! next document is set off by a comma or a line break, and a code after the last number
//! is read as the code because no other code is in the text.

use crate::rng::Rng;
use crate::rules::Kind;

/// One document of a text: its kind and its digits.
pub type Doc<'a> = (&'a Kind, &'a str);

/// A document as one person in the household writes it: the series as printed, in small
/// letters, or glued to the number.
fn one(rng: &mut Rng, (kind, number): Doc) -> String {
    match rng.below(4) {
        0 => format!("{}{number}", kind.series),
        1 => format!("{} {number}", kind.series.to_lowercase()),
        _ => format!("{} {number}", kind.series),
    }
}

/// A family request: `code` for each of `docs`, in this order (the documents distinct).
/// With `again`, the first document is named once more at the end, perhaps spelled
/// otherwise: the gateway counts it once, so the reply still lists `docs`. Such a text
/// keeps the code in front: with the code after the last number, the gateway (main at
/// 2ccb400) decides a repeated 7-digit AZE twice (`AZE 6819158 AZE 6819158 2`), which the
/// simulator does not send until that is fixed.
pub fn family(rng: &mut Rng, code: u8, docs: &[Doc], again: bool) -> String {
    const SEPS: [&str; 7] = [" ", ", ", "\n", " və ", " и ", " and ", "; "];
    let sep = *rng.pick(&SEPS).unwrap_or(&" ");
    let mut parts: Vec<String> = docs.iter().map(|&d| one(rng, d)).collect();
    if again && let Some(&first) = docs.first() {
        parts.push(one(rng, first));
    }
    match rng.below(5) {
        0 if !again => format!("{} {code}", parts.join(sep)),
        1 => {
            let sep = if rng.chance(0.5) { ", " } else { "\n" };
            let each: Vec<String> = parts.iter().map(|p| format!("{code} {p}")).collect();
            each.join(sep)
        }
        2 => format!("Salam, kod {code}{sep}{}", parts.join(sep)),
        _ => format!("{code}{sep}{}", parts.join(sep)),
    }
}

/// More documents than one SMS may name: `docs` is one more than the limit. The series is
/// written as its ASCII key, so that even ten documents fit one GSM 7-bit message.
pub fn too_many(code: u8, docs: &[Doc]) -> String {
    let parts: Vec<String> = docs
        .iter()
        .map(|(kind, number)| format!("{} {number}", kind.key))
        .collect();
    format!("{code} {}", parts.join(" "))
}

/// Two different codes for one document: both before it (`1 2 AZE 11111111`), or the
/// second after it where the number cannot take it as one more digit.
pub fn two_codes(rng: &mut Rng, codes: (u8, u8), (kind, number): Doc) -> String {
    let (a, b) = codes;
    let room = usize::from(kind.max_digits()) >= number.len() + b.to_string().len();
    if room || rng.chance(0.5) {
        format!("{a} {b} {} {number}", kind.series)
    } else {
        format!("{a} {} {number} {b}", kind.series)
    }
}

/// A number between two series that both take its digit count, glued to neither
/// (`2 AZE 1234567 AA`).
pub fn ambiguous(code: u8, (kind, number): Doc, other: &Kind) -> String {
    format!("{code} {} {number} {}", kind.series, other.series)
}

/// A good document and a known series without a number after it: the number glued to its
/// own series (`2 AA1234567 MOM`), so it cannot be the other's.
pub fn series_without_number(code: u8, (kind, number): Doc, other: &Kind) -> String {
    format!("{code} {}{number} {}", kind.series, other.series)
}

/// A good document and a number of `digits` digits with no series (`2 AZE 11111111
/// 7654321`); `digits` is too many to join the first number.
pub fn number_without_series(code: u8, (kind, number): Doc, extra: &str) -> String {
    format!("{code} {} {number} {extra}", kind.series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(series: &str, digits: &[u8]) -> Kind {
        Kind {
            series: series.into(),
            key: crate::rules::series_key(series).unwrap(),
            digits: digits.to_vec(),
        }
    }

    #[test]
    fn families_keep_their_documents_in_order() {
        let (aze, aa, myi) = (kind("AZE", &[8, 7]), kind("AA", &[7]), kind("MYİ", &[7]));
        let docs = [(&aze, "1234567"), (&aa, "7654321"), (&myi, "1111111")];
        let mut rng = Rng::new(3);
        let mut shapes = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let text = family(&mut rng, 2, &docs, false);
            let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{text:?}"));
            assert!(at("1234567") < at("7654321") && at("7654321") < at("1111111"));
            // A repeated code is set off by a comma or a line break, never a plain space
            // after a number that could take it.
            assert!(!text.contains("1234567 2 "), "{text:?}");
            shapes.insert(text.starts_with('2') as u8 * 2 + text.ends_with('2') as u8);
        }
        assert!(shapes.len() >= 2, "code before and after: {shapes:?}");
        let text = family(&mut rng, 2, &docs, true);
        assert_eq!(text.matches("1234567").count(), 2, "{text:?}");
        assert_eq!(too_many(2, &docs[..2]), "2 AZE 1234567 AA 7654321");
    }

    #[test]
    fn refusals_spell_as_documented() {
        let (aze, aa, mom) = (kind("AZE", &[8, 7]), kind("AA", &[7]), kind("MOM", &[7]));
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            let t = two_codes(&mut rng, (2, 3), (&aze, "1234567"));
            assert_eq!(t, "2 3 AZE 1234567", "7 digits have room for the 3");
            let t = two_codes(&mut rng, (2, 3), (&aze, "12345678"));
            assert!(t == "2 3 AZE 12345678" || t == "2 AZE 12345678 3", "{t}");
        }
        assert_eq!(ambiguous(2, (&aze, "1234567"), &aa), "2 AZE 1234567 AA");
        assert_eq!(
            series_without_number(2, (&aa, "1234567"), &mom),
            "2 AA1234567 MOM"
        );
        assert_eq!(
            number_without_series(2, (&aze, "11111111"), "7654321"),
            "2 AZE 11111111 7654321"
        );
    }
}
