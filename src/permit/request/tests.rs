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

/// An accepted text: code, series key, number digits, extra.
fn ok(code: u8, series: &str, number: &str, extra: &str) -> Result<PermitRequest, ParseError> {
    Ok(PermitRequest {
        code,
        document: Document::new(series.as_bytes(), number.as_bytes()).expect("test document"),
        extra: extra.into(),
    })
}

fn unknown_code(code: u32) -> Result<PermitRequest, ParseError> {
    Err(ParseError::UnknownCode { code })
}

fn unknown_series(series: &str) -> Result<PermitRequest, ParseError> {
    Err(ParseError::UnknownSeries {
        series: series.into(),
    })
}

fn no_number(series: &str) -> Result<PermitRequest, ParseError> {
    Err(ParseError::NoNumber {
        series: series.into(),
    })
}

fn wrong(series: &str, got: usize, expected: &[u8]) -> Result<PermitRequest, ParseError> {
    Err(ParseError::WrongDigitCount {
        series: series.into(),
        got,
        expected: expected.to_vec(),
    })
}

const AZE: &[u8] = &[8, 7];
const SEVEN: &[u8] = &[7];

#[allow(clippy::type_complexity)]
fn cases() -> Vec<(&'static str, Result<PermitRequest, ParseError>)> {
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
        // Full-width and Arabic-Indic digits, full-width letters.
        ("２ ＡＺＥ １１１１１１１１", ok(2, "AZE", "11111111", "")),
        ("2 ａｚｅ 11111111", ok(2, "AZE", "11111111", "")),
        ("２AZE１２３４５６７８", ok(2, "AZE", "12345678", "")),
        ("1 ＡＡ１２３４５６７", ok(1, "AA", "1234567", "")),
        ("٢ AZE ١١١١١١١١", ok(2, "AZE", "11111111", "")),
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
        ("2 AZE: 11111111", ok(2, "AZE", "11111111", "")),
        ("2 AZE №11111111", ok(2, "AZE", "11111111", "")),
        ("2—AZE—11111111", ok(2, "AZE", "11111111", "")),
        ("2, aze, 1111-1111.", ok(2, "AZE", "11111111", "")),
        ("\"2 AZE 11111111\"", ok(2, "AZE", "11111111", "")),
        ("👍 2 AZE 11111111", ok(2, "AZE", "11111111", "")),
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
        ("2 AZE 11111111, market", ok(2, "AZE", "11111111", "market")),
        ("2 AZE 11111111 👍", ok(2, "AZE", "11111111", "👍")),
        ("2 AZE11111111market", ok(2, "AZE", "11111111", "market")),
        ("3 MOM 7654321 qohum", ok(3, "MOM", "7654321", "qohum")),
        (
            "2 Aze 11111111 10-AB-123 bazar",
            ok(2, "AZE", "11111111", "10-AB-123 bazar"),
        ),
        (
            "2 AZE 11111111 2 AA 1234567",
            ok(2, "AZE", "11111111", "2 AA 1234567"),
        ),
        ("2 AZE 1111 1111 1111", ok(2, "AZE", "11111111", "1111")),
        ("2 AZE 1234567 1AB", ok(2, "AZE", "1234567", "1AB")),
        ("2 AZE 1234\n5678", wrong("AZE", 4, AZE)),
        ("1 AA 1234567\n8", ok(1, "AA", "1234567", "8")),
        // Digit counts: 7-digit AZE, leading zeros, the longest allowed match.
        ("2 AZE 1234567", ok(2, "AZE", "1234567", "")),
        ("2 AZE 1234567 8", ok(2, "AZE", "12345678", "")),
        ("2 AZE 01111111", ok(2, "AZE", "01111111", "")),
        ("2 AZE 0111111", ok(2, "AZE", "0111111", "")),
        ("1 AA 0000001", ok(1, "AA", "0000001", "")),
        ("02 AZE 11111111", ok(2, "AZE", "11111111", "")),
        // Refusals: empty.
        ("", Err(ParseError::Empty)),
        ("   ", Err(ParseError::Empty)),
        ("\t\n\u{A0}\u{3000}", Err(ParseError::Empty)),
        ("\u{200B}", Err(ParseError::Empty)),
        // No code.
        ("AZE 11111111", Err(ParseError::NoCode)),
        ("AZE 11111111 2", Err(ParseError::NoCode)),
        ("Kod 2 AZE 11111111", Err(ParseError::NoCode)),
        ("salam", Err(ParseError::NoCode)),
        ("😀", Err(ParseError::NoCode)),
        ("...", Err(ParseError::NoCode)),
        ("ə 2 AZE 11111111", Err(ParseError::NoCode)),
        // Unknown code.
        ("7 AZE 11111111", unknown_code(7)),
        ("0 AZE 11111111", unknown_code(0)),
        ("256 AZE 11111111", unknown_code(256)),
        ("99999999999 AZE 11111111", unknown_code(u32::MAX)),
        ("11111111", unknown_code(11_111_111)),
        ("7 XYZ 1", unknown_code(7)),
        // No document.
        ("2", Err(ParseError::NoDocument)),
        ("2   ", Err(ParseError::NoDocument)),
        ("2 11111111", Err(ParseError::NoDocument)),
        ("2, 😀", Err(ParseError::NoDocument)),
        // Unknown series.
        ("2 XYZ 1234567", unknown_series("XYZ")),
        ("2 xyz 1234567", unknown_series("xyz")),
        ("2 AZ 11111111", unknown_series("AZ")),
        ("2 AZEN 11111111", unknown_series("AZEN")),
        ("2 M0M 1234567", unknown_series("M")),
        ("2 ŞƏK 1234567", unknown_series("ŞƏK")),
        ("2 ДУИ 1234567", unknown_series("ДУИ")),
        ("2 market", unknown_series("market")),
        ("2 AZƏ 11111111", unknown_series("AZƏ")),
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
        ("2 AZE 1111O111", wrong("AZE", 4, AZE)),
        ("2 AZE 1111 1111AB", wrong("AZE", 4, AZE)),
        ("2 AZE 1234--5678", wrong("AZE", 4, AZE)),
        ("2 AZE 1111111111111111111111", wrong("AZE", 22, AZE)),
    ]
}

