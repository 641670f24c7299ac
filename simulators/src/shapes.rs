//! The shapes people type a request in beyond the instructions' `CODE SERIES NUMBER`: the
//! parts in another order, words around them, other separators, a Russian keyboard, the
//! series letters spread out, letters for digits in the number, digits of other scripts,
//! and `?` where an SMSC lost a letter.
//!
//! Each text is spelled from a known request (this code for this document), so what it
//! must read as is known by construction. The shapes follow the gateway's documented
//! reading (README, DESIGN.md and the parser's module documentation), not its code; where
//! that reading has a condition (a digit group after a number joins it while the total
//! stays within the kind's largest count; `?` only where one kind alone fits), the
//! spelling is chosen so the condition holds, and falls back to the plain text otherwise.

use crate::rng::Rng;
use crate::rules::Kind;
use anyhow::{Context, Result, bail};

/// A shape of a one-document request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// The code after the document, or the number before the series.
    Order,
    /// Greetings, "kod"/"код", "please" before the request and thanks after it.
    Words,
    /// Dashes, dots, commas, slashes, or nothing between the parts.
    Separators,
    /// The series typed on a Russian keyboard, by sound or by look.
    Keyboard,
    /// The letters of the series spread out (`A Z E`, `M.O.M`), or `M0M`.
    Spread,
    /// O or o for 0, l or I for 1 inside the number.
    LookDigits,
    /// The decimal digits of another script (Arabic-Indic, Devanagari, full-width, …).
    Scripts,
    /// `?` for an İ that an SMSC lost converting to GSM 7-bit (`2 MY?1234567`).
    Lost,
}

impl Shape {
    /// Every shape, in the order of [`Shapes`]' weights.
    pub const ALL: [Shape; 8] = [
        Shape::Order,
        Shape::Words,
        Shape::Separators,
        Shape::Keyboard,
        Shape::Spread,
        Shape::LookDigits,
        Shape::Scripts,
        Shape::Lost,
    ];

    /// The shape's name, as in `--shapes` and the report.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Order => "order",
            Shape::Words => "words",
            Shape::Separators => "separators",
            Shape::Keyboard => "keyboard",
            Shape::Spread => "spread",
            Shape::LookDigits => "look_digits",
            Shape::Scripts => "scripts",
            Shape::Lost => "lost",
        }
    }
}

/// How often each [`Shape`] is picked, relative to the others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shapes {
    /// One weight per [`Shape::ALL`] entry.
    pub weights: [f64; 8],
}

impl Default for Shapes {
    fn default() -> Self {
        Shapes {
            weights: [3.0, 3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0],
        }
    }
}

impl Shapes {
    /// Reads `order=3,words=1,lost=0`: the named weights replace the defaults.
    pub fn parse(s: &str) -> Result<Shapes> {
        let mut shapes = Shapes::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once('=')
                .with_context(|| format!("--shapes {part:?}: write NAME=WEIGHT"))?;
            let i = Shape::ALL
                .iter()
                .position(|s| s.name() == name.trim())
                .with_context(|| {
                    let names: Vec<&str> = Shape::ALL.iter().map(|s| s.name()).collect();
                    format!("--shapes: no shape {name:?}; shapes: {}", names.join(", "))
                })?;
            let w: f64 = weight
                .trim()
                .parse()
                .with_context(|| format!("--shapes {part:?}: the weight is no number"))?;
            if !(w >= 0.0 && w.is_finite()) {
                bail!("--shapes {part:?}: a weight is 0 or more");
            }
            shapes.weights[i] = w;
        }
        Ok(shapes)
    }

    /// A request for `code` and the document of `kind` with `number`, in one shape. The
    /// shape actually used comes back with the text (a shape whose condition does not hold
    /// for this document falls back to [`Shape::Words`], which always applies).
    pub fn spell(
        &self,
        rng: &mut Rng,
        code: u8,
        kind: &Kind,
        number: &str,
        kinds: &[Kind],
    ) -> (String, Shape) {
        let shape = Shape::ALL[rng.weighted(&self.weights)];
        let series = kind.series.as_str();
        let text = match shape {
            Shape::Order => Some(order(rng, code, series, number)),
            Shape::Words => None,
            Shape::Separators => Some(separators(rng, code, series, number)),
            Shape::Keyboard => keyboard(rng, &kind.key).map(|s| {
                let lead = if rng.chance(0.3) { "код " } else { "" };
                format!("{lead}{code} {s} {number}")
            }),
            Shape::Spread => spread(rng, kind).map(|s| format!("{code} {s} {number}")),
            Shape::LookDigits => look_digits(rng, number).map(|n| format!("{code} {series} {n}")),
            Shape::Scripts => Some(scripts(rng, code, series, number)),
            Shape::Lost => lost(rng, kind, kinds).map(|s| {
                let sep = if rng.chance(0.5) { "" } else { " " };
                format!("{code} {s}{sep}{number}")
            }),
        };
        match text {
            Some(text) => (text, shape),
            None => (words(rng, code, series, number), Shape::Words),
        }
    }
}

