//! Citizens' texts: what each phone sends, spelled the ways people spell it, and what the
//! gateway must make of it.
//!
//! Every text is built from an intent (this code for this document, or this particular
//! mistake), so its expected reading is known by construction, never by parsing: the
//! simulator has no parser that could share a bug with the gateway's. The spellings follow
//! the gateway's documented reading (README and DESIGN.md): case, spacing, separators inside
//! the number, the dotted and dotless i, Cyrillic look-alikes, full-width digits, trailing
//! plates and words. Tails that start with digits are only added where the documented rule
//! ("a digit group joins the number while the total stays within the kind's largest count")
//! cannot pull them into the number.

use crate::families;
use crate::population::Population;
use crate::rng::{Rng, mix};
use crate::rules::{Kind, Rules};
use crate::shapes::{Shape, Shapes};
use std::collections::VecDeque;

mod asking;
mod mistakes;

/// Why a text is no request: the gateway's reply keys for parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Nothing but whitespace.
    Empty,
    /// Does not start with a code.
    NoCode,
    /// Starts with a number that is no code.
    UnknownCode,
    /// A code and no series.
    NoDocument,
    /// A word that is no document series.
    UnknownSeries,
    /// A series and no number.
    NoNumber,
    /// A number with a digit count the kind does not allow.
    WrongDigitCount,
    /// Two different codes: which one is meant cannot be guessed.
    TwoCodes,
    /// A number between two series that fits both.
    AmbiguousNumber,
    /// More documents than one SMS may name.
    TooManyDocuments,
}

impl Reason {
    /// Every reason.
    pub const ALL: [Reason; 10] = [
        Reason::Empty,
        Reason::NoCode,
        Reason::UnknownCode,
        Reason::NoDocument,
        Reason::UnknownSeries,
        Reason::NoNumber,
        Reason::WrongDigitCount,
        Reason::TwoCodes,
        Reason::AmbiguousNumber,
        Reason::TooManyDocuments,
    ];

    /// The reply key (and the gateway's `reason`) for this mistake.
    pub fn key(self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::NoCode => "no_code",
            Reason::UnknownCode => "unknown_code",
            Reason::NoDocument => "no_document",
            Reason::UnknownSeries => "unknown_series",
            Reason::NoNumber => "no_number",
            Reason::WrongDigitCount => "wrong_digit_count",
            Reason::TwoCodes => "two_codes",
            Reason::AmbiguousNumber => "ambiguous_number",
            Reason::TooManyDocuments => "too_many_documents",
        }
    }
}

/// What the gateway must make of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A request: this code for this document; the decision depends on the rules and on what
    /// came before.
    Request {
        /// Document index in the population.
        doc: u32,
        /// The permit code.
        code: u8,
    },
    /// A family: this code for each of these documents (distinct, in text order), one reply
    /// listing each document's outcome.
    Family(Family),
    /// Not a request, for this reason.
    Invalid(Reason),
    /// A help word: the usage reply.
    Help,
    /// A status request for these documents (the family's code unused): each listed with
    /// its permits of today if the phone is the one that asked for them, else as none.
    Status(Family),
}

/// Most documents of a family text: a household's size (the population's households have
/// one to five documents).
pub const FAMILY_MAX: usize = 5;

/// The documents of a family text, inline so that [`Expect`] stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    /// The permit code, one for all.
    pub code: u8,
    docs: [u32; FAMILY_MAX],
    len: u8,
}

impl Family {
    /// A family of `docs` (at most [`FAMILY_MAX`]; more are cut) for `code`.
    pub fn new(code: u8, docs: &[u32]) -> Family {
        let mut f = Family {
            code,
            docs: [0; FAMILY_MAX],
            len: docs.len().min(FAMILY_MAX) as u8,
        };
        f.docs[..usize::from(f.len)].copy_from_slice(&docs[..usize::from(f.len)]);
        f
    }

    /// The documents, in text order.
    pub fn docs(&self) -> &[u32] {
        &self.docs[..usize::from(self.len)]
    }
}

impl Expect {
    /// Whether the text asks for `code` for `doc` (alone or in a family).
    pub fn asks(&self, doc: u32, code: u8) -> bool {
        match self {
            Expect::Request { doc: d, code: c } => *d == doc && *c == code,
            Expect::Family(f) => f.code == code && f.docs().contains(&doc),
            // A status lists what was granted before it: no request for its documents may
            // be in flight beside it, from any code.
            Expect::Status(f) => f.docs().contains(&doc),
            Expect::Invalid(_) | Expect::Help => false,
        }
    }
}

