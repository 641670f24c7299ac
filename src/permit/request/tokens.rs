//! The text as tokens: runs of digits (numbers) and runs of letters (words), each knowing
//! what separated it from the one before, so the reader can tell `1111 1111` (one number
//! in two groups) from `1111, 1111` and `2aze` (glued) from `2 aze`.
//!
//! One pass over the text, one normalised symbol per character; tokens live in a fixed
//! buffer and spill to the heap only for texts of more than [`INLINE_TOKENS`] tokens.

use super::normalize::{
    ALIEN, ASCII, BREAK, CYRILLIC_I, IGNORE, JOIN, QMARK, SPACE, is_letter, norm_char,
};

/// Tokens kept without a heap allocation; a typical request has three to eight.
pub(super) const INLINE_TOKENS: usize = 12;
/// Digits or letters a token keeps (it counts the rest).
pub(super) const TOKEN_CHARS: usize = 9;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Digits.
    Number,
    /// Letters, possibly with `?` for a lost one.
    Word,
    /// A `?` standing alone: asks for help.
    Question,
}

/// What lies between a token and the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Gap {
    /// Nothing: `2aze`, `AZE11111111`.
    Glued,
    /// Horizontal whitespace only.
    Space,
    /// Horizontal whitespace with one dash or dot: may sit inside a number.
    Join,
    /// Anything else (a line break, other punctuation, several dashes), or the text's start.
    Break,
}

/// What the reader decided a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Not (yet) part of anything.
    Free,
    /// Part of a car plate (`10-AB-123`): ignored.
    Plate,
    /// Part of a document (its series or its number).
    Document,
    /// A permit code.
    Code,
}

/// One token.
#[derive(Debug, Clone, Copy)]
pub(super) struct Token {
    /// Number, word or question mark.
    pub(super) class: Class,
    /// What separated it from the previous token.
    pub(super) gap: Gap,
    /// What the reader made of it.
    pub(super) role: Role,
    /// How many digits or letters it has (saturating).
    pub(super) len: u16,
    /// The first [`TOKEN_CHARS`] digits (ASCII) or letters (upper-case ASCII; `?` for a
    /// lost letter).
    pub(super) chars: [u8; TOKEN_CHARS],
    /// Bit `n`: letter `n` is a `?` (a letter the SMSC lost).
    pub(super) wild: u16,
    /// Bit `n`: letter `n` is a Cyrillic И (read as I, or as Y).
    pub(super) cyrillic_i: u16,
    /// The word has a letter with no ASCII reading (ə, Ж).
    pub(super) alien: bool,
    /// Folded into the token before it (a digit look-alike); dropped.
    absorbed: bool,
    /// A number's value; `u32::MAX` beyond nine digits.
    pub(super) value: u32,
    /// Byte range in the text.
    pub(super) start: u32,
    /// Where it ends.
    pub(super) end: u32,
}

impl Token {
    /// All zeros (the first variant of every enum), so a buffer of them is a plain memset.
    const EMPTY: Token = Token {
        class: Class::Number,
        gap: Gap::Glued,
        role: Role::Free,
        len: 0,
        chars: [0; TOKEN_CHARS],
        wild: 0,
        cyrillic_i: 0,
        alien: false,
        absorbed: false,
        value: 0,
        start: 0,
        end: 0,
    };

    /// Whether this is a word of only `O`, `I` and `L` (at most two), the letters people
    /// type for 0 and 1 inside a number.
    fn is_digit_look_alike(&self) -> bool {
        self.class == Class::Word
            && self.len <= 2
            && self.wild == 0
            && !self.alien
            && self.chars[..usize::from(self.len)]
                .iter()
                .all(|c| matches!(c, b'O' | b'I' | b'L'))
    }

    /// Appends a digit (ASCII) to a number.
    #[inline]
    fn push_digit(&mut self, d: u8) {
        if let Some(slot) = self.chars.get_mut(usize::from(self.len)) {
            *slot = d;
        }
        // Only numbers of a few digits are ever a code; longer ones keep `u32::MAX`.
        self.value = if self.len < 9 {
            self.value * 10 + u32::from(d - b'0')
        } else {
            u32::MAX
        };
        self.len = self.len.saturating_add(1);
    }
}

/// The tokens of one text, inline for short texts.
pub(super) struct Tokens {
    inline: [Token; INLINE_TOKENS],
    len: usize,
    spill: Vec<Token>,
    /// The text has visible characters that made no token (punctuation, emoji).
    pub(super) visible: bool,
}