/// The code after the document (`AZE 11111111 2`, `AZE 1234567 kod 2`), or the number
/// before the series (`11111111 AZE 2`, `2 1234567 AA`). A code after a number is read as
/// the code even where the number has room for one more digit: with no other code in the
/// text, a last group that is a code and leaves the number whole is the code.
fn order(rng: &mut Rng, code: u8, series: &str, number: &str) -> String {
    match rng.below(5) {
        0 => format!("{series} {number} {code}"),
        1 => format!("{series}{number} {code}"),
        2 => format!("{series} {number} kod {code}"),
        3 => format!("{number} {series} {code}"),
        _ => format!("{code} {number} {series}"),
    }
}

/// Words before and after, all of one language.
fn words(rng: &mut Rng, code: u8, series: &str, number: &str) -> String {
    const BEFORE: [&[&str]; 3] = [
        &[
            "Salam",
            "Salam!",
            "Salam,",
            "Kod",
            "Kod:",
            "kodu",
            "zəhmət olmasa",
            "Salam, zəhmət olmasa",
            "Salam, kod",
        ],
        &["please", "Please,", "Hi", "hello", "Hello, code"],
        &["Код", "код", "Здравствуйте,", "пожалуйста", "Привет,"],
    ];
    const AFTER: [&[&str]; 3] = [
        &["zəhmət olmasa", "sağ olun", "təşəkkür"],
        &["thanks", "please"],
        &["спасибо", "пожалуйста"],
    ];
    let lang = rng.below(3) as usize;
    let before = rng.pick(BEFORE[lang]).copied().unwrap_or("Salam");
    let after = rng.pick(AFTER[lang]).copied().unwrap_or("");
    match rng.below(3) {
        0 => format!("{before} {code} {series} {number}"),
        1 => format!("{code} {series} {number} {after}"),
        _ => format!("{before} {code} {series} {number} {after}"),
    }
}

/// Other separators between the parts, or none.
fn separators(rng: &mut Rng, code: u8, series: &str, number: &str) -> String {
    const FIRST: [&str; 10] = ["", ",", "-", ".", ";", "/", " / ", "—", ", ", "\n"];
    const SECOND: [&str; 10] = ["", ",", "-", ";", "/", " / ", ": ", " №", "—", ", "];
    let a = rng.pick(&FIRST).copied().unwrap_or(" ");
    let b = rng.pick(&SECOND).copied().unwrap_or(" ");
    let end = if rng.chance(0.2) { "." } else { "" };
    format!("{code}{a}{series}{b}{number}{end}")
}

/// Cyrillic letters a Russian speaker types for a Latin one by its sound (`З` for Z, `Й`,
/// `Ы`, `Ю`, `У` for Y, `И` for I, `Э` for E, `Д` for D), look-alikes included.
fn by_sound(c: char) -> &'static [char] {
    match c {
        'A' => &['А'],
        'Z' => &['З'],
        'E' => &['Е', 'Э'],
        'M' => &['М'],
        'Y' => &['У', 'Й', 'Ы', 'Ю'],
        'I' => &['И', 'І'],
        'D' => &['Д'],
        'O' => &['О'],
        _ => &[],
    }
}

/// The series key typed on a Russian keyboard by sound (`АЗЕ`, `МУИ`, `ДЫИ`), in capitals
/// or small letters; `None` if a letter of the key has no Cyrillic spelling here.
fn keyboard(rng: &mut Rng, key: &str) -> Option<String> {
    let lower = rng.chance(0.35);
    let mut out = String::new();
    for c in key.chars() {
        let cy = *rng.pick(by_sound(c))?;
        if lower {
            out.extend(cy.to_lowercase());
        } else {
            out.push(cy);
        }
    }
    Some(out)
}