/// Where a text came from in the traffic model, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// A request spelled as the instructions say.
    Clean,
    /// A request spelled as people type it.
    Messy,
    /// A request in one of the newer shapes (order, words, keyboards, mangled letters…).
    Shaped(Shape),
    /// Several documents of one household in one text.
    Family,
    /// A help word.
    Help,
    /// A status request from the phone that asks for the documents.
    Status,
    /// A status request from another phone (it must learn nothing).
    Stranger,
    /// The same request again (while the permit is active, as a rule).
    Repeat,
    /// An abuser: code 3 again and again, or code 2 twice a day.
    Abuse,
    /// A request for a document on the blocklist.
    Blocklisted,
    /// A text that is no request.
    Invalid,
}

impl Origin {
    /// A name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Clean => "clean",
            Origin::Messy => "messy",
            Origin::Shaped(Shape::Order) => "shaped:order",
            Origin::Shaped(Shape::Words) => "shaped:words",
            Origin::Shaped(Shape::Separators) => "shaped:separators",
            Origin::Shaped(Shape::Keyboard) => "shaped:keyboard",
            Origin::Shaped(Shape::Spread) => "shaped:spread",
            Origin::Shaped(Shape::LookDigits) => "shaped:look_digits",
            Origin::Shaped(Shape::Scripts) => "shaped:scripts",
            Origin::Shaped(Shape::Lost) => "shaped:lost",
            Origin::Family => "family",
            Origin::Help => "help",
            Origin::Status => "status",
            Origin::Stranger => "stranger",
            Origin::Repeat => "repeat",
            Origin::Abuse => "abuse",
            Origin::Blocklisted => "blocklisted",
            Origin::Invalid => "invalid",
        }
    }
}

/// One SMS a citizen sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sms {
    /// The sending phone.
    pub phone: u32,
    /// The text as typed.
    pub text: String,
    /// What the gateway must make of it.
    pub expect: Expect,
    /// Where it came from.
    pub origin: Origin,
}

/// Shares of the traffic model; the rest are clean or messy first requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mix {
    /// Texts that are no request (2020 saw 17–60% bad format on bad days, most of it
    /// fixable spellings, which count as `messy` here).
    pub invalid: f64,
    /// Of the requests, the share typed in some messy but valid spelling.
    pub messy: f64,
    /// The same request again.
    pub repeat: f64,
    /// Texts from abusers.
    pub abuse: f64,
    /// Requests for blocklisted documents (only if the rules have a blocklist).
    pub blocklisted: f64,
    /// Of the requests, the share typed in one of the newer shapes ([`Shape`]), picked by
    /// `shapes`' weights (taken before `messy`).
    pub shaped: f64,
    /// How often each shape is picked.
    pub shapes: Shapes,
    /// Texts naming several documents of the phone's household (phones with one document
    /// send a single request instead).
    pub family: f64,
    /// Help words.
    pub help: f64,
    /// Status requests, from the documents' own phone or (a third of them) a stranger's.
    pub status: f64,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            invalid: 0.10,
            messy: 0.35,
            repeat: 0.08,
            abuse: 0.02,
            blocklisted: 0.005,
            shaped: 0.25,
            shapes: Shapes::default(),
            family: 0.10,
            help: 0.01,
            status: 0.02,
        }
    }
}

/// How common each code is: mostly 2 (errands), some 1 (medical), a few 3 (funerals).
fn code_weight(code: u8) -> f64 {
    match code {
        2 => 0.80,
        1 => 0.15,
        3 => 0.05,
        _ => 0.02,
    }
}

/// Recent requests kept for repeats.
const RECENT: usize = 1024;
/// Tries to find a request whose phone has no identical one in flight before sending a text
/// that is no request instead.
const TRIES: usize = 4;

/// The citizens whose phones send through one bind: phone `p` belongs to bind
/// `p % owners`, so every request for a document goes through the same bind, in order.
#[derive(Debug)]
pub struct Citizens {
    rng: Rng,
    owner: u32,
    owners: u32,
    own_phones: u32,
    abusers: Vec<u32>,
    blocklisted: Vec<u32>,
    recent: VecDeque<(u32, u32, u8)>,
    codes: Vec<u8>,
    code_weights: Vec<f64>,
    unknown_codes: Vec<u32>,
    bad_series: Vec<&'static str>,
    mix: Mix,
}