#[test]
fn table() {
    let parser = parser();
    let cases = cases();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = parser.parse(text);
        if &got != want {
            failures.push(format!("{text:?}: got {got:?}, want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn long_texts_are_bounded() {
    let parser = parser();
    let tail = "x".repeat(10_000);
    let got = parser
        .parse(&format!("2 AZE 11111111 {tail}"))
        .expect("accepted");
    assert_eq!(got.extra.len(), MAX_EXTRA_BYTES);
    let got = parser
        .parse(&format!("2 AZE 11111111 {}", "ə".repeat(200)))
        .expect("accepted");
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
    assert_eq!(parser.parse(&"9".repeat(10_000)), unknown_code(u32::MAX));
    assert_eq!(
        parser.parse(&format!("2 AZE {}", "1".repeat(10_000))),
        wrong("AZE", 10_000, AZE)
    );
    assert_eq!(parser.parse(&" ".repeat(10_000)), Err(ParseError::Empty));
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
        if let Ok(req) = parser().parse(&text) {
            proptest::prop_assert!(req.extra.len() <= MAX_EXTRA_BYTES);
        }
    }

    #[test]
    fn formatted_requests_round_trip(
        (code, kind, number) in request(),
        style in 0usize..4,
    ) {
        let (series, key, _) = PRINTED[kind];
        let text = match style {
            0 => format!("{code} {series} {number}"),
            1 => format!("{code}{}{number}", series.to_lowercase()),
            2 => format!("{code},{series},{number}"),
            _ => format!("  {code}   {series}\u{A0}{number}\n"),
        };
        let want = PermitRequest {
            code,
            document: Document::new(key.as_bytes(), number.as_bytes()).expect("valid"),
            extra: String::new(),
        };
        proptest::prop_assert_eq!(parser().parse(&text), Ok(want));
    }
}