impl Tokens {
    /// Every token, in text order.
    pub(super) fn as_slice(&self) -> &[Token] {
        if self.spill.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spill
        }
    }

    /// Every token, mutable.
    pub(super) fn as_mut_slice(&mut self) -> &mut [Token] {
        if self.spill.is_empty() {
            &mut self.inline[..self.len]
        } else {
            &mut self.spill
        }
    }

    #[inline]
    fn push(&mut self, token: Token) {
        if self.spill.is_empty() && self.len < INLINE_TOKENS {
            self.inline[self.len] = token;
            self.len += 1;
            return;
        }
        if self.spill.is_empty() {
            self.spill.reserve(INLINE_TOKENS * 2);
            self.spill.extend_from_slice(&self.inline[..self.len]);
        }
        self.spill.push(token);
    }

    /// No tokens yet.
    pub(super) fn new() -> Tokens {
        Tokens {
            inline: [Token::EMPTY; INLINE_TOKENS],
            len: 0,
            spill: Vec::new(),
            visible: false,
        }
    }

    /// Splits `text` into these (empty) tokens and folds the letters people type for digits
    /// into the numbers they sit in.
    pub(super) fn fill(&mut self, text: &str) {
        let tokens = self;
        let bytes = text.as_bytes();
        // What separates the next token from the last one.
        let mut gap = Gap::Break;
        // The token being built, if `open`.
        let mut cur = Token::EMPTY;
        let mut open = false;
        // A word and a number touch: digit look-alikes may need folding.
        let mut mixed = false;
        let mut pos = 0usize;
        while let Some(&b) = bytes.get(pos) {
            let (sym, len) = if b.is_ascii() {
                (ASCII[usize::from(b)], 1)
            } else {
                let Some(c) = text[pos..].chars().next() else {
                    break;
                };
                (norm_char(c), c.len_utf8())
            };
            let start = pos as u32;
            pos += len;
            let end = pos as u32;
            let class = if sym.is_ascii_digit() {
                Class::Number
            } else if is_letter(sym) {
                Class::Word
            } else if sym == QMARK {
                Class::Question
            } else {
                if sym == IGNORE {
                    continue;
                }
                if open {
                    tokens.push(cur);
                    open = false;
                }
                gap = match (gap, sym) {
                    (Gap::Glued | Gap::Space, SPACE) => Gap::Space,
                    (Gap::Join, SPACE) => Gap::Join,
                    (Gap::Glued | Gap::Space, JOIN) => Gap::Join,
                    _ => Gap::Break,
                };
                tokens.visible |= sym != SPACE && sym != BREAK;
                continue;
            };
            if open {
                match (cur.class, class) {
                    (Class::Number, Class::Number) => {
                        cur.push_digit(sym);
                        // The rest of an ASCII digit run in one tight loop.
                        while let Some(&d) = bytes.get(pos)
                            && d.is_ascii_digit()
                        {
                            cur.push_digit(d);
                            pos += 1;
                        }
                        cur.end = pos as u32;
                        continue;
                    }
                    // A `?` inside or after a word is a letter the SMSC lost (`MY?`, `D?İ`).
                    (Class::Word, Class::Word | Class::Question) => {
                        cur.push_letter(sym, end);
                        // The rest of an ASCII letter run in one tight loop.
                        while let Some(&l) = bytes.get(pos)
                            && l.is_ascii_alphabetic()
                        {
                            pos += 1;
                            if let Some(slot) = cur.chars.get_mut(usize::from(cur.len)) {
                                *slot = l.to_ascii_uppercase();
                            }
                            cur.len = cur.len.saturating_add(1);
                        }
                        cur.end = pos as u32;
                        continue;
                    }
                    // A `?` glued before letters (`?ZE`) is a lost letter too.
                    (Class::Question, Class::Word) => {
                        let q_end = cur.end;
                        cur.class = Class::Word;
                        cur.push_letter(QMARK, q_end);
                        cur.push_letter(sym, end);
                        continue;
                    }
                    (Class::Question, Class::Question) => {
                        cur.end = end;
                        continue;
                    }
                    _ => {
                        mixed = true;
                        tokens.push(cur);
                        gap = Gap::Glued;
                    }
                }
            }
            cur = Token {
                class,
                gap,
                start,
                end,
                ..Token::EMPTY
            };
            match class {
                Class::Number => cur.push_digit(sym),
                Class::Word => cur.push_letter(sym, end),
                Class::Question => tokens.visible = true,
            }
            open = true;
            gap = Gap::Glued;
        }
        if open {
            tokens.push(cur);
        }
        if mixed {
            tokens.fold_digit_look_alikes();
        }
    }

    /// `1111O111`, `O1234567`, `123456l`: letters O, I and l glued to a number's digits are
    /// its 0s and 1s. Only next to at least three real digits, so a word like `IO` or a
    /// code like `1O` is left alone.
    fn fold_digit_look_alikes(&mut self) {
        let t = self.as_mut_slice();
        let n = t.len();
        let mut absorbed = false;
        let mut i = 0;
        while i < n {
            if t[i].class != Class::Number || t[i].absorbed {
                i += 1;
                continue;
            }
            // Leading letters: `O1234567`, the word itself not glued to anything before.
            if i > 0
                && t[i].gap == Gap::Glued
                && t[i].len >= 3
                && t[i - 1].is_digit_look_alike()
                && t[i - 1].gap != Gap::Glued
                && !t[i - 1].absorbed
            {
                let (word, number) = (t[i - 1], t[i]);
                let mut merged = Token {
                    class: Class::Number,
                    gap: word.gap,
                    start: word.start,
                    end: number.end,
                    ..Token::EMPTY
                };
                push_look_alikes(&mut merged, &word);
                push_digits(&mut merged, &number);
                t[i - 1].absorbed = true;
                t[i] = merged;
                absorbed = true;
            }
            // Interior (`1111O111`) and trailing (`123456O`) letters.
            let mut j = i + 1;
            while j < n && t[j].gap == Gap::Glued && t[j].is_digit_look_alike() {
                let after = t.get(j + 1).copied();
                // Two digits, two letters, three digits is a car plate (`10OI123`), not a number.
                let plate = t[i].len == 2 && t[j].len == 2 && after.is_some_and(|a| a.len == 3);
                let interior = !plate
                    && after.is_some_and(|a| a.class == Class::Number && a.gap == Gap::Glued);
                let trailing = after.is_none_or(|a| a.gap != Gap::Glued) && t[i].len >= 3;
                if !interior && !trailing {
                    break;
                }
                let word = t[j];
                push_look_alikes(&mut t[i], &word);
                t[i].end = word.end;
                t[j].absorbed = true;
                absorbed = true;
                match after {
                    Some(a) if interior => {
                        push_digits(&mut t[i], &a);
                        t[i].end = a.end;
                        t[j + 1].absorbed = true;
                        j += 2;
                    }
                    _ => j += 1,
                }
            }
            i = j;
        }
        if absorbed {
            self.compact();
        }
    }

    /// Drops the tokens folded into others.
    fn compact(&mut self) {
        if !self.spill.is_empty() {
            self.spill.retain(|t| !t.absorbed);
            return;
        }
        let mut kept = 0;
        for i in 0..self.len {
            if !self.inline[i].absorbed {
                self.inline[kept] = self.inline[i];
                kept += 1;
            }
        }
        self.len = kept;
    }
}