impl Citizens {
    /// The citizens of bind `owner` of `owners`, with their own random stream.
    pub fn new(
        pop: &Population,
        rules: &Rules,
        seed: u64,
        owner: u32,
        owners: u32,
        shares: Mix,
    ) -> Self {
        let own_phones = (pop.phones() + owners - 1 - owner) / owners;
        let codes: Vec<u8> = rules.codes.iter().map(|c| c.code).collect();
        let code_weights = codes.iter().map(|&c| code_weight(c)).collect();
        let unknown_codes = [0u32, 4, 5, 6, 7, 8, 9, 12, 22, 99, 103]
            .into_iter()
            .filter(|c| !codes.iter().any(|&k| u32::from(k) == *c))
            .collect();
        let keys: Vec<&str> = rules.kinds.iter().map(|k| k.key.as_str()).collect();
        let bad_series = [
            "XYZ", "AB", "AZ", "AZEN", "PAS", "ŞƏK", "QQ", "ABC", "AZƏ", "BAK", "ID",
        ]
        .into_iter()
        .filter(|s| !keys.contains(&normalise_series(s).as_str()))
        .collect();
        Citizens {
            rng: Rng::new(mix(seed, 0xC171_2E45 + u64::from(owner))),
            owner,
            owners,
            own_phones,
            abusers: pop
                .abusers()
                .iter()
                .copied()
                .filter(|p| p % owners == owner)
                .collect(),
            blocklisted: pop
                .blocklisted()
                .iter()
                .copied()
                .filter(|&d| pop.owner(d) % owners == owner)
                .collect(),
            recent: VecDeque::with_capacity(RECENT),
            codes,
            code_weights,
            unknown_codes,
            bad_series,
            mix: shares,
        }
    }

    /// Whether this bind has any phone to send from.
    pub fn has_phones(&self) -> bool {
        self.own_phones > 0
    }

    fn phone(&mut self) -> u32 {
        self.rng.below(u64::from(self.own_phones)) as u32 * self.owners + self.owner
    }

    fn code(&mut self) -> u8 {
        let i = self.rng.weighted(&self.code_weights);
        self.codes.get(i).copied().unwrap_or(1)
    }

    /// The next text. `busy(phone, doc, code)` says whether the same request from the same
    /// phone is still unanswered: a person waits for the reply before asking again, and the
    /// oracle needs requests of one document to be told apart by what the reply echoes.
    pub fn next(
        &mut self,
        pop: &Population,
        rules: &Rules,
        busy: &dyn Fn(u32, u32, u8) -> bool,
    ) -> Sms {
        for _ in 0..TRIES {
            if let Some(sms) = self.try_next(pop, rules, busy) {
                return sms;
            }
        }
        let phone = self.phone();
        self.invalid(pop, rules, phone)
    }

    fn try_next(
        &mut self,
        pop: &Population,
        rules: &Rules,
        busy: &dyn Fn(u32, u32, u8) -> bool,
    ) -> Option<Sms> {
        let m = self.mix;
        let x = self.rng.unit();
        let asking = m.invalid + m.repeat + m.abuse + m.blocklisted;
        if x >= asking && x < asking + m.help {
            let phone = self.phone();
            return Some(self.help(phone));
        }
        let families = asking + m.help + m.family;
        if x >= families && x < families + m.status {
            return self.status(pop, rules, busy);
        }
        if x >= asking + m.help && x < asking + m.help + m.family {
            let phone = self.phone();
            if pop.docs_of(phone).len() >= 2 {
                return self.family(pop, rules, phone, busy);
            }
        }
        let (phone, doc, code, origin) = if x < m.invalid {
            let phone = self.phone();
            return Some(self.invalid(pop, rules, phone));
        } else if x < m.invalid + m.repeat && !self.recent.is_empty() {
            let i = self.rng.below(self.recent.len() as u64) as usize;
            let (p, d, c) = self.recent[i];
            (p, d, c, Origin::Repeat)
        } else if x < m.invalid + m.repeat + m.abuse && !self.abusers.is_empty() {
            let p = *self.rng.pick(&self.abusers)?;
            let doc = pop.docs_of(p).start;
            let has3 = self.codes.contains(&3);
            let code = if has3 && self.rng.chance(0.7) {
                3
            } else if self.codes.contains(&2) {
                2
            } else {
                self.code()
            };
            (p, doc, code, Origin::Abuse)
        } else if x < m.invalid + m.repeat + m.abuse + m.blocklisted && !self.blocklisted.is_empty()
        {
            let doc = *self.rng.pick(&self.blocklisted)?;
            let code = self.code();
            (pop.owner(doc), doc, code, Origin::Blocklisted)
        } else {
            let p = self.phone();
            let docs = pop.docs_of(p);
            let doc = docs.start + self.rng.below(u64::from(docs.end - docs.start)) as u32;
            let code = self.code();
            (p, doc, code, Origin::Clean)
        };
        if busy(phone, doc, code) {
            return None;
        }
        let (kind, number) = pop.document(doc);
        let kind = &rules.kinds[kind];
        let (text, spelled) = if self.rng.chance(m.shaped) {
            let (text, shape) = m
                .shapes
                .spell(&mut self.rng, code, kind, &number, &rules.kinds);
            (text, Origin::Shaped(shape))
        } else if self.rng.chance(m.messy) {
            (self.messy(code, kind, &number), Origin::Messy)
        } else {
            (format!("{code} {} {number}", kind.series), Origin::Clean)
        };
        if origin != Origin::Repeat {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back((phone, doc, code));
        }
        let origin = if origin == Origin::Clean {
            spelled
        } else {
            origin
        };
        Some(Sms {
            phone,
            text,
            expect: Expect::Request { doc, code },
            origin,
        })
    }

