//! The seeded population: documents of every kind the rules name, and the phones that ask
//! for them (one phone often asks for a whole family).
//!
//! Memory stays small at a million documents because nothing per document is stored: a
//! document's number is computed from its index through keyed bijections (affine maps modulo
//! `10^digits`), which also run backwards, so a number read in a reply or a blocklist maps
//! back to its index. What is stored is one `u32` per phone (where its documents start).
//!
//! Each document belongs to exactly one phone, and each phone sends through exactly one bind,
//! so the gateway sees the requests for any document in the order the simulator sent them:
//! that is what lets the oracle predict "granted" then "active" without guessing.

use crate::rng::{Rng, mix};
use crate::rules::Rules;
use anyhow::{Result, bail};
use std::ops::Range;

/// `x -> (a·x + b) mod m` with `a` invertible modulo `m`: a bijection on `0..m` that is cheap
/// both ways.
#[derive(Debug, Clone, Copy)]
struct Affine {
    a: u64,
    b: u64,
    m: u64,
    inv: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The inverse of `a` modulo `m` (`gcd(a, m) = 1`), by the extended Euclidean algorithm.
fn mod_inverse(a: u64, m: u64) -> u64 {
    let (mut old_r, mut r) = (i128::from(a), i128::from(m));
    let (mut old_s, mut s) = (1i128, 0i128);
    while r != 0 {
        let q = old_r / r;
        (old_r, r) = (r, old_r - q * r);
        (old_s, s) = (s, old_s - q * s);
    }
    old_s.rem_euclid(i128::from(m)) as u64
}

impl Affine {
    fn random(m: u64, rng: &mut Rng) -> Affine {
        if m <= 1 {
            return Affine {
                a: 0,
                b: 0,
                m: m.max(1),
                inv: 0,
            };
        }
        let a = loop {
            let a = 1 + rng.below(m - 1);
            if gcd(a, m) == 1 {
                break a;
            }
        };
        Affine {
            a,
            b: rng.below(m),
            m,
            inv: mod_inverse(a, m),
        }
    }

    /// `a·x mod m`. Every modulus here is below 2^32 (10^9 for numbers, a `u32` count for
    /// slots), so the product of two residues fits a `u64` and no 128-bit division (a
    /// library call) is needed; the `u128` path only guards larger moduli.
    fn mul(&self, a: u64, x: u64) -> u64 {
        if self.m <= 1 << 32 {
            (a % self.m) * (x % self.m) % self.m
        } else {
            ((u128::from(a) * u128::from(x)) % u128::from(self.m)) as u64
        }
    }

    fn apply(&self, x: u64) -> u64 {
        (self.mul(self.a, x) + self.b % self.m) % self.m
    }

