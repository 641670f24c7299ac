//! Texts that are no request, and the reason the gateway must give for each: every parse
//! refusal the gateway has a reply for, each made from a known mistake.

use super::{Citizens, Expect, Kind, Origin, Reason, Sms};
use crate::families;
use crate::population::Population;
use crate::rules::Rules;

impl Citizens {
    /// A text that is no request, with the reason the gateway must give.
    pub(super) fn invalid(&mut self, pop: &Population, rules: &Rules, phone: u32) -> Sms {
        let docs = pop.docs_of(phone);
        let doc = docs.start + self.rng.below(u64::from(docs.end - docs.start)) as u32;
        let (kind_i, number) = pop.document(doc);
        let kind = &rules.kinds[kind_i];
        let code = self.code();
        let series = kind.series.as_str();
        let mut reason = Reason::ALL[self
            .rng
            .weighted(&[0.5, 3.0, 1.5, 1.0, 1.0, 1.0, 2.0, 0.7, 0.7, 0.4])];
        let several = match reason {
            Reason::TwoCodes | Reason::AmbiguousNumber | Reason::TooManyDocuments => {
                let several = self.several(reason, pop, rules, phone, (kind, &number), code);
                if several.is_none() {
                    // These rules cannot make that mistake (one code, no two kinds
                    // sharing a digit count): the text carries no code instead.
                    reason = Reason::NoCode;
                }
                several
            }
            _ => None,
        };
        let others: Vec<&Kind> = rules.kinds.iter().filter(|k| k.key != kind.key).collect();
        let other = self.rng.pick(&others).copied();
        let text = match reason {
            _ if several.is_some() => several.unwrap_or_default(),
            // Beside a good document (a series alone, a number alone), as when one of a
            // household's documents is half typed.
            Reason::NoNumber if other.is_some() && self.rng.chance(0.4) => {
                let other = other.unwrap_or(kind);
                families::series_without_number(code, (kind, &number), other)
            }
            Reason::NoDocument if self.rng.chance(0.4) => {
                let room = usize::from(kind.max_digits()) - number.len().min(255);
                let lens: Vec<usize> = rules
                    .kinds
                    .iter()
                    .flat_map(|k| k.digits.iter().map(|&d| usize::from(d)))
                    .filter(|&d| d > room)
                    .collect();
                let n = self.rng.pick(&lens).copied().unwrap_or(room + 1);
                let extra = self.digits(n);
                families::number_without_series(code, (kind, &number), &extra)
            }
            Reason::Empty => self.rng.pick(&["", " ", "  \n"]).unwrap_or(&"").to_string(),
            // The gateway finds a code anywhere in the text (`AZE 11111111 2`, `Kod 2 AZE …`
            // are requests), so these carry none at all.
            Reason::NoCode => match self.rng.below(4) {
                0 => format!("{series} {number}"),
                1 => format!("{series}{number}"),
                2 => format!("Kod {series} {number}"),
                _ => self
                    .rng
                    .pick(&[
                        "salam",
                        "Salam, icazə necə alınır?",
                        "icazə lazımdır",
                        "Привет",
                        "Hello?",
                        "test",
                        "😀",
                        "...",
                        "Niyə cavab gəlmir?",
                    ])
                    .unwrap_or(&"salam")
                    .to_string(),
            },
            Reason::UnknownCode => {
                let c = self.rng.pick(&self.unknown_codes).copied().unwrap_or(7);
                format!("{c} {series} {number}")
            }
            Reason::NoDocument => match self.rng.below(3) {
                0 => format!("{code}"),
                1 => format!("{code} "),
                _ => format!("{code} {number}"),
            },
            Reason::UnknownSeries => {
                let s = self.rng.pick(&self.bad_series).copied().unwrap_or("XYZ");
                format!("{code} {s} {}", self.digits(7))
            }
            Reason::NoNumber => match self.rng.below(2) {
                0 => format!("{code} {series}"),
                _ => format!("{code} {series} bazar"),
            },
            Reason::WrongDigitCount => {
                let wrong: Vec<usize> = (1..=12).filter(|&n| !kind.accepts(n)).collect();
                let near = [
                    usize::from(kind.max_digits()) + 1,
                    1.max(usize::from(kind.digits.iter().copied().min().unwrap_or(1)) - 1),
                ];
                let n = if self.rng.chance(0.7) {
                    *self.rng.pick(&near).unwrap_or(&10)
                } else {
                    self.rng.pick(&wrong).copied().unwrap_or(10)
                };
                let n = if kind.accepts(n) { 10 } else { n };
                format!("{code} {series} {}", self.digits(n))
            }
            Reason::TwoCodes | Reason::AmbiguousNumber | Reason::TooManyDocuments => {
                "salam".to_string()
            }
        };
        Sms {
            phone,
            text,
            expect: Expect::Invalid(reason),
            origin: Origin::Invalid,
        }
    }

    /// The texts only several codes or documents can make wrong; `None` where these rules
    /// leave no way to make that mistake.
    fn several(
        &mut self,
        reason: Reason,
        pop: &Population,
        rules: &Rules,
        phone: u32,
        doc: families::Doc,
        code: u8,
    ) -> Option<String> {
        let (kind, number) = doc;
        match reason {
            Reason::TwoCodes => {
                let others: Vec<u8> = self.codes.iter().copied().filter(|&c| c != code).collect();
                let second = *self.rng.pick(&others)?;
                Some(families::two_codes(&mut self.rng, (code, second), doc))
            }
            Reason::AmbiguousNumber => {
                let both: Vec<&Kind> = rules
                    .kinds
                    .iter()
                    .filter(|k| k.key != kind.key && k.accepts(number.len()))
                    .collect();
                let other = *self.rng.pick(&both)?;
                Some(families::ambiguous(code, doc, other))
            }
            Reason::TooManyDocuments => {
                let mut docs: Vec<(usize, String)> =
                    pop.docs_of(phone).map(|d| pop.document(d)).collect();
                docs.truncate(rules.max_documents);
                // Made-up documents fill it up: nothing is decided for any of them.
                while docs.len() <= rules.max_documents {
                    let k = self.rng.below(rules.kinds.len() as u64) as usize;
                    let digits = *rules.kinds[k].digits.first()?;
                    let made = (k, self.digits(usize::from(digits)));
                    if !docs.contains(&made) {
                        docs.push(made);
                    }
                }
                let spelled: Vec<families::Doc> = docs
                    .iter()
                    .map(|(k, n)| (&rules.kinds[*k], n.as_str()))
                    .collect();
                Some(families::too_many(code, &spelled))
            }
            _ => None,
        }
    }

    pub(super) fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.rng.below(10) as u8))
            .collect()
    }
}
