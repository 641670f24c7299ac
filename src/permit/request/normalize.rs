//! Character folding: every character of a citizen's text read as one normalised ASCII
//! symbol (a digit, an upper-case letter, or a separator class), so `İ`, `ı`, Cyrillic
//! look-alikes and full-width or Arabic-Indic digits read as what they look like.

/// Normalised symbol: horizontal whitespace.
pub(super) const SPACE: u8 = b' ';
/// Normalised symbol: a line break; ends a number.
pub(super) const BREAK: u8 = b'\n';
/// Normalised symbol: a dash or dot, the punctuation people put inside numbers.
pub(super) const JOIN: u8 = b'-';
/// Normalised symbol: other punctuation, symbols and emoji; separates, ends a number.
pub(super) const PUNCT: u8 = b',';
/// Normalised symbol: a letter or digit with no ASCII reading (ə, Д, ²); part of a word.
pub(super) const ALIEN: u8 = b'?';
/// Normalised symbol: a character to skip as if absent (zero-width, combining marks).
pub(super) const IGNORE: u8 = 0;

/// Whether a normalised symbol separates words.
pub(super) fn is_separator(s: u8) -> bool {
    matches!(s, SPACE | BREAK | JOIN | PUNCT)
}

/// Whether a normalised symbol belongs to a word (a letter, a digit or an alien).
pub(super) fn is_word(s: u8) -> bool {
    s.is_ascii_alphanumeric() || s == ALIEN
}

/// The normalised symbol of each ASCII byte: digits stay, letters go upper case,
/// whitespace to [`SPACE`]/[`BREAK`], `-` and `.` to [`JOIN`], the rest to [`PUNCT`].
pub(super) const ASCII: [u8; 128] = {
    let mut table = [PUNCT; 128];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        table[b] = match c {
            b'0'..=b'9' | b'A'..=b'Z' => c,
            b'a'..=b'z' => c - 32,
            b' ' | b'\t' => SPACE,
            b'\n' | b'\r' | 0x0b | 0x0c => BREAK,
            b'-' | b'.' => JOIN,
            _ => PUNCT,
        };
        b += 1;
    }
    table
};

/// Maps one character to its normalised ASCII symbol: a digit, an upper-case letter, or one
/// of [`SPACE`], [`BREAK`], [`JOIN`], [`PUNCT`], [`ALIEN`], [`IGNORE`].
pub(super) fn norm_char(c: char) -> u8 {
    if c.is_ascii() {
        return ASCII[c as usize];
    }
    match c {
        '０'..='９' => b'0' + (c as u32 - '０' as u32) as u8,
        '٠'..='٩' => b'0' + (c as u32 - '٠' as u32) as u8,
        '۰'..='۹' => b'0' + (c as u32 - '۰' as u32) as u8,
        'Ａ'..='Ｚ' => b'A' + (c as u32 - 'Ａ' as u32) as u8,
        'ａ'..='ｚ' => b'A' + (c as u32 - 'ａ' as u32) as u8,
        'İ' | 'ı' | 'І' | 'і' => b'I',
        'А' | 'а' => b'A',
        'В' | 'в' => b'B',
        'Е' | 'е' => b'E',
        'К' | 'к' => b'K',
        'М' | 'м' => b'M',
        'Н' | 'н' => b'H',
        'О' | 'о' => b'O',
        'Р' | 'р' => b'P',
        'С' | 'с' => b'C',
        'Т' | 'т' => b'T',
        'У' | 'у' => b'Y',
        'Х' | 'х' => b'X',
        'Ѕ' | 'ѕ' => b'S',
        'Ј' | 'ј' => b'J',
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{0300}'..='\u{036F}'
        | '\u{FE00}'..='\u{FE0F}' => IGNORE,
        '\u{0085}' | '\u{2028}' | '\u{2029}' => BREAK,
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2024}' | '－' | '．' => JOIN,
        c if c.is_whitespace() => SPACE,
        c if c.is_alphanumeric() => ALIEN,
        _ => PUNCT,
    }
}