    fn invert(&self, y: u64) -> u64 {
        let d = (y % self.m + self.m - self.b % self.m) % self.m;
        self.mul(self.inv, d)
    }
}

/// Documents of one kind with one digit count: a contiguous range of slots.
#[derive(Debug, Clone)]
struct DocClass {
    kind: usize,
    digits: u8,
    start: u32,
    count: u32,
    numbers: Affine,
}

/// Share of the population per document kind, by series key: the old and the biometric ID
/// cards dominate; residence permits and stay extensions are a few percent each.
fn kind_weight(key: &str) -> f64 {
    match key {
        "AZE" => 0.45,
        "AA" => 0.35,
        "MYI" => 0.07,
        "DYI" => 0.06,
        "MOM" => 0.07,
        _ => 0.05,
    }
}

/// Family sizes (documents per phone) 1 to 5 and how common each is.
const HOUSEHOLD: [f64; 5] = [0.45, 0.25, 0.15, 0.10, 0.05];

/// Mobile prefixes after 994 (Azercell 50/51, Bakcell 55, Nar 70/77).
const PREFIXES: [&str; 5] = ["50", "51", "55", "70", "77"];

/// Every document and phone of one simulation.
#[derive(Debug, Clone)]
pub struct Population {
    classes: Vec<DocClass>,
    /// Documents made from the seed; the blocklist's extra documents follow them.
    base: u32,
    slots: Affine,
    /// Documents named by the blocklist that the seeded ones do not include: (kind, number).
    extra: Vec<(usize, String)>,
    /// Phone `p` owns documents `starts[p]..starts[p + 1]`.
    starts: Vec<u32>,
    msisdns: Affine,
    abusers: Vec<u32>,
    blocklisted: Vec<u32>,
}

impl Population {
    /// `size` documents spread over the rules' kinds, grouped into households, each with a
    /// phone; plus one phone per blocklisted document not among them.
    pub fn new(rules: &Rules, size: u32, seed: u64) -> Result<Population> {
        if size == 0 {
            bail!("--population must be at least 1");
        }
        let mut rng = Rng::new(mix(seed, 0x5107));
        // Classes: per kind a weight, split 85/15 between its first digit count and the rest.
        let mut weights = Vec::new();
        for (k, kind) in rules.kinds.iter().enumerate() {
            let w = kind_weight(&kind.key);
            let n = kind.digits.len();
            for (i, &d) in kind.digits.iter().enumerate() {
                let share = if n == 1 {
                    1.0
                } else if i == 0 {
                    0.85
                } else {
                    0.15 / (n - 1) as f64
                };
                weights.push((k, d, w * share));
            }
        }
        let total: f64 = weights.iter().map(|w| w.2).sum();
        let mut counts: Vec<u32> = weights
            .iter()
            .map(|w| (f64::from(size) * w.2 / total).floor() as u32)
            .collect();
        let assigned: u32 = counts.iter().sum();
        if let Some(big) = (0..weights.len()).max_by(|&a, &b| weights[a].2.total_cmp(&weights[b].2))
        {
            counts[big] += size - assigned;
        }
        let mut classes = Vec::new();
        let mut start = 0u32;
        for (&(kind, digits, _), &count) in weights.iter().zip(&counts) {
            let space = 10u64.pow(u32::from(digits));
            if u64::from(count) > space {
                bail!(
                    "--population {size} needs {count} {} numbers of {digits} digits; only {space} exist",
                    rules.kinds[kind].series
                );
            }
            classes.push(DocClass {
                kind,
                digits,
                start,
                count,
                numbers: Affine::random(space, &mut rng),
            });
            start += count;
        }
        let slots = Affine::random(u64::from(size), &mut rng);
        let mut starts = Vec::with_capacity(size as usize / 2 + 2);
        let mut covered = 0u32;
        while covered < size {
            starts.push(covered);
            let family = rng.weighted(&HOUSEHOLD) as u32 + 1;
            covered += family.min(size - covered);
        }
        let mut pop = Population {
            classes,
            base: size,
            slots,
            extra: Vec::new(),
            starts,
            msisdns: Affine::random(10_000_000, &mut rng),
            abusers: Vec::new(),
            blocklisted: Vec::new(),
        };
        let mut blocklisted = Vec::new();
        for block in &rules.blocklist {
            let doc = match pop.index_of(block.kind, &block.number) {
                Some(doc) => doc,
                None => {
                    pop.starts.push(pop.base + pop.extra.len() as u32);
                    pop.extra.push((block.kind, block.number.clone()));
                    pop.base + pop.extra.len() as u32 - 1
                }
            };
            blocklisted.push(doc);
        }
        pop.starts.push(pop.base + pop.extra.len() as u32);
        if pop.phones() as u64 > 5 * 10_000_000 {
            bail!("--population {size} needs more phones than the number plan holds");
        }
        pop.blocklisted = blocklisted;
        // Abusers: 0.2% of phones, at least one.
        pop.abusers = (0..pop.phones())
            .filter(|&p| mix(seed ^ 0xAB05E, u64::from(p)) % 1000 < 2)
            .collect();
        if pop.abusers.is_empty() {
            pop.abusers.push(0);
        }
        Ok(pop)
    }

    /// Documents in all.
    pub fn documents(&self) -> u32 {
        self.base + self.extra.len() as u32
    }

    /// Phones in all.
    pub fn phones(&self) -> u32 {
        self.starts.len() as u32 - 1
    }

    /// The documents phone `p` asks for.
    pub fn docs_of(&self, phone: u32) -> Range<u32> {
        let p = phone as usize;
        match (self.starts.get(p), self.starts.get(p + 1)) {
            (Some(&a), Some(&b)) => a..b,
            _ => 0..0,
        }
    }

    /// Phones that send code 3 over and over, or code 2 twice a day.
    pub fn abusers(&self) -> &[u32] {
        &self.abusers
    }

    /// Documents on the rules' blocklist (all of them owned by some phone).
    pub fn blocklisted(&self) -> &[u32] {
        &self.blocklisted
    }

    /// The phone that owns a document (binary search over the household starts).
    pub fn owner(&self, doc: u32) -> u32 {
        (self.starts.partition_point(|&s| s <= doc) as u32).saturating_sub(1)
    }

    /// A document's kind (index into the rules' kinds) and its digits, zero-padded.
    pub fn document(&self, doc: u32) -> (usize, String) {
        if doc >= self.base {
            return self
                .extra
                .get((doc - self.base) as usize)
                .cloned()
                .unwrap_or((0, String::new()));
        }
        let slot = self.slots.apply(u64::from(doc)) as u32;
        let class = self
            .classes
            .iter()
            .find(|c| slot >= c.start && slot < c.start + c.count)
            .unwrap_or(&self.classes[0]);
        let number = class.numbers.apply(u64::from(slot - class.start));
        (
            class.kind,
            format!("{number:0width$}", width = usize::from(class.digits)),
        )
    }

