//! Reading a text's tokens: which words are series and which numbers belong to them, which
//! number is the code, what the other words mean, and the one problem to report when the
//! text is no request. The rules are the module documentation's (`request/mod.rs`).

use super::keywords::{Meaning, asks, keyword};
use super::series::{KindKey, Letters, kind_of};
use super::tokens::{Class, Gap, Role, TOKEN_CHARS, Token, Tokens};
use super::{MAX_ECHO_CHARS, OneOrMore, ParseError, Parsed, Parser, PermitRequest, extra};
use crate::permit::document::{Document, MAX_DIGITS};

/// Documents one text may name before the reader stops collecting (the limit in force is
/// [`Parser::max_documents`], at most this).
pub(super) const MAX_DOCUMENTS: usize = 10;

/// A document found in the text.
#[derive(Debug, Clone, Copy)]
struct Found {
    document: Document,
    /// Index of its kind.
    kind: usize,
    /// Index of its number's first and last token.
    number: (usize, usize),
    /// The number without its last group, when that group could be the code instead
    /// (`AZE 1234567 2`): the shorter total and its last token.
    shorter: Option<(Document, usize)>,
}

/// A series read at a token: the kind, the index after its tokens, and a digit its last
/// letter stood for (`AZEO1234567`).
struct SeriesAt {
    kind: usize,
    after: usize,
    lead: Option<u8>,
}

/// A number read after a series.
struct NumberAt {
    digits: [u8; MAX_DIGITS as usize],
    total: usize,
    last: usize,
    allowed: bool,
    /// The longest allowed total before the last group was joined, with its last token.
    shorter: Option<(usize, usize)>,
}

/// A refusal and the token it concerns, so the first in the text wins.
struct Problem {
    at: usize,
    error: ParseError,
}

/// What the reader collects from one text.
pub(super) struct Reader<'a> {
    parser: &'a Parser,
    text: &'a str,
    tokens: Tokens,
    found: [Option<Found>; MAX_DOCUMENTS],
    count: usize,
    /// Distinct documents beyond [`MAX_DOCUMENTS`] are only counted.
    overflow: usize,
    problem: Option<Problem>,
}

impl<'a> Reader<'a> {
    /// Reads `text` under `parser`'s kinds and codes (the reader lives on this frame).
    pub(super) fn parse(parser: &'a Parser, text: &'a str) -> Result<Parsed, ParseError> {
        let mut reader = Reader::new(parser, text);
        if let Some(parsed) = reader.canonical() {
            return Ok(parsed);
        }
        reader.read()
    }

    /// [`Reader::parse`] without the [`Reader::canonical`] shortcut, for testing that the
    /// shortcut changes nothing.
    #[cfg(test)]
    pub(super) fn parse_general(parser: &'a Parser, text: &'a str) -> Result<Parsed, ParseError> {
        Reader::new(parser, text).read()
    }

    /// A reader over `text`, its tokens filled, nothing found yet.
    fn new(parser: &'a Parser, text: &'a str) -> Self {
        let mut reader = Reader {
            parser,
            text,
            tokens: Tokens::new(),
            found: [None; MAX_DOCUMENTS],
            count: 0,
            overflow: 0,
            problem: None,
        };
        reader.tokens.fill(text);
        reader
    }

    /// The shape most texts have, `CODE SERIES NUMBER` and nothing else (`2 AZE 11111111`,
    /// `2aze11111111`, `2,АЗЕ,11111111 `), read without the general passes. It gives exactly
    /// what [`Reader::read`] gives for these three tokens, or `None` to leave them to it.
    fn canonical(&self) -> Option<Parsed> {
        let [code, word, number] = *self.tokens.as_slice() else {
            return None;
        };
        if code.class != Class::Number
            || code.len > 3
            || !self.parser.has_code(code.value)
            || word.class != Class::Word
            || number.class != Class::Number
        {
            return None;
        }
        let key = self.keys()[kind_of_word(self.keys(), &word)?];
        let len = usize::from(number.len);
        if !key.accepts(len) {
            return None;
        }
        let document = Document::from_series_bits(key.series, number.chars.get(..len)?)?;
        Some(Parsed::Permits(OneOrMore::One(PermitRequest {
            code: code.value as u8,
            document,
            extra: extra(&self.text[number.end as usize..]),
        })))
    }

