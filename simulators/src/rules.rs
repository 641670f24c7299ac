//! The simulator's own reading of a rules file (`config/rules.toml`).
//!
//! The oracle must not share code with the gateway it checks, so this module parses the
//! file with its own serde structs and keeps only what predicting a reply needs: the time
//! zone, document kinds, codes (validity, limits, groups, hours, on/off), the blocklist and
//! reply-template overrides. It is lenient about keys it does not need (names, labels,
//! reasons): the gateway's `check-config` is the place that rejects a bad file.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct RawRules {
    timezone: Option<String>,
    language: Option<String>,
    max_documents_per_sms: Option<i64>,
    max_documents_per_phone: Option<i64>,
    #[serde(default)]
    documents: Vec<RawDocument>,
    #[serde(default)]
    codes: BTreeMap<String, RawCode>,
    #[serde(default)]
    groups: BTreeMap<String, RawGroup>,
    #[serde(default)]
    blocklist: Vec<RawBlock>,
    #[serde(default)]
    replies: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct RawDocument {
    series: String,
    digits: Vec<u8>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Number(i64),
    Word(String),
}

#[derive(Debug, Deserialize)]
struct RawCode {
    #[serde(default = "yes")]
    enabled: bool,
    validity: String,
    daily_limit: Option<RawLimit>,
    group: Option<String>,
    hours: Option<String>,
    abuse_after: Option<i64>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
struct RawGroup {
    daily_limit: RawLimit,
}

#[derive(Debug, Deserialize)]
struct RawBlock {
    document: String,
    codes: Option<Vec<u8>>,
}

/// A document kind: how its series is printed (`MYİ`), its ASCII key (`MYI`) and the digit
/// counts a number may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kind {
    /// As printed in replies and in canonical texts.
    pub series: String,
    /// Upper-case ASCII letters; what every spelling of the series normalises to.
    pub key: String,
    /// Allowed digit counts, in the file's order (the first is the common one).
    pub digits: Vec<u8>,
}

impl Kind {
    /// The largest allowed digit count: a digit group after the number can join it only
    /// while the total stays within this, which decides which tails are safe to append.
    pub fn max_digits(&self) -> u8 {
        self.digits.iter().copied().max().unwrap_or(0)
    }

    /// Whether `n` digits make a number of this kind.
    pub fn accepts(&self, n: usize) -> bool {
        self.digits.iter().any(|&d| usize::from(d) == n)
    }
}

/// Local hours in which a code may be granted, seconds of the day; `from > until` wraps
/// midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hours {
    /// First allowed second.
    pub from: u32,
    /// First second no longer allowed.
    pub until: u32,
}

impl Hours {
    /// Whether a local second of the day is inside.
    pub fn contains(&self, second_of_day: u32) -> bool {
        if self.from <= self.until {
            (self.from..self.until).contains(&second_of_day)
        } else {
            second_of_day >= self.from || second_of_day < self.until
        }
    }

    fn parse(s: &str) -> Option<Hours> {
        let (a, b) = s.split_once(['-', '\u{2013}'])?;
        let hm = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.trim().parse().ok()?, m.trim().parse().ok()?);
            (h * 60 + m <= 24 * 60 && m < 60).then_some(h * 3600 + m * 60)
        };
        let (from, until) = (hm(a)?, hm(b)?);
        (from != until).then_some(Hours {
            from: from % 86_400,
            until,
        })
    }
}

/// A permit code as the oracle applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The number citizens type.
    pub code: u8,
    /// Switched-off codes are refused.
    pub enabled: bool,
    /// How long a permit lasts.
    pub validity_secs: u32,
    /// Index into [`Rules::groups`]: the quota group whose daily limit this code uses.
    pub group: usize,
    /// When it may be granted; `None` for any hour.
    pub hours: Option<Hours>,
    /// For a code without a daily limit: grants one document may have a day before the
    /// next is refused as abuse.
    pub abuse_after: Option<u32>,
}

/// A quota group: codes that share one daily limit (a code with its own limit is a group of
/// one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `code:N` for a code's own group, else the file's name.
    pub name: String,
    /// Grants per document per local day; `None` is unlimited.
    pub limit: Option<u32>,
}

/// A blocklist entry: a document (series key and digits) and the codes refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// Index into [`Rules::kinds`].
    pub kind: usize,
    /// The digits as listed (leading zeros matter).
    pub number: String,
    /// The codes refused; `None` is every code.
    pub codes: Option<Vec<u8>>,
}

