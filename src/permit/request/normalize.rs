//! Character folding: every character of a citizen's text read as one normalised ASCII
//! symbol (a digit, an upper-case letter, or a separator class), so `İ`, `ı`, Cyrillic
//! letters, and the decimal digits of every script read as what they stand for.

/// Normalised symbol: horizontal whitespace.
pub(super) const SPACE: u8 = b' ';
/// Normalised symbol: a line break; ends a number.
pub(super) const BREAK: u8 = b'\n';
/// Normalised symbol: a dash or dot, the punctuation people put inside numbers.
pub(super) const JOIN: u8 = b'-';
/// Normalised symbol: other punctuation, symbols and emoji; separates, ends a number.
pub(super) const PUNCT: u8 = b',';
/// Normalised symbol: a question mark. Glued to letters it stands for a letter an SMSC lost
/// (`MY?` is `MYİ` after a GSM 7-bit conversion); alone it asks for help.
pub(super) const QMARK: u8 = b'?';
/// Normalised symbol: a letter or digit with no ASCII reading (ə, Ж, ²); part of a word.
pub(super) const ALIEN: u8 = b'#';
/// Normalised symbol: the Cyrillic И, read as `I` but also as `Y` (a Й whose breve was
/// dropped, as in `МИИ` for MYİ) when `I` matches no series.
pub(super) const CYRILLIC_I: u8 = b'i';
/// Normalised symbol: a character to skip as if absent (zero-width, combining marks).
pub(super) const IGNORE: u8 = 0;

/// Whether a normalised symbol is a letter (including the alien and Cyrillic И).
pub(super) fn is_letter(s: u8) -> bool {
    s.is_ascii_uppercase() || s == ALIEN || s == CYRILLIC_I
}

/// The normalised symbol of each ASCII byte: digits stay, letters go upper case,
/// whitespace to [`SPACE`]/[`BREAK`], `-` and `.` to [`JOIN`], `?` to [`QMARK`], the rest to
/// [`PUNCT`].
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
            b'?' => QMARK,
            _ => PUNCT,
        };
        b += 1;
    }
    table
};

/// The zero of every run of ten decimal digits (general category Nd) outside ASCII, as of
/// Unicode 17, ascending: Arabic-Indic U+0660, Extended Arabic-Indic U+06F0, Devanagari
/// U+0966, Bengali, …, full-width U+FF10, the mathematical digits, the outlined digits.
/// Every Nd character is one of these zeros plus 0–9 (Unicode keeps digits in runs of ten).
const DIGIT_ZEROS: [u32; 76] = [
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x10D40, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x116D0, 0x116DA, 0x11730, 0x118E0, 0x11950, 0x11BF0, 0x11C50, 0x11D50,
    0x11DA0, 0x11DE0, 0x11F50, 0x16130, 0x16A60, 0x16AC0, 0x16B50, 0x16D70, 0x1CCF0, 0x1D7CE,
    0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E4F0, 0x1E5F1, 0x1E950, 0x1FBF0,
];

/// The value of a non-ASCII decimal digit of any script, from [`DIGIT_ZEROS`].
pub(super) fn unicode_digit(c: char) -> Option<u8> {
    let c = u32::from(c);
    let i = DIGIT_ZEROS.partition_point(|&zero| zero <= c);
    let zero = *DIGIT_ZEROS.get(i.checked_sub(1)?)?;
    let d = c - zero;
    (d < 10).then_some(d as u8)
}

/// Maps one character to its normalised ASCII symbol: a digit, an upper-case letter, or one
/// of [`SPACE`], [`BREAK`], [`JOIN`], [`PUNCT`], [`QMARK`], [`ALIEN`], [`CYRILLIC_I`],
/// [`IGNORE`].
///
/// Cyrillic reads by look where a Latin twin exists (А В Е К М Н О Р С Т У Х, and І Ѕ Ј),
/// and by sound otherwise, the way a Russian speaker spells a Latin series: З is Z, Д is D,
/// Э and Ё are E, Й, Ы and Ю are Y (Й is the sound of the Azerbaijani Y, Ы is how Russian
/// transliteration writes Y, Ю is "yu"), Б G Л П Ф are B G L P F. Ж Ц Ч Ш Щ Ъ Ь Я have
/// no one-letter reading and stay alien.
pub(super) fn norm_char(c: char) -> u8 {
    if c.is_ascii() {
        return ASCII[c as usize];
    }
    if let Some(&s) = (c as usize)
        .checked_sub(0x400)
        .and_then(|i| CYRILLIC.get(i))
    {
        return s;
    }
    slow(c)
}