    /// Two or more documents of the phone's household (at most the rules' limit) in one
    /// text, in a random order; `None` if one of them has the same request unanswered.
    fn family(
        &mut self,
        pop: &Population,
        rules: &Rules,
        phone: u32,
        busy: &dyn Fn(u32, u32, u8) -> bool,
    ) -> Option<Sms> {
        let mut docs: Vec<u32> = pop.docs_of(phone).collect();
        for i in (1..docs.len()).rev() {
            docs.swap(i, self.rng.below(i as u64 + 1) as usize);
        }
        let most = docs.len().min(rules.max_documents).min(FAMILY_MAX);
        if most < 2 {
            return None;
        }
        docs.truncate(2 + self.rng.below(most as u64 - 1) as usize);
        let code = self.code();
        if docs.iter().any(|&d| busy(phone, d, code)) {
            return None;
        }
        let numbered: Vec<(usize, String)> = docs.iter().map(|&d| pop.document(d)).collect();
        let spelled: Vec<families::Doc> = numbered
            .iter()
            .map(|(k, n)| (&rules.kinds[*k], n.as_str()))
            .collect();
        let again = self.rng.chance(0.1);
        Some(Sms {
            phone,
            text: families::family(&mut self.rng, code, &spelled, again),
            expect: Expect::Family(Family::new(code, &docs)),
            origin: Origin::Family,
        })
    }

    /// A valid request in one to three of the spellings people use.
    fn messy(&mut self, code: u8, kind: &Kind, number: &str) -> String {
        let mut code_s = code.to_string();
        let mut sep1 = " ".to_string();
        let mut series = kind.series.clone();
        let mut sep2 = " ".to_string();
        let mut num = number.to_string();
        let mut tail = String::new();
        let (mut lead, mut trail) = ("", "");
        let tweaks = 1 + self.rng.below(3);
        for _ in 0..tweaks {
            match self.rng.below(10) {
                0 => series = self.case_and_i(&kind.key),
                1 => {
                    sep1.clear();
                    sep2.clear();
                    if self.rng.chance(0.5) {
                        series = series.to_lowercase();
                    }
                }
                2 => num = self.spaced(number),
                3 => series = self.dotted_i(&kind.key, &series),
                4 => series = self.cyrillic(&kind.key),
                5 => {
                    num = full_width(&num);
                    if self.rng.chance(0.5) {
                        code_s = full_width(&code_s);
                    }
                }
                6 => tail = self.plate(kind, number.len()),
                7 => tail = self.words(),
                8 => {
                    let (a, b) = *self
                        .rng
                        .pick(&[
                            (",", ","),
                            ("-", "-"),
                            (", ", ", "),
                            (" ", ": "),
                            ("\n", "\n"),
                        ])
                        .unwrap_or(&(" ", " "));
                    sep1 = a.into();
                    sep2 = b.into();
                }
                _ => {
                    (lead, trail) = *self
                        .rng
                        .pick(&[("  ", "  "), ("", "\n"), (" ", ""), ("", " ")])
                        .unwrap_or(&("", ""));
                    if self.rng.chance(0.3) {
                        code_s = format!("0{code_s}");
                    }
                }
            }
        }
        format!("{lead}{code_s}{sep1}{series}{sep2}{num}{tail}{trail}")
    }