impl Token {
    /// Appends a letter symbol to a word.
    #[inline]
    fn push_letter(&mut self, sym: u8, end: u32) {
        let n = usize::from(self.len);
        let letter = match sym {
            CYRILLIC_I => {
                if n < 16 {
                    self.cyrillic_i |= 1 << n;
                }
                b'I'
            }
            QMARK => {
                if n < 16 {
                    self.wild |= 1 << n;
                }
                QMARK
            }
            ALIEN => {
                self.alien = true;
                ALIEN
            }
            s => s,
        };
        if let Some(slot) = self.chars.get_mut(n) {
            *slot = letter;
        }
        self.len = self.len.saturating_add(1);
        self.end = end;
    }
}

/// Appends a look-alike word's letters to a number as digits (O is 0, I and l are 1).
fn push_look_alikes(number: &mut Token, word: &Token) {
    for &c in &word.chars[..usize::from(word.len)] {
        number.push_digit(if c == b'O' { b'0' } else { b'1' });
    }
}

/// Appends a number's digits to another (its kept digits; the count carries on).
fn push_digits(number: &mut Token, from: &Token) {
    let kept = usize::from(from.len).min(TOKEN_CHARS);
    for &d in &from.chars[..kept] {
        number.push_digit(d);
    }
    let rest = from.len.saturating_sub(kept as u16);
    number.len = number.len.saturating_add(rest);
    if rest > 0 {
        number.value = u32::MAX;
    }
}
