//! The parser against the texts people really send.

use super::*;

/// The April 2020 document kinds, as the rules file lists them.
fn kinds() -> Vec<DocumentKind> {
    let kind = |series: &str, key: &str, name: &str, digits: &[u8]| DocumentKind {
        series: series.into(),
        key: key.into(),
        name: name.into(),
        digits: digits.to_vec(),
    };
    vec![
        kind("AZE", "AZE", "old ID card", &[8, 7]),
        kind("AA", "AA", "biometric ID card", &[7]),
        kind("MYİ", "MYI", "permanent residence permit", &[7]),
        kind("DYİ", "DYI", "temporary residence permit", &[7]),
        kind("MOM", "MOM", "stay extension decision", &[7]),
    ]
}

fn parser() -> Parser {
    Parser::new(&kinds(), [1, 2, 3])
}

type Want = Result<Parsed, ParseError>;

fn doc(series: &str, number: &str) -> Document {
    Document::new(series.as_bytes(), number.as_bytes()).expect("test document")
}

/// An accepted text: code, series key, number digits, extra.
fn ok(code: u8, series: &str, number: &str, extra: &str) -> Want {
    Ok(Parsed::Permits(OneOrMore::One(PermitRequest {
        code,
        document: doc(series, number),
        extra: extra.into(),
    })))
}

/// A family: one code, several (series key, number), the extra shared.
fn family(code: u8, docs: &[(&str, &str)], extra: &str) -> Want {
    Ok(Parsed::Permits(OneOrMore::More(
        docs.iter()
            .map(|(series, number)| PermitRequest {
                code,
                document: doc(series, number),
                extra: extra.into(),
            })
            .collect(),
    )))
}

fn status(docs: &[(&str, &str)]) -> Want {
    let docs: Vec<Document> = docs.iter().map(|(s, n)| doc(s, n)).collect();
    Ok(Parsed::Status(OneOrMore::collect(docs.into_iter())))
}

const HELP: Want = Ok(Parsed::Help);

fn unknown_code(code: u32) -> Want {
    Err(ParseError::UnknownCode { code })
}

fn two_codes(first: u8, second: u8) -> Want {
    Err(ParseError::TwoCodes { first, second })
}

fn unknown_series(series: &str) -> Want {
    Err(ParseError::UnknownSeries {
        series: series.into(),
    })
}

fn no_number(series: &str) -> Want {
    Err(ParseError::NoNumber {
        series: series.into(),
    })
}

fn wrong(series: &str, got: usize, expected: &[u8]) -> Want {
    Err(ParseError::WrongDigitCount {
        series: series.into(),
        got,
        expected: expected.to_vec(),
    })
}

fn ambiguous(first: &str, second: &str) -> Want {
    Err(ParseError::AmbiguousNumber {
        first: first.into(),
        second: second.into(),
    })
}

const AZE: &[u8] = &[8, 7];
const SEVEN: &[u8] = &[7];
const NO_CODE: Want = Err(ParseError::NoCode);
const NO_DOCUMENT: Want = Err(ParseError::NoDocument);
const EMPTY: Want = Err(ParseError::Empty);