    fn keys(&self) -> &[KindKey] {
        &self.parser.keys
    }

    fn report(&mut self, at: usize, error: ParseError) {
        if self.problem.as_ref().is_none_or(|p| at < p.at) {
            self.problem = Some(Problem { at, error });
        }
    }

    /// Reads the text: a family of permit requests, help, a status request, or the refusal.
    fn read(&mut self) -> Result<Parsed, ParseError> {
        if self.tokens.as_slice().is_empty() {
            return Err(if self.tokens.visible {
                ParseError::NoCode
            } else {
                ParseError::Empty
            });
        }
        self.mark_plates();
        self.documents();
        let (mut help, mut status) = (false, false);
        let mut question = false;
        {
            let text = self.text;
            for t in self.tokens.as_slice() {
                match t.class {
                    Class::Question => question = true,
                    Class::Word if t.role == Role::Free => {
                        match asks(&text[t.start as usize..t.end as usize]) {
                            Some(Meaning::Help) => help = true,
                            Some(Meaning::Status) => status = true,
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
        }
        let numbers = || {
            self.tokens
                .as_slice()
                .iter()
                .any(|t| t.class == Class::Number && t.role == Role::Free)
        };
        if (help || question) && self.count == 0 && self.problem.is_none() && !numbers() {
            return Ok(Parsed::Help);
        }
        if status {
            if let Some(p) = self.problem.take() {
                return Err(p.error);
            }
            if self.count == 0 {
                return Err(ParseError::NoDocument);
            }
            self.check_count()?;
            let docs = self.found[..self.count]
                .iter()
                .flatten()
                .map(|f| f.document);
            return Ok(Parsed::Status(OneOrMore::collect(docs)));
        }
        let slot = if self.count == 0 {
            self.series_slot()
        } else {
            None
        };
        let code = self.code()?;
        self.strays();
        if let Some(p) = self.problem.take() {
            return Err(p.error);
        }
        if self.count == 0 {
            return Err(match slot {
                Some(word) => ParseError::UnknownSeries {
                    series: echo(&self.text[word.start as usize..word.end as usize]),
                },
                None => ParseError::NoDocument,
            });
        }
        self.check_count()?;
        let end = self
            .tokens
            .as_slice()
            .iter()
            .filter(|t| matches!(t.role, Role::Document | Role::Code))
            .map(|t| t.end as usize)
            .max()
            .unwrap_or(0);
        let extra = extra(&self.text[end..]);
        let mut docs = self.found[..self.count]
            .iter()
            .flatten()
            .map(|f| f.document);
        if self.count == 1
            && let Some(document) = docs.next()
        {
            return Ok(Parsed::Permits(OneOrMore::One(PermitRequest {
                code,
                document,
                extra,
            })));
        }
        Ok(Parsed::Permits(OneOrMore::collect(docs.map(|document| {
            PermitRequest {
                code,
                document,
                extra: extra.clone(),
            }
        }))))
    }

    fn check_count(&self) -> Result<(), ParseError> {
        let got = self.count + self.overflow;
        let max = self.parser.max_documents;
        if got > max {
            return Err(ParseError::TooManyDocuments { max, got });
        }
        Ok(())
    }

    /// Marks car plates (`10-AB-123`, `10AB123`, `10 AB 123`: two digits, two letters,
    /// three digits) so no part of one reads as a document or a code. Not a plate: three
    /// digits followed by more groups (`01 AA 123 4567`, a number in groups), or a code
    /// before a series (`01 AA 123`, a number too short).
    fn mark_plates(&mut self) {
        let t = self.tokens.as_mut_slice();
        let n = t.len();
        let mut i = 0;
        while i + 2 < n {
            let (a, w, b) = (t[i], t[i + 1], t[i + 2]);
            let plate = a.class == Class::Number
                && a.len == 2
                && a.gap != Gap::Glued
                && w.class == Class::Word
                && w.len == 2
                && w.wild == 0
                && !w.alien
                && w.gap != Gap::Break
                && b.class == Class::Number
                && b.len == 3
                && b.gap != Gap::Break
                && t.get(i + 3).is_none_or(|c| {
                    c.gap != Gap::Glued
                        && !(c.class == Class::Number && matches!(c.gap, Gap::Space | Gap::Join))
                })
                && !(self.parser.has_code(a.value)
                    && kind_of_word(&self.parser.keys, &w).is_some());
            if plate {
                for token in &mut t[i..i + 3] {
                    token.role = Role::Plate;
                }
                i += 3;
            } else {
                i += 1;
            }
        }
    }

    /// Finds every document: a series, then its number (`AZE 11111111`), or a number then
    /// its series when nothing fitting follows (`11111111 AZE`). A series without a number,
    /// a number of the wrong length, and a number two series could own are problems.
    fn documents(&mut self) {
        let mut i = 0;
        while i < self.tokens.as_slice().len() {
            let t = self.tokens.as_slice();
            if t[i].class != Class::Word || t[i].role != Role::Free {
                i += 1;
                continue;
            }
            let Some(series) = self.series_at(i) else {
                i += 1;
                continue;
            };
            let key = self.keys()[series.kind];
            let forward = self.number_at(series.after, key, series.lead);
            for token in &mut self.tokens.as_mut_slice()[i..series.after] {
                token.role = Role::Document;
            }
            if let Some(number) = forward.as_ref().filter(|n| n.allowed)
                && let Some(found) = self.found_at(series.kind, series.after, number)
            {
                self.add(found);
                i = number.last + 1;
                continue;
            }
            if let Some(found) = self.reversed(i, series.kind) {
                self.add(found);
                i = series.after;
                continue;
            }
            let kind = &self.parser.kinds[series.kind];
            if let Some(previous) = self.owned_number_before(i, key) {
                let error = ParseError::AmbiguousNumber {
                    first: self.parser.kinds[previous].series.clone(),
                    second: kind.series.clone(),
                };
                self.report(i, error);
                i = series.after;
                continue;
            }
            match forward {
                Some(number) => {
                    for token in &mut self.tokens.as_mut_slice()[series.after..=number.last] {
                        token.role = Role::Document;
                    }
                    self.report(i, wrong_count(kind, number.total));
                    i = number.last + 1;
                }
                None => {
                    self.report(i, no_number(kind));
                    i = series.after;
                }
            }
        }
    }

    /// Records a document, once however often the text names it.
    fn add(&mut self, found: Found) {
        let known = self.found[..self.count]
            .iter()
            .flatten()
            .any(|f| f.document == found.document);
        if known {
            return;
        }
        match self.found.get_mut(self.count) {
            Some(slot) => {
                *slot = Some(found);
                self.count += 1;
            }
            None => self.overflow += 1,
        }
    }

    /// The document of a kind whose number starts at token `first`, marking its tokens.
    fn found_at(&mut self, kind: usize, first: usize, number: &NumberAt) -> Option<Found> {
        let series = self.parser.keys[kind].series;
        let document = |len: usize| Document::from_series_bits(series, number.digits.get(..len)?);
        let found = Found {
            document: document(number.total)?,
            kind,
            number: (first, number.last),
            shorter: number
                .shorter
                .and_then(|(len, last)| Some((document(len)?, last))),
        };
        for token in &mut self.tokens.as_mut_slice()[first..=number.last] {
            token.role = Role::Document;
        }
        Some(found)
    }

    /// `11111111 AZE`: the free number right before the series at `i`, if it fits.
    fn reversed(&mut self, i: usize, kind: usize) -> Option<Found> {
        let t = self.tokens.as_slice();
        let before = i.checked_sub(1)?;
        let number = t[before];
        let key = self.keys()[kind];
        if number.class != Class::Number
            || number.role != Role::Free
            || !key.accepts(usize::from(number.len))
        {
            return None;
        }
        let mut read = NumberAt {
            digits: [0; MAX_DIGITS as usize],
            total: 0,
            last: before,
            allowed: true,
            shorter: None,
        };
        push(&mut read, &number);
        self.found_at(kind, before, &read)
    }

    /// The kind of an earlier document whose one-token number sits right before the
    /// series at `i` and would fit this series as well: `AZE 1234567 AA`.
    fn owned_number_before(&self, i: usize, key: KindKey) -> Option<usize> {
        let t = self.tokens.as_slice();
        let before = i.checked_sub(1)?;
        let number = t[before];
        if number.class != Class::Number
            || number.role != Role::Document
            || number.gap == Gap::Glued
            || t[i].gap == Gap::Glued
            || !key.accepts(usize::from(number.len))
        {
            return None;
        }
        self.found[..self.count]
            .iter()
            .flatten()
            .find(|f| f.number == (before, before))
            .map(|f| f.kind)
    }

    /// The series at token `i`: the word itself, its letters spread over words (`A Z E`,
    /// `M0M`), or the word without a last letter that is a digit of the number glued after
    /// it (`AZEO1234567`).
    fn series_at(&self, i: usize) -> Option<SeriesAt> {
        let t = self.tokens.as_slice();
        let word = t[i];
        if let Some(kind) = kind_of_word(self.keys(), &word) {
            return Some(SeriesAt {
                kind,
                after: i + 1,
                lead: None,
            });
        }
        if word.alien || usize::from(word.len) > 3 {
            return self.stripped(i);
        }
        let mut letters = letters_of(&word);
        let mut j = i + 1;
        while let Some(next) = t.get(j) {
            let zero = next.class == Class::Number
                && next.len == 1
                && next.chars[0] == b'0'
                && next.gap == Gap::Glued
                && t.get(j + 1)
                    .is_some_and(|w| w.class == Class::Word && w.gap == Gap::Glued);
            let spread = next.class == Class::Word
                && !next.alien
                && (matches!(next.gap, Gap::Space | Gap::Join)
                    || (next.gap == Gap::Glued && j > i + 1));
            if next.role != Role::Free || !(zero || spread) {
                break;
            }
            if zero {
                if let Some(c) = letters.chars.get_mut(letters.len) {
                    *c = b'O';
                }
                letters.len += 1;
            } else {
                let more = letters_of(next);
                if letters.len + more.len > 4 {
                    break;
                }
                for k in 0..more.len {
                    letters.chars[letters.len + k] = more.chars[k];
                }
                letters.wild |= more.wild << letters.len;
                letters.cyrillic_i |= more.cyrillic_i << letters.len;
                letters.len += more.len;
            }
            if letters.len > 4 {
                break;
            }
            j += 1;
            if !zero && let Some(kind) = kind_of(self.keys(), &letters) {
                return Some(SeriesAt {
                    kind,
                    after: j,
                    lead: None,
                });
            }
        }
        self.stripped(i)
    }

    /// `AZEO1234567`: the word at `i` less a last O, I or L is a series and a number is glued
    /// after it; that letter is the number's first digit.
    fn stripped(&self, i: usize) -> Option<SeriesAt> {
        let t = self.tokens.as_slice();
        let word = t[i];
        let n = usize::from(word.len);
        let last = *word.chars.get(n.checked_sub(1)?)?;
        let next = t.get(i + 1)?;
        if !(3..=5).contains(&n)
            || word.wild != 0
            || !matches!(last, b'O' | b'I' | b'L')
            || next.class != Class::Number
            || next.gap != Gap::Glued
        {
            return None;
        }
        let mut letters = letters_of(&word);
        letters.len -= 1;
        letters.chars[n - 1] = 0;
        let kind = kind_of(self.keys(), &letters)?;
        Some(SeriesAt {
            kind,
            after: i + 1,
            lead: Some(if last == b'O' { b'0' } else { b'1' }),
        })
    }

    /// The number starting at token `k` for a kind: its first group, joined by further
    /// groups that follow a gap of spaces with at most one dash or dot, are whole tokens,
    /// and keep the total within the kind's largest count. The longest allowed total wins.
    fn number_at(&self, k: usize, key: KindKey, lead: Option<u8>) -> Option<NumberAt> {
        let t = self.tokens.as_slice();
        let first = t.get(k)?;
        if first.class != Class::Number || first.role != Role::Free {
            return None;
        }
        let mut read = NumberAt {
            digits: [0; MAX_DIGITS as usize],
            total: 0,
            last: k,
            allowed: false,
            shorter: None,
        };
        if let Some(d) = lead {
            read.digits[0] = d;
            read.total = 1;
        }
        push(&mut read, first);
        let mut best = key.accepts(read.total).then_some((read.total, k));
        let mut shorter = None;
        let max = usize::from(key.max);
        let mut j = k;
        while read.total < max {
            let Some(next) = t.get(j + 1) else { break };
            let whole = t.get(j + 2).is_none_or(|a| a.gap != Gap::Glued);
            if next.class != Class::Number
                || next.role != Role::Free
                || !matches!(next.gap, Gap::Space | Gap::Join)
                || !whole
                || read.total + usize::from(next.len) > max
            {
                break;
            }
            push(&mut read, next);
            j += 1;
            if key.accepts(read.total) {
                shorter = best;
                best = Some((read.total, j));
            }
        }
        match best {
            Some((total, last)) => {
                read.total = total;
                read.last = last;
                read.allowed = true;
                // Only a last group of one short token could be the code instead.
                read.shorter = shorter.filter(|&(_, end)| end + 1 == last && t[last].len <= 3);
            }
            None => read.last = j,
        }
        Some(read)
    }

    /// With no document found, the word that stood where a series should: the first
    /// non-keyword word followed by a number (that number is then its number, not a
    /// code), or else the first non-keyword word.
    fn series_slot(&mut self) -> Option<Token> {
        let text = self.text;
        let t = self.tokens.as_mut_slice();
        let is_slot = |w: &Token| {
            w.class == Class::Word
                && w.role == Role::Free
                && keyword(&text[w.start as usize..w.end as usize]).is_none()
        };
        for i in 0..t.len() {
            if is_slot(&t[i])
                && let Some(next) = t.get_mut(i + 1)
                && next.class == Class::Number
                && next.role == Role::Free
            {
                next.role = Role::Document;
                return Some(t[i]);
            }
        }
        t.iter().find(|w| is_slot(w)).copied()
    }

    /// The code: the free numbers of at most three digits (not glued to a word that is no
    /// series, like the `1` of `1AB`) are the candidates. One code of the rules among them
    /// is it (however often repeated); two different ones are a refusal; none is an unknown
    /// code, or, with no candidate at all, no code — unless a document's last digit group
    /// is a code and the number is whole without it (`AZE 1234567 2`).
    fn code(&mut self) -> Result<u8, ParseError> {
        let t = self.tokens.as_slice();
        let glued_to_word = |i: usize| {
            let before = t[i].gap == Gap::Glued
                && i > 0
                && t[i - 1].class == Class::Word
                && t[i - 1].role == Role::Free;
            let after = t.get(i + 1).is_some_and(|a| {
                a.gap == Gap::Glued && a.class == Class::Word && a.role == Role::Free
            });
            before || after
        };
        let mut first_unknown = None;
        let mut code: Option<u8> = None;
        for (i, c) in t.iter().enumerate() {
            if c.class != Class::Number || c.role != Role::Free || c.len > 3 || glued_to_word(i) {
                continue;
            }
            if self.parser.has_code(c.value) {
                let value = c.value as u8;
                match code {
                    Some(first) if first != value => {
                        return Err(ParseError::TwoCodes {
                            first,
                            second: value,
                        });
                    }
                    _ => code = Some(value),
                }
            } else if first_unknown.is_none() {
                first_unknown = Some(c.value);
            }
        }
        if let Some(code) = code {
            let t = self.tokens.as_mut_slice();
            for token in t.iter_mut() {
                if token.class == Class::Number
                    && token.role == Role::Free
                    && token.len <= 3
                    && token.value == u32::from(code)
                {
                    token.role = Role::Code;
                }
            }
            return Ok(code);
        }
        if let Some(code) = first_unknown {
            return Err(ParseError::UnknownCode { code });
        }
        self.code_from_a_number()
    }

    /// `AZE 1234567 2` with no other code: the last group, a code, is the code.
    fn code_from_a_number(&mut self) -> Result<u8, ParseError> {
        for slot in self.found[..self.count].iter_mut().flatten() {
            let Some((document, last)) = slot.shorter else {
                continue;
            };
            let t = self.tokens.as_mut_slice();
            let group = t[slot.number.1];
            if !self.parser.has_code(group.value) {
                continue;
            }
            t[slot.number.1].role = Role::Code;
            slot.document = document;
            slot.number.1 = last;
            slot.shorter = None;
            // The shorter reading may be a document the text named already
            // (`AZE 6819158 AZE 6819158 2`): once, however often named.
            self.drop_repeats();
            return Ok(group.value as u8);
        }
        Err(ParseError::NoCode)
    }

    /// Keeps the first of documents found twice, in order.
    fn drop_repeats(&mut self) {
        let mut kept = 0;
        for i in 0..self.count {
            let Some(found) = self.found[i].take() else {
                continue;
            };
            if self.found[..kept]
                .iter()
                .flatten()
                .any(|k| k.document == found.document)
            {
                continue;
            }
            self.found[kept] = Some(found);
            kept += 1;
        }
        self.count = kept;
    }

    /// Numbers left over that have a document's length (`2 AZE 11111111 7654321`): a
    /// document without its series, never ignored.
    fn strays(&mut self) {
        let text = self.text;
        let t = self.tokens.as_slice();
        let mut found = None;
        for i in 0..t.len() {
            let n = t[i];
            if n.class != Class::Number || n.role != Role::Free {
                continue;
            }
            if !self.keys().iter().any(|k| k.accepts(usize::from(n.len))) {
                continue;
            }
            let word = i
                .checked_sub(1)
                .map(|w| t[w])
                .filter(|w| w.class == Class::Word && w.role == Role::Free)
                .filter(|w| keyword(&text[w.start as usize..w.end as usize]).is_none());
            found = Some(match word {
                Some(w) => (
                    i - 1,
                    ParseError::UnknownSeries {
                        series: echo(&text[w.start as usize..w.end as usize]),
                    },
                ),
                None => (i, ParseError::NoDocument),
            });
            break;
        }
        if let Some((at, error)) = found {
            self.report(at, error);
        }
    }
}

/// The kind a word token names: a plain word of up to four letters is one comparison per
/// kind; a word with a lost letter or a Cyrillic И goes through [`kind_of`].
fn kind_of_word(keys: &[KindKey], word: &Token) -> Option<usize> {
    if word.wild == 0 && word.cyrillic_i == 0 && !word.alien {
        if word.len > 4 {
            return None;
        }
        let c = word.chars;
        let packed = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        return keys.iter().position(|k| k.packed == packed && packed != 0);
    }
    kind_of(keys, &letters_of(word))
}

/// The letters of a word token.
fn letters_of(word: &Token) -> Letters {
    let mut letters = Letters {
        len: usize::from(word.len),
        wild: word.wild,
        cyrillic_i: word.cyrillic_i,
        ..Letters::default()
    };
    let kept = letters.len.min(TOKEN_CHARS).min(letters.chars.len());
    letters.chars[..kept].copy_from_slice(&word.chars[..kept]);
    if word.alien {
        letters.len = usize::MAX;
    }
    letters
}

/// Appends a number token's digits to a number being read.
fn push(read: &mut NumberAt, token: &Token) {
    let n = usize::from(token.len);
    for &d in &token.chars[..n.min(TOKEN_CHARS)] {
        if let Some(slot) = read.digits.get_mut(read.total) {
            *slot = d;
        }
        read.total += 1;
    }
    read.total += n.saturating_sub(TOKEN_CHARS);
}

/// [`ParseError::NoNumber`] for `kind`.
fn no_number(kind: &crate::permit::document::DocumentKind) -> ParseError {
    ParseError::NoNumber {
        series: kind.series.clone(),
    }
}

/// [`ParseError::WrongDigitCount`] for `kind` with `got` digits.
fn wrong_count(kind: &crate::permit::document::DocumentKind, got: usize) -> ParseError {
    ParseError::WrongDigitCount {
        series: kind.series.clone(),
        got,
        expected: kind.digits.clone(),
    }
}

/// The unknown series as typed, cut to [`MAX_ECHO_CHARS`] characters.
fn echo(word: &str) -> String {
    match word.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => word[..cut].to_owned(),
        None => word.to_owned(),
    }
}