    /// The series key in lower or mixed case, any `I` as one of i, ı, İ, I.
    fn case_and_i(&mut self, key: &str) -> String {
        let lower = self.rng.chance(0.6);
        key.chars()
            .map(|c| match c {
                'I' => *self.rng.pick(&['i', 'ı', 'İ', 'I']).unwrap_or(&'I'),
                c if lower || self.rng.chance(0.5) => c.to_ascii_lowercase(),
                c => c,
            })
            .collect()
    }

    /// The dotted/dotless i played out: only series with an I have one, the others get mixed
    /// case.
    fn dotted_i(&mut self, key: &str, printed: &str) -> String {
        if !key.contains('I') {
            return self.case_and_i(key);
        }
        let form = *self.rng.pick(&['ı', 'İ', 'i', 'I']).unwrap_or(&'I');
        printed
            .chars()
            .map(|c| if matches!(c, 'I' | 'İ') { form } else { c })
            .collect()
    }

    /// Latin letters swapped for Cyrillic look-alikes (at least one where any exists), as
    /// typed on a Russian layout.
    fn cyrillic(&mut self, key: &str) -> String {
        let lower = self.rng.chance(0.3);
        let mut swapped = false;
        let mut out: Vec<char> = key
            .chars()
            .map(|c| match look_alike(c) {
                Some(cy) if self.rng.chance(0.6) => {
                    swapped = true;
                    if lower {
                        cy.to_lowercase().next().unwrap_or(cy)
                    } else {
                        cy
                    }
                }
                _ => c,
            })
            .collect();
        if !swapped
            && let Some(i) = out.iter().position(|&c| look_alike(c).is_some())
            && let Some(cy) = look_alike(out[i])
        {
            out[i] = cy;
        }
        out.into_iter().collect()
    }

    /// The number in groups, split by spaces or one dash as people copy it from a card.
    fn spaced(&mut self, number: &str) -> String {
        let digits: Vec<char> = number.chars().collect();
        let n = digits.len();
        if n < 4 {
            return number.into();
        }
        let cuts: Vec<usize> = match self.rng.below(3) {
            0 => vec![n / 2],
            1 => vec![3],
            _ => (2..n).step_by(2).collect(),
        };
        let sep = *self.rng.pick(&[" ", " ", "-", " - ", "  "]).unwrap_or(&" ");
        let mut out = String::new();
        for (i, d) in digits.iter().enumerate() {
            if cuts.contains(&i) {
                out.push_str(sep);
            }
            out.push(*d);
        }
        out
    }

    /// A car plate after the number. The dashed form starts with a two-digit group, which
    /// the gateway would join to a number that still has room for two more digits, so that
    /// form is only used where the kind has no such room.
    fn plate(&mut self, kind: &Kind, digits: usize) -> String {
        let region = 10 + self.rng.below(90);
        let letters: String = (0..2)
            .map(|_| char::from(b'A' + self.rng.below(26) as u8))
            .collect();
        let tail = self.rng.below(1000);
        if usize::from(kind.max_digits()) < digits + 2 && self.rng.chance(0.5) {
            format!(" {region}-{letters}-{tail:03}")
        } else {
            format!(" {region}{letters}{tail:03}")
        }
    }

    /// Extra words after the number.
    fn words(&mut self) -> String {
        let w = *self
            .rng
            .pick(&[
                "bazar",
                "aptek",
                "market",
                "bank",
                "poçt",
                "ailə üçün",
                "təcili",
                "xahiş edirəm",
                "sağ olun",
                "ANAM UCUN",
            ])
            .unwrap_or(&"bazar");
        let sep = *self.rng.pick(&[" ", ", ", "  "]).unwrap_or(&" ");
        format!("{sep}{w}")
    }
}

/// The Cyrillic capital that looks like a Latin capital, where one exists.
fn look_alike(c: char) -> Option<char> {
    Some(match c {
        'A' => 'А',
        'B' => 'В',
        'E' => 'Е',
        'K' => 'К',
        'M' => 'М',
        'H' => 'Н',
        'O' => 'О',
        'P' => 'Р',
        'C' => 'С',
        'T' => 'Т',
        'Y' => 'У',
        'X' => 'Х',
        'I' => 'І',
        'S' => 'Ѕ',
        'J' => 'Ј',
        _ => return None,
    })
}