/// The letters of the series spread out by spaces or dots, partly (`AZ E`) or wholly;
/// `M0M` (a zero for the O) for a series whose middle letter is O. `None` for a
/// one-letter series.
fn spread(rng: &mut Rng, kind: &Kind) -> Option<String> {
    let letters: Vec<char> = kind.series.chars().collect();
    if letters.len() < 2 {
        return None;
    }
    if kind.key.len() == 3 && kind.key.as_bytes()[1] == b'O' && rng.chance(0.3) {
        return Some(format!("{}0{}", letters[0], letters[2]));
    }
    let sep = if rng.chance(0.3) { "." } else { " " };
    if letters.len() == 3 && sep == " " && rng.chance(0.3) {
        return Some(format!("{}{} {}", letters[0], letters[1], letters[2]));
    }
    let parts: Vec<String> = letters.iter().map(char::to_string).collect();
    Some(parts.join(sep))
}

/// One or two 0s of the number as O, o or a Cyrillic О, and 1s as l or I (one form per
/// number, as one person types it), never at its first position (where an I or l could
/// join the series), never two side by side, and only while three real digits stay;
/// `None` if the number has no such digit to spare. (Two side by side, `2 AA 33OO727`,
/// the gateway at 2ccb400 refuses as `no_number` although `1OO11111` reads: not sent
/// until that is settled.)
fn look_digits(rng: &mut Rng, number: &str) -> Option<String> {
    let mut digits: Vec<char> = number.chars().collect();
    let spots: Vec<usize> = (1..digits.len())
        .filter(|&i| matches!(digits[i], '0' | '1'))
        .collect();
    if spots.is_empty() || digits.len() < 4 {
        return None;
    }
    let zero = *rng.pick(&['O', 'o', 'О'])?;
    let one = *rng.pick(&['l', 'I'])?;
    let n = (1 + rng.below(2) as usize)
        .min(spots.len())
        .min(digits.len() - 3);
    let mut changed: Vec<usize> = Vec::new();
    for _ in 0..n {
        let i = *rng.pick(&spots)?;
        if changed.iter().any(|&j| j.abs_diff(i) <= 1) {
            continue;
        }
        changed.push(i);
        digits[i] = if digits[i] == '0' { zero } else { one };
    }
    Some(digits.into_iter().collect())
}

/// Zeros of scripts whose ten decimal digits follow each other in Unicode: Arabic-Indic,
/// Extended Arabic-Indic (Persian), Devanagari, Bengali, Thai, Tibetan, full-width and
/// mathematical bold.
const ZEROS: [u32; 8] = [
    0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x0F20, 0xFF10, 0x1D7CE,
];