    /// The index of the document of `kind` with these digits, if the population has it.
    pub fn index_of(&self, kind: usize, digits: &str) -> Option<u32> {
        let number: u64 = digits.parse().ok()?;
        for class in &self.classes {
            if class.kind != kind || usize::from(class.digits) != digits.len() {
                continue;
            }
            let j = class.numbers.invert(number);
            if j < u64::from(class.count) {
                return Some(self.slots.invert(u64::from(class.start) + j) as u32);
            }
        }
        self.extra
            .iter()
            .position(|(k, n)| *k == kind && n == digits)
            .map(|i| self.base + i as u32)
    }

    /// A phone's MSISDN, e.g. `994501234567`.
    pub fn msisdn(&self, phone: u32) -> String {
        let prefix = PREFIXES[phone as usize % PREFIXES.len()];
        let subscriber = self.msisdns.apply(u64::from(phone) / PREFIXES.len() as u64);
        format!("994{prefix}{subscriber:07}")
    }

    /// The phone with this MSISDN, if it is one of ours.
    pub fn phone_of(&self, msisdn: &[u8]) -> Option<u32> {
        if msisdn.len() != 12 || !msisdn.starts_with(b"994") {
            return None;
        }
        let prefix = PREFIXES
            .iter()
            .position(|p| p.as_bytes() == &msisdn[3..5])?;
        let mut subscriber = 0u64;
        for &b in &msisdn[5..] {
            if !b.is_ascii_digit() {
                return None;
            }
            subscriber = subscriber * 10 + u64::from(b - b'0');
        }
        let j = self.msisdns.invert(subscriber);
        let phone = j * PREFIXES.len() as u64 + prefix as u64;
        (phone < u64::from(self.phones())).then_some(phone as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn rules() -> Rules {
        Rules::from_toml(
            r#"
            [[documents]]
            series = "AZE"
            digits = [8, 7]
            [[documents]]
            series = "AA"
            digits = [7]
            [[documents]]
            series = "MYİ"
            digits = [7]
            [codes.2]
            validity = "3h"
            daily_limit = 1
            [[blocklist]]
            document = "AA 0000001"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn affine_maps_are_bijections() {
        let mut rng = Rng::new(5);
        for m in [1u64, 2, 10, 1000, 9_999_991, 100_000_000] {
            let f = Affine::random(m, &mut rng);
            for x in [0, 1, m / 2, m.saturating_sub(1)] {
                assert_eq!(f.invert(f.apply(x)), x % m, "m={m} x={x}");
            }
        }
    }

    #[test]
    fn documents_are_distinct_deterministic_and_invertible() {
        let r = rules();
        let pop = Population::new(&r, 20_000, 42).unwrap();
        let again = Population::new(&r, 20_000, 42).unwrap();
        let mut seen = HashSet::new();
        let mut kinds = [0u32; 3];
        for doc in 0..pop.documents() {
            let (kind, digits) = pop.document(doc);
            assert_eq!(again.document(doc), (kind, digits.clone()));
            assert!(r.kinds[kind].accepts(digits.len()), "{digits}");
            assert!(seen.insert((kind, digits.clone())), "duplicate {digits}");
            assert_eq!(pop.index_of(kind, &digits), Some(doc));
            kinds[kind] += 1;
        }
        assert!(kinds.iter().all(|&n| n > 0), "{kinds:?}");
        assert_ne!(
            Population::new(&r, 20_000, 43).unwrap().document(0),
            pop.document(0)
        );
    }

    #[test]
    fn phones_own_households_and_msisdns_round_trip() {
        let r = rules();
        let pop = Population::new(&r, 10_000, 1).unwrap();
        let mut covered = 0;
        for p in 0..pop.phones() {
            let docs = pop.docs_of(p);
            assert!(!docs.is_empty() && docs.len() <= 5);
            assert_eq!(docs.start, covered);
            covered = docs.end;
            for d in docs {
                assert_eq!(pop.owner(d), p);
            }
            let m = pop.msisdn(p);
            assert!(m.starts_with("994") && m.len() == 12, "{m}");
            assert_eq!(pop.phone_of(m.as_bytes()), Some(p));
        }
        assert_eq!(covered, pop.documents());
        assert!(pop.phones() > 3_000 && pop.phones() < 7_000);
        assert_eq!(pop.phone_of(b"994991234567"), None);
        assert!(!pop.abusers().is_empty());
        // The blocklisted document is someone's.
        let &b = pop.blocklisted().first().unwrap();
        assert_eq!(pop.document(b), (1, "0000001".to_string()));
    }

    #[test]
    fn a_million_documents_fit_in_little_memory() {
        let r = rules();
        let pop = Population::new(&r, 1_000_000, 9).unwrap();
        // One u32 per phone is all that is stored.
        assert!(pop.starts.len() < 600_000);
        let (kind, digits) = pop.document(999_999);
        assert_eq!(pop.index_of(kind, &digits), Some(999_999));
    }
}