/// What the simulator knows of a rules file.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Days and hours are in this zone.
    pub tz: chrono_tz::Tz,
    /// Document kinds, in the file's order.
    pub kinds: Vec<Kind>,
    /// Codes, ascending.
    pub codes: Vec<Code>,
    /// Quota groups.
    pub groups: Vec<Group>,
    /// The blocklist.
    pub blocklist: Vec<Block>,
    /// `[replies.LANG]` template overrides: language tag -> key -> text.
    pub replies: BTreeMap<String, BTreeMap<String, String>>,
    /// Most documents one text may name (`max_documents_per_sms`, default 5); a text with
    /// more is refused as a whole.
    pub max_documents: usize,
    /// The rules file's `language` (`az` when absent): what the gateway answers in unless
    /// an operator says otherwise, and the fallback of `auto`.
    pub language: String,
    /// Distinct documents one phone may get new permits for in a day
    /// (`max_documents_per_phone`); the next is refused as abuse.
    pub max_documents_per_phone: Option<u32>,
}

/// Normalises a printed series (`MYİ`, `myi`) to its ASCII key (`MYI`), as officials write
/// it in the file; `None` if it is no 1–4 Latin letters.
pub fn series_key(series: &str) -> Option<String> {
    let mut key = String::new();
    for c in series.chars() {
        match c {
            'İ' | 'ı' | 'i' | 'I' => key.push('I'),
            c if c.is_ascii_alphabetic() => key.push(c.to_ascii_uppercase()),
            _ => return None,
        }
    }
    (!key.is_empty() && key.len() <= 4).then_some(key)
}

/// Parses `3h`, `90m`, `2h30m`, `45s` into seconds.
pub fn parse_duration_secs(s: &str) -> Option<u32> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut any = false;
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
        any = true;
    }
    (any && digits.is_empty() && total > 0).then(|| u32::try_from(total).ok())?
}

fn limit(raw: &RawLimit, key: &str) -> Result<Option<u32>> {
    match raw {
        RawLimit::Number(n) if *n >= 1 && *n <= 65_535 => Ok(Some(*n as u32)),
        RawLimit::Word(w) if w == "unlimited" => Ok(None),
        _ => bail!("{key}: a daily limit is a number from 1 to 65535 or \"unlimited\""),
    }
}