/// ASCII digits in the script whose zero is `zero`.
fn in_script(s: &str, zero: u32) -> String {
    s.chars()
        .map(|c| match c.to_digit(10) {
            Some(d) if c.is_ascii_digit() => char::from_u32(zero + d).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// The number (and often the code) in another script's digits; sometimes only the first
/// half, the rest in ASCII after a space, as someone who switched keyboards midway.
fn scripts(rng: &mut Rng, code: u8, series: &str, number: &str) -> String {
    let zero = ZEROS[rng.below(ZEROS.len() as u64) as usize];
    let code_s = if rng.chance(0.5) {
        in_script(&code.to_string(), zero)
    } else {
        code.to_string()
    };
    let num = if number.len() >= 6 && rng.chance(0.25) {
        let (a, b) = number.split_at(number.len() / 2);
        format!("{} {b}", in_script(a, zero))
    } else {
        in_script(number, zero)
    };
    format!("{code_s} {series} {num}")
}

/// The series with one İ (or I) turned into `?`, as an SMSC that cannot send İ in GSM
/// 7-bit leaves it; only where no other kind of the rules fits the letters that remain
/// (`MY?` is MYİ alone, `?YI` could be MYİ or DYİ) and at most half are lost. `None` for a
/// series without an I or where the pattern is not unique.
fn lost(rng: &mut Rng, kind: &Kind, kinds: &[Kind]) -> Option<String> {
    let key: Vec<char> = kind.key.chars().collect();
    let spots: Vec<usize> = (0..key.len()).filter(|&i| key[i] == 'I').collect();
    if key.len() < 2 {
        return None;
    }
    let at = *rng.pick(&spots)?;
    let fits = |k: &Kind| {
        let other: Vec<char> = k.key.chars().collect();
        other.len() == key.len() && (0..key.len()).all(|i| i == at || other[i] == key[i])
    };
    if kinds.iter().filter(|k| fits(k)).count() != 1 {
        return None;
    }
    let lower = rng.chance(0.3);
    Some(
        key.iter()
            .enumerate()
            .map(|(i, &c)| match (i == at, lower) {
                (true, _) => '?',
                (false, true) => c.to_ascii_lowercase(),
                (false, false) => c,
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Rules;
    use std::collections::BTreeSet;

    fn kinds() -> Vec<Kind> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
        Rules::load(&path).unwrap().kinds
    }

    #[test]
    fn every_shape_is_sent_and_keeps_its_document() {
        let kinds = kinds();
        let shapes = Shapes::default();
        let mut rng = Rng::new(7);
        let mut seen = BTreeSet::new();
        for i in 0..5_000 {
            let kind = &kinds[i % kinds.len()];
            let number = if kind.key == "AZE" && i % 2 == 0 {
                "10203040"
            } else {
                "1020304"
            };
            let (text, shape) = shapes.spell(&mut rng, 2, kind, number, &kinds);
            seen.insert(shape);
            assert!(text.encode_utf16().count() <= 70, "{text:?}");
            // The number's digits are all there, in some script or mangled.
            let digits = text
                .chars()
                .filter(|c| c.is_numeric() || matches!(c, 'O' | 'o' | 'О' | 'l' | 'I'))
                .count();
            assert!(digits > number.len(), "{text:?} ({shape:?})");
        }
        assert_eq!(seen.len(), Shape::ALL.len(), "{seen:?}");
    }

    #[test]
    fn each_shape_spells_as_documented() {
        let kinds = kinds();
        let (aze, myi, mom) = (&kinds[0], &kinds[2], &kinds[4]);
        let mut rng = Rng::new(1);
        let sound: BTreeSet<String> = (0..200)
            .filter_map(|_| keyboard(&mut rng, &aze.key))
            .collect();
        assert!(sound.contains("АЗЕ") && sound.contains("азэ"), "{sound:?}");
        assert!(keyboard(&mut rng, "XQ").is_none());
        let lost_myi: BTreeSet<String> = (0..50)
            .filter_map(|_| lost(&mut rng, myi, &kinds))
            .collect();
        assert_eq!(
            lost_myi,
            ["MY?", "my?"].into_iter().map(String::from).collect()
        );
        assert!(lost(&mut rng, aze, &kinds).is_none(), "no İ to lose");
        // `?YI` would fit MYİ and DYİ: never sent.
        let two = vec![
            Kind {
                series: "MYİ".into(),
                key: "MYI".into(),
                digits: vec![7],
            },
            Kind {
                series: "MYA".into(),
                key: "MYA".into(),
                digits: vec![7],
            },
        ];
        assert!(lost(&mut rng, &two[0], &two).is_none());
        let spreads: BTreeSet<String> = (0..200).filter_map(|_| spread(&mut rng, mom)).collect();
        assert!(spreads.contains("M0M") && spreads.contains("M O M") && spreads.contains("M.O.M"));
        assert_eq!(look_digits(&mut rng, "2345678"), None, "no 0 or 1");
        for _ in 0..200 {
            let looked: Vec<char> = look_digits(&mut rng, "1000010").unwrap().chars().collect();
            assert!(looked[0] == '1' && looked.iter().any(|c| !c.is_ascii_digit()));
            let letters: std::collections::BTreeSet<char> = looked
                .iter()
                .copied()
                .filter(|c| matches!(c, 'O' | 'o' | 'О'))
                .collect();
            assert!(letters.len() <= 1, "one form of O per number: {looked:?}");
            assert!(
                looked
                    .windows(2)
                    .all(|w| w[0].is_ascii_digit() || w[1].is_ascii_digit()),
                "{looked:?}"
            );
        }
        assert_eq!(in_script("12", 0x0660), "١٢");
        assert_eq!(in_script("90", 0x1D7CE), "\u{1D7D7}\u{1D7CE}");
    }

    #[test]
    fn weights_parse_and_errors_name_the_option() {
        let s = Shapes::parse("order=0, lost=5").unwrap();
        assert_eq!(s.weights[0], 0.0);
        assert_eq!(s.weights[7], 5.0);
        assert_eq!(s.weights[1], Shapes::default().weights[1]);
        for bad in ["x=1", "order", "order=-1", "order=a"] {
            let e = Shapes::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--shapes"), "{e}");
        }
    }
}