fn cases() -> Vec<(&'static str, Want)> {
    vec![
        // Every kind, clean.
        ("2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("1 AA1234567", ok(1, "AA", "1234567", "")),
        ("2 MYİ1234567", ok(2, "MYI", "1234567", "")),
        ("3 DYİ 1234567", ok(3, "DYI", "1234567", "")),
        ("2 MOM 1234567", ok(2, "MOM", "1234567", "")),
        ("2 MYI 1234567", ok(2, "MYI", "1234567", "")),
        ("2 DYI1234567", ok(2, "DYI", "1234567", "")),
        ("1 aa1234567", ok(1, "AA", "1234567", "")),
        // Case and spacing.
        ("2 aze 11111111", ok(2, "AZE", "11111111", "")),
        ("2 Aze 11111111", ok(2, "AZE", "11111111", "")),
        ("2aze11111111", ok(2, "AZE", "11111111", "")),
        ("2AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("2   AZE   11111111", ok(2, "AZE", "11111111", "")),
        ("  2 AZE 11111111  ", ok(2, "AZE", "11111111", "")),
        ("2 mom1234567", ok(2, "MOM", "1234567", "")),
        // Separators inside the number.
        ("2 aze 1111 1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 1111-1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 1111.1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 1111 - 1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 1111  1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 11 11 11 11", ok(2, "AZE", "11111111", "")),
        ("1 aa 123 45 67", ok(1, "AA", "1234567", "")),
        ("2 AZE 1111–1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE\u{A0}1111\u{A0}1111", ok(2, "AZE", "11111111", "")),
        // The dotted and dotless i, both cases, and a combining dot.
        ("2 myi 1234567", ok(2, "MYI", "1234567", "")),
        ("2 myı 1234567", ok(2, "MYI", "1234567", "")),
        ("2 MYı1234567", ok(2, "MYI", "1234567", "")),
        ("2 mYİ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 DYi 1234567", ok(2, "DYI", "1234567", "")),
        ("2 dyİ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 dyı 1234567", ok(2, "DYI", "1234567", "")),
        ("2 MYI\u{307} 1234567", ok(2, "MYI", "1234567", "")),
        // Cyrillic look-alikes, alone and mixed with Latin.
        ("2 АZЕ 11111111", ok(2, "AZE", "11111111", "")),
        ("2 azе 11111111", ok(2, "AZE", "11111111", "")),
        ("1 АА 1234567", ok(1, "AA", "1234567", "")),
        ("1 аа1234567", ok(1, "AA", "1234567", "")),
        ("2 МОМ 1234567", ok(2, "MOM", "1234567", "")),
        ("2 мом 1234567", ok(2, "MOM", "1234567", "")),
        ("2 МУІ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 DУİ 1234567", ok(2, "DYI", "1234567", "")),
        ("3 d\u{443}\u{456} 1234567", ok(3, "DYI", "1234567", "")),
        // Cyrillic by sound: how a Russian speaker spells A-Z-E, M-Y-I, D-Y-I, M-O-M.
        ("2 АЗЕ 11111111", ok(2, "AZE", "11111111", "")),
        ("2 азе 11111111", ok(2, "AZE", "11111111", "")),
        ("2 АЗЭ 11111111", ok(2, "AZE", "11111111", "")),
        ("2 азэ11111111", ok(2, "AZE", "11111111", "")),
        ("2АЗЕ11111111", ok(2, "AZE", "11111111", "")),
        ("2 МУИ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 муи 1234567", ok(2, "MYI", "1234567", "")),
        ("2 МЙИ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 МЫИ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 МЮИ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 МИИ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 ДУИ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 дуи 1234567", ok(2, "DYI", "1234567", "")),
        ("2 ДЙИ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 ДЫИ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 ДЮИ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 ДИИ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 ДУІ 1234567", ok(2, "DYI", "1234567", "")),
        ("код 2 АЗЕ 11111111", ok(2, "AZE", "11111111", "")),
        // Full-width letters and the decimal digits of every script.
        ("２ ＡＺＥ １１１１１１１１", ok(2, "AZE", "11111111", "")),
        ("2 ａｚｅ 11111111", ok(2, "AZE", "11111111", "")),
        ("２AZE１２３４５６７８", ok(2, "AZE", "12345678", "")),
        ("1 ＡＡ１２３４５６７", ok(1, "AA", "1234567", "")),
        ("٢ AZE ١١١١١١١١", ok(2, "AZE", "11111111", "")),
        ("۲ AZE ۱۲۳۴۵۶۷۸", ok(2, "AZE", "12345678", "")),
        ("२ AZE १२३४५६७८", ok(2, "AZE", "12345678", "")),
        ("২ AZE ১২৩৪৫৬৭৮", ok(2, "AZE", "12345678", "")),
        ("๒ AA ๑๒๓๔๕๖๗", ok(2, "AA", "1234567", "")),
        (
            "2 AA \u{1D7CF}\u{1D7D0}\u{1D7D1}4567",
            ok(2, "AA", "1234567", ""),
        ),
        ("2 MOM ༡༢༣༤༥༦༧", ok(2, "MOM", "1234567", "")),
        ("2 AZE ١١١١ 1111", ok(2, "AZE", "11111111", "")),
        // Other whitespace.
        ("2\tAZE\t11111111", ok(2, "AZE", "11111111", "")),
        ("2\nAZE\n11111111", ok(2, "AZE", "11111111", "")),
        ("2\r\nAZE\r\n11111111\r\n", ok(2, "AZE", "11111111", "")),
        ("2\u{A0}AZE\u{A0}11111111", ok(2, "AZE", "11111111", "")),
        ("2\u{3000}AZE\u{3000}11111111", ok(2, "AZE", "11111111", "")),
        ("2 AZE\u{200B}11111111", ok(2, "AZE", "11111111", "")),
        ("\u{FEFF}2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        // Punctuation separators.
        ("2,AZE,11111111", ok(2, "AZE", "11111111", "")),
        ("2-AZE-11111111", ok(2, "AZE", "11111111", "")),
        ("2.AZE11111111", ok(2, "AZE", "11111111", "")),
        ("2;AZE;11111111", ok(2, "AZE", "11111111", "")),
        ("2/AZE/11111111", ok(2, "AZE", "11111111", "")),
        ("2 / AZE / 11111111", ok(2, "AZE", "11111111", "")),
        ("2 AZE: 11111111", ok(2, "AZE", "11111111", "")),
        ("2 AZE №11111111", ok(2, "AZE", "11111111", "")),
        ("2—AZE—11111111", ok(2, "AZE", "11111111", "")),
        ("2, aze, 1111-1111.", ok(2, "AZE", "11111111", "")),
        ("\"2 AZE 11111111\"", ok(2, "AZE", "11111111", "")),
        ("👍 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        // Any order, words before and after.
        ("AZE 11111111 2", ok(2, "AZE", "11111111", "")),
        ("AZE11111111 2", ok(2, "AZE", "11111111", "")),
        ("AA 1234567 kod 1", ok(1, "AA", "1234567", "")),
        ("11111111 AZE 2", ok(2, "AZE", "11111111", "")),
        ("2 1234567 AA", ok(2, "AA", "1234567", "")),
        ("Kod 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("Kod: 2. AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("kodu 2, AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("Код 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("Salam! 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        (
            "Salam, zəhmət olmasa 2 AZE 11111111",
            ok(2, "AZE", "11111111", ""),
        ),
        (
            "2 AZE 11111111 zəhmət olmasa",
            ok(2, "AZE", "11111111", "zəhmət olmasa"),
        ),
        (
            "Здравствуйте, пожалуйста 2 AZE 11111111",
            ok(2, "AZE", "11111111", ""),
        ),
        (
            "please 2 AZE 11111111 thanks",
            ok(2, "AZE", "11111111", "thanks"),
        ),
        ("ə 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
        (
            "AZE 11111111 kod 2 sağ olun",
            ok(2, "AZE", "11111111", "sağ olun"),
        ),
        ("AZE 1234567 2", ok(2, "AZE", "1234567", "")),
        ("AZE 1234567 kod 2", ok(2, "AZE", "1234567", "")),
        ("2 AZE 1234567 2", ok(2, "AZE", "12345672", "")),
        // The same document twice, the code after the second: once (was two requests).
        ("AZE 6819158 AZE 6819158 2", ok(2, "AZE", "6819158", "")),
        (
            "AA 1234567 AZE 6819158 AZE 6819158 2",
            family(2, &[("AA", "1234567"), ("AZE", "6819158")], ""),
        ),
        ("02 AZE 11111111", ok(2, "AZE", "11111111", "")),
        // Series letters spread out.
        ("2 A Z E 11111111", ok(2, "AZE", "11111111", "")),
        ("2 a z e 1111 1111", ok(2, "AZE", "11111111", "")),
        ("1 A A 1234567", ok(1, "AA", "1234567", "")),
        ("2 M Y İ 1234567", ok(2, "MYI", "1234567", "")),
        ("2 M.O.M 1234567", ok(2, "MOM", "1234567", "")),
        ("2 AZ E 11111111", ok(2, "AZE", "11111111", "")),
        ("2 А З Е 11111111", ok(2, "AZE", "11111111", "")),
        ("2 M0M 1234567", ok(2, "MOM", "1234567", "")),
        // O for 0, l and I for 1 inside the number.
        ("2 AZE 1111O111", ok(2, "AZE", "11110111", "")),
        ("2 AZE 1111o111", ok(2, "AZE", "11110111", "")),
        ("2 AZE 11111l11", ok(2, "AZE", "11111111", "")),
        ("2 AZE 1111I111", ok(2, "AZE", "11111111", "")),
        ("2 AZE O1234567", ok(2, "AZE", "01234567", "")),
        ("2 AZE 1234567O", ok(2, "AZE", "12345670", "")),
        ("2 AZEO1234567", ok(2, "AZE", "01234567", "")),
        ("2 AZE 1111 O111", ok(2, "AZE", "11110111", "")),
        ("2 AZE 1OO11111", ok(2, "AZE", "10011111", "")),
        ("1 AA 12345б7", wrong("AA", 5, SEVEN)),
        ("2 MOM O234567", ok(2, "MOM", "0234567", "")),
        ("2 AZE 1111О111", ok(2, "AZE", "11110111", "")),
        // `?` for a letter the SMSC lost.
        ("2 MY?1234567", ok(2, "MYI", "1234567", "")),
        ("2 MY? 1234567", ok(2, "MYI", "1234567", "")),
        ("2 my?1234567", ok(2, "MYI", "1234567", "")),
        ("2 D?İ 1234567", ok(2, "DYI", "1234567", "")),
        ("2 DY? 1234567", ok(2, "DYI", "1234567", "")),
        ("2 M?M 1234567", ok(2, "MOM", "1234567", "")),
        ("2 ?ZE 11111111", ok(2, "AZE", "11111111", "")),
        ("2 AZE? 11111111", ok(2, "AZE", "11111111", "")),
        ("2 M?? 1234567", unknown_series("M??")),
        ("2 ?Y? 1234567", unknown_series("?Y?")),
        // Families: one code, several documents.
        (
            "2 AZE 11111111 AA 1234567 MYİ 7654321",
            family(
                2,
                &[("AZE", "11111111"), ("AA", "1234567"), ("MYI", "7654321")],
                "",
            ),
        ),
        (
            "2 AZE 11111111, AA 1234567",
            family(2, &[("AZE", "11111111"), ("AA", "1234567")], ""),
        ),
        (
            "2\nAZE 11111111\nAA 1234567\nMOM 7654321",
            family(
                2,
                &[("AZE", "11111111"), ("AA", "1234567"), ("MOM", "7654321")],
                "",
            ),
        ),
        (
            "AZE 11111111 AA 1234567 2",
            family(2, &[("AZE", "11111111"), ("AA", "1234567")], ""),
        ),
        (
            "2 AZE 11111111 2 AA 1234567",
            family(2, &[("AZE", "11111111"), ("AA", "1234567")], ""),
        ),
        (
            "2 aze11111111 aa1234567 dyı7654321",
            family(
                2,
                &[("AZE", "11111111"), ("AA", "1234567"), ("DYI", "7654321")],
                "",
            ),
        ),
        (
            "2 AZE 1234567 AA 7654321",
            family(2, &[("AZE", "1234567"), ("AA", "7654321")], ""),
        ),
        (
            "2 AZE 11111111 AA 1234567 MYİ 7654321 DYİ 1111111 MOM 2222222",
            family(
                2,
                &[
                    ("AZE", "11111111"),
                    ("AA", "1234567"),
                    ("MYI", "7654321"),
                    ("DYI", "1111111"),
                    ("MOM", "2222222"),
                ],
                "",
            ),
        ),
        (
            "2 AZE 11111111 AA 1234567 MYİ 7654321 DYİ 1111111 MOM 2222222 AA 7777777",
            Err(ParseError::TooManyDocuments { max: 5, got: 6 }),
        ),
        ("2 AZE 11111111 AZE 11111111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 11111111 aze 1111 1111", ok(2, "AZE", "11111111", "")),
        ("2 AZE 11111111 AA 123", wrong("AA", 3, SEVEN)),
        ("2 AZE 11111111 AA", no_number("AA")),
        ("2 AZE 11111111 7654321", NO_DOCUMENT),
        ("2 AZE 11111111 XYZ 7654321", unknown_series("XYZ")),
        ("2 AZE 11111111 3 AA 1234567", two_codes(2, 3)),
        ("2 AZE 1234567 AA", ambiguous("AZE", "AA")),
        ("2 AA 1234567 MOM", ambiguous("AA", "MOM")),
        ("2 AA1234567 MOM", no_number("MOM")),
        // Help.
        ("kömək", HELP),
        ("KÖMƏK", HELP),
        ("komek", HELP),
        ("yardım", HELP),
        ("Yardim", HELP),
        ("help", HELP),
        ("HELP", HELP),
        ("Help?", HELP),
        ("info", HELP),
        ("помощь", HELP),
        ("Справка", HELP),
        ("?", HELP),
        (" ? ", HELP),
        ("??", HELP),
        ("Salam, kömək", HELP),
        ("help please", HELP),
        ("Hello?", NO_CODE),
        ("kömək 2", NO_DOCUMENT),
        // Status.
        ("status AZE 11111111", status(&[("AZE", "11111111")])),
        ("Status: aze 1111 1111", status(&[("AZE", "11111111")])),
        ("vəziyyət AA 1234567", status(&[("AA", "1234567")])),
        ("статус АЗЕ 11111111", status(&[("AZE", "11111111")])),
        ("status 2 AZE 11111111", status(&[("AZE", "11111111")])),
        (
            "status AZE 11111111 AA 1234567",
            status(&[("AZE", "11111111"), ("AA", "1234567")]),
        ),
        ("status", NO_DOCUMENT),
        ("status AZE 123", wrong("AZE", 3, AZE)),
        // Plates and extra words stay in `extra`.
        (
            "2 AZE 11111111 10-AB-123",
            ok(2, "AZE", "11111111", "10-AB-123"),
        ),
        ("2 AZE 11111111 market", ok(2, "AZE", "11111111", "market")),
        (
            "2 AZE 11111111 10AB123",
            ok(2, "AZE", "11111111", "10AB123"),
        ),
        ("2 AZE 1234567 10AB123", ok(2, "AZE", "1234567", "10AB123")),
        (
            "2 AZE 1234567 10-AB-123",
            ok(2, "AZE", "1234567", "10-AB-123"),
        ),
        (
            "1 AA 1234567 10 AB 123",
            ok(1, "AA", "1234567", "10 AB 123"),
        ),
        (
            "1 AA 1234567 10 AA 123",
            ok(1, "AA", "1234567", "10 AA 123"),
        ),
        (
            "2 AZE 11111111 90AA123",
            ok(2, "AZE", "11111111", "90AA123"),
        ),
        ("2 AZE 11111111, market", ok(2, "AZE", "11111111", "market")),
        ("2 AZE 11111111 👍", ok(2, "AZE", "11111111", "👍")),
        ("2 AZE11111111market", ok(2, "AZE", "11111111", "market")),
        ("3 MOM 7654321 qohum", ok(3, "MOM", "7654321", "qohum")),
        (
            "2 Aze 11111111 10-AB-123 bazar",
            ok(2, "AZE", "11111111", "10-AB-123 bazar"),
        ),
        ("2 AZE 1111 1111 1111", ok(2, "AZE", "11111111", "1111")),
        ("2 AZE 1234567 1AB", ok(2, "AZE", "1234567", "1AB")),
        ("2 AZE 11111111 ev 15", ok(2, "AZE", "11111111", "ev 15")),
        (
            "2 AZE 11111111 tel 0501234567",
            ok(2, "AZE", "11111111", "tel 0501234567"),
        ),
        ("2 AZE 1234\n5678", wrong("AZE", 4, AZE)),
        ("1 AA 1234567\n8", ok(1, "AA", "1234567", "8")),
        // Digit counts: 7-digit AZE, leading zeros, the longest allowed match.
        ("2 AZE 1234567", ok(2, "AZE", "1234567", "")),
        ("2 AZE 1234567 8", ok(2, "AZE", "12345678", "")),
        ("2 AZE 01111111", ok(2, "AZE", "01111111", "")),
        ("2 AZE 0111111", ok(2, "AZE", "0111111", "")),
        ("1 AA 0000001", ok(1, "AA", "0000001", "")),
        // Refusals: empty.
        ("", EMPTY),
        ("   ", EMPTY),
        ("\t\n\u{A0}\u{3000}", EMPTY),
        ("\u{200B}", EMPTY),
        // No code.
        ("AZE 11111111", NO_CODE),
        ("AZE 11111111 AA 1234567", NO_CODE),
        ("salam", NO_CODE),
        ("Salam, icazə necə alınır?", NO_CODE),
        ("😀", NO_CODE),
        ("...", NO_CODE),
        ("11111111", NO_CODE),
        ("99999999999 AZE 11111111", NO_CODE),
        // Unknown code, two codes.
        ("7 AZE 11111111", unknown_code(7)),
        ("0 AZE 11111111", unknown_code(0)),
        ("256 AZE 11111111", unknown_code(256)),
        ("7 XYZ 1", unknown_code(7)),
        ("AZE 11111111 12", unknown_code(12)),
        ("1 2 AZE 11111111", two_codes(1, 2)),
        ("2 AZE 11111111 3", two_codes(2, 3)),
        // No document.
        ("2", NO_DOCUMENT),
        ("2   ", NO_DOCUMENT),
        ("2 11111111", NO_DOCUMENT),
        ("2, 😀", NO_DOCUMENT),
        ("kod 2", NO_DOCUMENT),
        // Unknown series.
        ("2 XYZ 1234567", unknown_series("XYZ")),
        ("2 xyz 1234567", unknown_series("xyz")),
        ("2 AZ 11111111", unknown_series("AZ")),
        ("2 AZEN 11111111", unknown_series("AZEN")),
        ("2 ŞƏK 1234567", unknown_series("ŞƏK")),
        ("2 ЖУИ 1234567", unknown_series("ЖУИ")),
        ("2 market", unknown_series("market")),
        ("2 AZƏ 11111111", unknown_series("AZƏ")),
        ("salam 2 PAS 1234567", unknown_series("PAS")),
        // No number.
        ("2 AZE", no_number("AZE")),
        ("2 AZE market", no_number("AZE")),
        ("1 AA", no_number("AA")),
        ("2 MYİ ", no_number("MYİ")),
        ("2 myi, ?", no_number("MYİ")),
        // Wrong digit count.
        ("2 AZE 111111111", wrong("AZE", 9, AZE)),
        ("2 AZE 123", wrong("AZE", 3, AZE)),
        ("1 AA 12345678", wrong("AA", 8, SEVEN)),
        ("1 AA 123456", wrong("AA", 6, SEVEN)),
        ("2 MOM 12345", wrong("MOM", 5, SEVEN)),
        ("2 DYİ 12345678", wrong("DYİ", 8, SEVEN)),
        ("2 MYI 123456", wrong("MYİ", 6, SEVEN)),
        ("1 AA 1234 56", wrong("AA", 6, SEVEN)),
        ("2 AZE 1234,5678", wrong("AZE", 4, AZE)),
        ("2 AZE 1111 1111AB", wrong("AZE", 4, AZE)),
        ("2 AZE 1234--5678", wrong("AZE", 4, AZE)),
        ("2 AZE 1111111111111111111111", wrong("AZE", 22, AZE)),
    ]
}

#[test]
fn table() {
    let parser = parser();
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = parser.parse(text);
        if &got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The one request of an accepted text.
fn one(got: Want) -> PermitRequest {
    match got {
        Ok(Parsed::Permits(OneOrMore::One(request))) => request,
        other => panic!("not one request: {other:?}"),
    }
}

#[test]
fn long_texts_are_bounded() {
    let parser = parser();
    let tail = "x".repeat(10_000);
    let got = one(parser.parse(&format!("2 AZE 11111111 {tail}")));
    assert_eq!(got.extra.len(), MAX_EXTRA_BYTES);
    let got = one(parser.parse(&format!("2 AZE 11111111 {}", "ə".repeat(200))));
    assert!(got.extra.len() <= MAX_EXTRA_BYTES && got.extra.chars().all(|c| c == 'ə'));
    let lead = " ".repeat(10_000);
    assert_eq!(
        parser.parse(&format!("{lead}2 AZE 11111111")),
        ok(2, "AZE", "11111111", "")
    );
    assert_eq!(
        parser.parse(&format!("2 {}", "A".repeat(10_000))),
        unknown_series(&"A".repeat(MAX_ECHO_CHARS))
    );
    assert_eq!(parser.parse(&"9".repeat(10_000)), NO_CODE);
    assert_eq!(
        parser.parse(&format!("2 AZE {}", "1".repeat(10_000))),
        wrong("AZE", 10_000, AZE)
    );
    assert_eq!(parser.parse(&" ".repeat(10_000)), EMPTY);
    // Many tokens spill to the heap and are all read: a document at the end is not lost.
    let words = "salam ".repeat(2_000);
    let got = parser.parse(&format!("2 AZE 11111111 {words} AA 1234567"));
    let Ok(Parsed::Permits(requests)) = got else {
        panic!("not permits: {got:?}");
    };
    let documents: Vec<Document> = requests.iter().map(|r| r.document).collect();
    assert_eq!(documents, [doc("AZE", "11111111"), doc("AA", "1234567")]);
}

#[test]
fn reasons_are_the_reply_keys() {
    let errors = [
        (ParseError::Empty, "empty"),
        (ParseError::NoCode, "no_code"),
        (ParseError::UnknownCode { code: 7 }, "unknown_code"),
        (ParseError::NoDocument, "no_document"),
        (
            ParseError::UnknownSeries {
                series: "XYZ".into(),
            },
            "unknown_series",
        ),
        (
            ParseError::NoNumber {
                series: "AZE".into(),
            },
            "no_number",
        ),
        (
            ParseError::WrongDigitCount {
                series: "AZE".into(),
                got: 9,
                expected: vec![8, 7],
            },
            "wrong_digit_count",
        ),
        (
            ParseError::TwoCodes {
                first: 2,
                second: 3,
            },
            "two_codes",
        ),
        (
            ParseError::AmbiguousNumber {
                first: "AZE".into(),
                second: "AA".into(),
            },
            "ambiguous_number",
        ),
        (
            ParseError::TooManyDocuments { max: 5, got: 6 },
            "too_many_documents",
        ),
    ];
    for (error, reason) in errors {
        assert_eq!(error.reason(), reason);
        assert!(!error.to_string().is_empty());
    }
}

#[test]
fn kinds_come_from_the_rules() {
    let kinds = vec![DocumentKind {
        series: "ÇX".into(),
        key: "CX".into(),
        name: "test".into(),
        digits: vec![5, 12],
    }];
    let parser = Parser::new(&kinds, [9]);
    assert_eq!(parser.parse("9 CX 12345"), ok(9, "CX", "12345", ""));
    assert_eq!(parser.parse("2 AZE 11111111"), unknown_code(2));
    assert_eq!(parser.parse("9 AZE 11111111"), unknown_series("AZE"));
    assert_eq!(
        parser.parse("9 CX 123456789012"),
        Err(ParseError::WrongDigitCount {
            series: "ÇX".into(),
            got: 12,
            expected: vec![5, 12],
        })
    );
}

/// The series as printed in the rules, with their keys.
const PRINTED: &[(&str, &str, &[u8])] = &[
    ("AZE", "AZE", &[8, 7]),
    ("AA", "AA", &[7]),
    ("MYİ", "MYI", &[7]),
    ("DYİ", "DYI", &[7]),
    ("MOM", "MOM", &[7]),
];

/// A request as a citizen might spell it: the kind, an allowed digit count, digits, a
/// separator style and a case.
fn request() -> impl proptest::strategy::Strategy<Value = (u8, usize, String)> {
    use proptest::prelude::*;
    (1u8..=3, 0..PRINTED.len()).prop_flat_map(|(code, kind)| {
        let lens = PRINTED[kind].2;
        proptest::sample::select(lens.to_vec()).prop_flat_map(move |len| {
            proptest::collection::vec(0u8..10, usize::from(len)).prop_map(move |d| {
                let number: String = d.iter().map(|d| char::from(b'0' + d)).collect();
                (code, kind, number)
            })
        })
    })
}

proptest::proptest! {
    #[test]
    fn never_panics(text in ".{0,80}") {
        let _ = parser().parse(&text);
    }

    #[test]
    fn never_panics_on_near_misses(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "2", "1", "AZE", "aze", "MYİ", "ı", " ", "  ", "-", ".", ",", "\n", "1111",
                "1234567", "8", "10AB123", "😀", "ə", "\u{200B}", "\u{307}", "９", "Ａ",
            ]),
            0..12,
        )
    ) {
        let text: String = parts.concat();
        if let Ok(Parsed::Permits(requests)) = parser().parse(&text) {
            for req in requests.iter() {
                proptest::prop_assert!(req.extra.len() <= MAX_EXTRA_BYTES);
            }
            proptest::prop_assert!(requests.len() <= DEFAULT_MAX_DOCUMENTS);
        }
    }

    #[test]
    fn the_shortcut_reads_like_the_general_reader(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "2", "1", "02", "7", "10", "AZE", "aze", "АЗЕ", "AA", "MYİ", "MY?", "M", "O",
                " ", ",", "-", "\n", "1111", "1234567", "11111111", "123", "8", "😀", "ə",
            ]),
            0..6,
        )
    ) {
        let text: String = parts.concat();
        let parser = parser();
        proptest::prop_assert_eq!(
            parser.parse(&text),
            read::Reader::parse_general(&parser, &text),
            "{:?}", text
        );
    }

    #[test]
    fn formatted_requests_round_trip(
        (code, kind, number) in request(),
        style in 0usize..8,
    ) {
        let (series, key, _) = PRINTED[kind];
        let text = match style {
            0 => format!("{code} {series} {number}"),
            1 => format!("{code}{}{number}", series.to_lowercase()),
            2 => format!("{code},{series},{number}"),
            3 => format!("{series} {number} {code}"),
            4 => format!("Kod {code} {series} {number} zəhmət olmasa"),
            5 => format!("{number} {series} {code}"),
            6 => format!("{code} {} {number}", series.chars().map(String::from).collect::<Vec<_>>().join(" ")),
            _ => format!("  {code}   {series}\u{A0}{number}\n"),
        };
        let extra = if style == 4 { "zəhmət olmasa" } else { "" };
        proptest::prop_assert_eq!(parser().parse(&text), ok(code, key, &number, extra));
    }

    #[test]
    fn families_round_trip(
        code in 1u8..=3,
        docs in proptest::collection::vec(request(), 1..=5),
        sep in proptest::sample::select(vec![" ", ", ", "\n", " və "]),
    ) {
        let mut text = format!("{code}");
        let mut want: Vec<(&str, String)> = Vec::new();
        for (_, kind, number) in &docs {
            let (series, key, _) = PRINTED[*kind];
            text.push_str(&format!("{sep}{series} {number}"));
            if !want.iter().any(|(k, n)| k == &key && n == number) {
                want.push((key, number.clone()));
            }
        }
        let want: Vec<(&str, &str)> = want.iter().map(|(k, n)| (*k, n.as_str())).collect();
        let expected = if want.len() == 1 {
            ok(code, want[0].0, want[0].1, "")
        } else {
            family(code, &want, "")
        };
        proptest::prop_assert_eq!(parser().parse(&text), expected);
    }
}