/// Full-width forms of ASCII digits and letters.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap_or(c),
            'A'..='Z' => char::from_u32(u32::from(c) - u32::from('A') + 0xFF21).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// How a typed series reads once case, i's and look-alikes are set aside; letters with no
/// Latin reading stay as they are and so never match a kind.
fn normalise_series(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'İ' | 'ı' | 'i' => 'I',
            c if c.is_ascii_alphabetic() => c.to_ascii_uppercase(),
            c => "ABEKMHOPCTYXISJ"
                .chars()
                .find(|&l| look_alike(l) == Some(c.to_uppercase().next().unwrap_or(c)))
                .unwrap_or(c),
        })
        .collect()
}

/// Whether a text needs UCS-2 (data_coding 8) rather than the default alphabet: anything
/// beyond ASCII does, as handsets do it.
pub fn needs_ucs2(text: &str) -> bool {
    !text.is_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rules() -> Rules {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
        Rules::load(&path).unwrap()
    }

    #[test]
    fn traffic_is_deterministic_and_mixed() {
        let r = rules();
        let pop = Population::new(&r, 5_000, 11).unwrap();
        let mut a = Citizens::new(&pop, &r, 11, 0, 2, Mix::default());
        let mut b = Citizens::new(&pop, &r, 11, 0, 2, Mix::default());
        let idle = |_: u32, _: u32, _: u8| false;
        let mut origins: BTreeMap<Origin, u32> = BTreeMap::new();
        let mut reasons: BTreeMap<Reason, u32> = BTreeMap::new();
        let mut ucs2 = 0;
        for _ in 0..20_000 {
            let s = a.next(&pop, &r, &idle);
            assert_eq!(s, b.next(&pop, &r, &idle));
            assert_eq!(s.phone % 2, 0, "phones of bind 0 only");
            *origins.entry(s.origin).or_default() += 1;
            if let Expect::Invalid(reason) = s.expect {
                *reasons.entry(reason).or_default() += 1;
            }
            if let Expect::Request { doc, .. } = s.expect {
                assert_eq!(pop.owner(doc), s.phone);
            }
            if let Expect::Family(f) = s.expect {
                assert!(f.docs().len() >= 2, "{s:?}");
                assert!(f.docs().iter().all(|&d| pop.owner(d) == s.phone));
                let mut distinct = f.docs().to_vec();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), f.docs().len(), "{s:?}");
            }
            ucs2 += usize::from(needs_ucs2(&s.text));
            // One short_message: 254 octets, so 127 UCS-2 units or 254 GSM septets.
            if needs_ucs2(&s.text) {
                assert!(s.text.encode_utf16().count() <= 127, "{:?}", s.text);
            } else {
                assert!(s.text.len() <= 254, "{:?}", s.text);
            }
        }
        let mut expected = vec![
            Origin::Clean,
            Origin::Messy,
            Origin::Repeat,
            Origin::Abuse,
            Origin::Invalid,
            Origin::Family,
            Origin::Help,
        ];
        expected.extend(Shape::ALL.map(Origin::Shaped));
        for o in expected {
            assert!(
                origins.get(&o).copied().unwrap_or(0) > 20,
                "{o:?}: {origins:?}"
            );
        }
        assert_eq!(reasons.len(), Reason::ALL.len(), "{reasons:?}");
        assert!(ucs2 > 1_000, "{ucs2}");
    }

    #[test]
    fn busy_requests_are_not_sent_twice() {
        let r = rules();
        let pop = Population::new(&r, 100, 2).unwrap();
        let mut c = Citizens::new(&pop, &r, 2, 0, 1, Mix::default());
        let all_busy = |_: u32, _: u32, _: u8| true;
        for _ in 0..200 {
            assert!(matches!(
                c.next(&pop, &r, &all_busy).expect,
                Expect::Invalid(_) | Expect::Help
            ));
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(full_width("2A9"), "２Ａ９");
        assert_eq!(normalise_series("МУІ"), "MYI");
        assert_eq!(normalise_series("ŞƏK"), "ŞƏK");
        assert_eq!(normalise_series("aze"), "AZE");
        assert!(needs_ucs2("2 MYİ 1234567") && !needs_ucs2("2 AZE 11111111"));
    }
}