impl Rules {
    /// Reads and parses a rules file.
    pub fn load(path: &Path) -> Result<Rules> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading rules file {}", path.display()))?;
        Rules::from_toml(&text).with_context(|| format!("in rules file {}", path.display()))
    }

    /// Parses a rules file's text.
    pub fn from_toml(text: &str) -> Result<Rules> {
        let raw: RawRules = toml::from_str(text).context("rules file does not parse")?;
        let tz_name = raw.timezone.as_deref().unwrap_or("Asia/Baku");
        let tz: chrono_tz::Tz = tz_name
            .parse()
            .map_err(|_| anyhow::anyhow!("timezone: unknown zone {tz_name:?}"))?;
        let mut kinds = Vec::new();
        for (i, d) in raw.documents.iter().enumerate() {
            let key = series_key(&d.series).with_context(|| {
                format!("documents[{i}].series: {:?} is not 1-4 letters", d.series)
            })?;
            if d.digits.is_empty() || d.digits.iter().any(|&n| n == 0 || n > 9) {
                bail!("documents[{i}].digits: digit counts are 1 to 9");
            }
            kinds.push(Kind {
                series: d.series.clone(),
                key,
                digits: d.digits.clone(),
            });
        }
        if kinds.is_empty() {
            bail!("documents: the rules name no document kind");
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut named: BTreeMap<String, usize> = BTreeMap::new();
        for (name, g) in &raw.groups {
            named.insert(name.clone(), groups.len());
            groups.push(Group {
                name: name.clone(),
                limit: limit(&g.daily_limit, &format!("groups.{name}.daily_limit"))?,
            });
        }
        let mut codes = Vec::new();
        for (k, c) in &raw.codes {
            let code: u8 = k
                .parse()
                .with_context(|| format!("codes.{k}: a code is a number from 0 to 255"))?;
            let validity_secs = parse_duration_secs(&c.validity)
                .with_context(|| format!("codes.{k}.validity: {:?} is no duration", c.validity))?;
            let group = match (&c.group, &c.daily_limit) {
                (Some(g), None) => *named
                    .get(g)
                    .with_context(|| format!("codes.{k}.group: no [groups.{g}]"))?,
                (None, Some(l)) => {
                    groups.push(Group {
                        name: format!("code:{code}"),
                        limit: limit(l, &format!("codes.{k}.daily_limit"))?,
                    });
                    groups.len() - 1
                }
                _ => bail!("codes.{k}: give either daily_limit or group"),
            };
            let hours = match &c.hours {
                None => None,
                Some(h) => Some(
                    Hours::parse(h)
                        .with_context(|| format!("codes.{k}.hours: {h:?} is not HH:MM-HH:MM"))?,
                ),
            };
            codes.push(Code {
                code,
                enabled: c.enabled,
                validity_secs,
                group,
                hours,
                abuse_after: match c.abuse_after {
                    None => None,
                    Some(n @ 1..=65_535) => Some(n as u32),
                    Some(_) => bail!("codes.{k}.abuse_after: 1 to 65535"),
                },
            });
        }
        if codes.is_empty() {
            bail!("codes: the rules define no code");
        }
        codes.sort_by_key(|c| c.code);
        let mut blocklist = Vec::new();
        for (i, b) in raw.blocklist.iter().enumerate() {
            let text = b.document.trim();
            let split = text
                .find(|c: char| c.is_ascii_digit())
                .with_context(|| format!("blocklist[{i}].document: no number"))?;
            let key = series_key(text[..split].trim())
                .with_context(|| format!("blocklist[{i}].document: bad series"))?;
            let number: String = text[split..].chars().filter(|c| *c != ' ').collect();
            let kind = kinds
                .iter()
                .position(|k| k.key == key)
                .with_context(|| format!("blocklist[{i}].document: unknown series {key}"))?;
            if !number.chars().all(|c| c.is_ascii_digit()) || !kinds[kind].accepts(number.len()) {
                bail!("blocklist[{i}].document: {text:?} is no {key} number");
            }
            blocklist.push(Block {
                kind,
                number,
                codes: b.codes.clone(),
            });
        }
        let max_documents = match raw.max_documents_per_sms {
            None => 5,
            Some(n @ 1..=10) => n as usize,
            Some(_) => bail!("max_documents_per_sms: 1 to 10"),
        };
        Ok(Rules {
            language: raw.language.unwrap_or_else(|| "az".into()),
            max_documents_per_phone: match raw.max_documents_per_phone {
                None => None,
                Some(n @ 1..=1000) => Some(n as u32),
                Some(_) => bail!("max_documents_per_phone: 1 to 1000"),
            },
            max_documents,
            tz,
            kinds,
            codes,
            groups,
            blocklist,
            replies: raw.replies,
        })
    }

    /// The index and rule of a code, if the rules define it.
    pub fn code(&self, code: u8) -> Option<(usize, &Code)> {
        self.codes.iter().enumerate().find(|(_, c)| c.code == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Rules {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
        Rules::load(&path).expect("shipped rules parse")
    }

    #[test]
    fn shipped_rules_read_as_the_gateway_documents_them() {
        let r = shipped();
        let keys: Vec<&str> = r.kinds.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, ["AZE", "AA", "MYI", "DYI", "MOM"]);
        assert_eq!(r.kinds[2].series, "MYİ");
        assert_eq!(r.kinds[0].digits, [8, 7]);
        let codes: Vec<u8> = r.codes.iter().map(|c| c.code).collect();
        assert_eq!(codes, [1, 2, 3]);
        assert!(r.codes.iter().all(|c| c.validity_secs == 3 * 3600));
        assert_eq!(r.groups[r.codes[1].group].limit, Some(1));
        assert_eq!(r.groups[r.codes[2].group].limit, None);
        assert_eq!(r.tz, chrono_tz::Asia::Baku);
        assert_eq!(r.max_documents, 5);
    }

    #[test]
    fn groups_hours_and_blocklist() {
        let r = Rules::from_toml(
            r#"
            [[documents]]
            series = "AZE"
            digits = [8, 7]
            [codes.1]
            name = "m"
            validity = "2h30m"
            group = "daily"
            hours = "22:00-06:00"
            [codes.2]
            name = "e"
            validity = "3h"
            group = "daily"
            enabled = false
            [groups.daily]
            daily_limit = 1
            [[blocklist]]
            document = "aze 9999 9999"
            codes = [3]
            "#,
        )
        .unwrap();
        assert_eq!(r.codes[0].group, r.codes[1].group);
        assert_eq!(r.codes[0].validity_secs, 9000);
        assert!(!r.codes[1].enabled);
        let h = r.codes[0].hours.unwrap();
        assert!(h.contains(23 * 3600) && h.contains(3600) && !h.contains(12 * 3600));
        assert_eq!(r.blocklist[0].number, "99999999");
        assert_eq!(r.blocklist[0].codes, Some(vec![3]));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("3h"), Some(10_800));
        assert_eq!(parse_duration_secs("90m"), Some(5_400));
        assert_eq!(parse_duration_secs("3 hours"), None);
        assert_eq!(parse_duration_secs("0h"), None);
    }
}