/// The basic Cyrillic block U+0400–U+045F, read as [`slow`] reads it, so the letters a
/// Russian layout types cost one lookup.
const CYRILLIC: [u8; 0x60] = {
    let mut table = [0u8; 0x60];
    let mut i = 0;
    while i < 0x60 {
        table[i] = match char::from_u32(0x400 + i as u32) {
            Some(c) => cyrillic(c),
            None => ALIEN,
        };
        i += 1;
    }
    table
};

/// One Cyrillic letter of U+0400–U+045F (see [`norm_char`]).
const fn cyrillic(c: char) -> u8 {
    match c {
        'І' | 'і' | 'Ї' | 'ї' => b'I',
        'И' | 'и' => CYRILLIC_I,
        'А' | 'а' => b'A',
        'Б' | 'б' | 'В' | 'в' => b'B',
        'Г' | 'г' => b'G',
        'Д' | 'д' => b'D',
        'Е' | 'е' | 'Ё' | 'ё' | 'Э' | 'э' | 'Є' | 'є' => b'E',
        'З' | 'з' => b'Z',
        'Й' | 'й' | 'У' | 'у' | 'Ы' | 'ы' | 'Ю' | 'ю' => b'Y',
        'К' | 'к' => b'K',
        'Л' | 'л' => b'L',
        'М' | 'м' => b'M',
        'Н' | 'н' => b'H',
        'О' | 'о' => b'O',
        'П' | 'п' | 'Р' | 'р' => b'P',
        'С' | 'с' => b'C',
        'Т' | 'т' => b'T',
        'Ф' | 'ф' => b'F',
        'Х' | 'х' => b'X',
        'Ѕ' | 'ѕ' => b'S',
        'Ј' | 'ј' => b'J',
        _ => ALIEN,
    }
}

/// Everything outside ASCII and the basic Cyrillic block.
fn slow(c: char) -> u8 {
    match c {
        'ə' | 'Ə' | 'ş' | 'Ş' | 'ğ' | 'Ğ' | 'ç' | 'Ç' | 'ö' | 'Ö' | 'ü' | 'Ü' => ALIEN,
        // The digits phones here send most, before the general table.
        '٠'..='٩' => b'0' + (c as u32 - '٠' as u32) as u8,
        '۰'..='۹' => b'0' + (c as u32 - '۰' as u32) as u8,
        '０'..='９' => b'0' + (c as u32 - '０' as u32) as u8,
        'Ａ'..='Ｚ' => b'A' + (c as u32 - 'Ａ' as u32) as u8,
        'ａ'..='ｚ' => b'A' + (c as u32 - 'ａ' as u32) as u8,
        'İ' | 'ı' => b'I',
        'Ґ' | 'ґ' => b'G',
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{0300}'..='\u{036F}'
        | '\u{FE00}'..='\u{FE0F}' => IGNORE,
        '\u{0085}' | '\u{2028}' | '\u{2029}' => BREAK,
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{2024}' | '－' | '．' => JOIN,
        '？' | '¿' => QMARK,
        c if c.is_whitespace() => SPACE,
        c if c.is_numeric() => unicode_digit(c).map_or(ALIEN, |d| b'0' + d),
        c if c.is_alphanumeric() => ALIEN,
        _ => PUNCT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_s_digits_read_as_ascii() {
        for &zero in &DIGIT_ZEROS {
            for d in 0..10u32 {
                let c = char::from_u32(zero + d).expect("a char");
                assert!(c.is_numeric(), "U+{:04X} is no digit", zero + d);
                assert_eq!(norm_char(c), b'0' + d as u8, "U+{:04X}", zero + d);
            }
        }
        // Numbers that are not decimal digits stay alien: superscripts, circled, fractions.
        for c in ['²', '①', '½', 'Ⅻ'] {
            assert_eq!(norm_char(c), ALIEN, "{c}");
        }
        assert!(DIGIT_ZEROS.windows(2).all(|w| w[1] - w[0] >= 10));
    }

    #[test]
    fn the_cyrillic_table_reads_like_the_slow_path() {
        for u in 0x400..0x460u32 {
            let c = char::from_u32(u).expect("a char");
            assert_eq!(norm_char(c), cyrillic(c), "U+{u:04X}");
        }
        assert_eq!(norm_char('ə'), ALIEN);
        assert_eq!(norm_char('Ґ'), b'G');
    }

    #[test]
    fn cyrillic_by_look_and_by_sound() {
        let read = |s: &str| -> String { s.chars().map(|c| char::from(norm_char(c))).collect() };
        assert_eq!(read("АЗЕ азэ"), "AZE AZE");
        assert_eq!(read("МУИ МЙИ МЫИ МЮИ"), "MYi MYi MYi MYi");
        assert_eq!(read("ДУИ дйи"), "DYi DYi");
        assert_eq!(read("МОМ"), "MOM");
        assert_eq!(read("Жя"), "##");
    }
}
