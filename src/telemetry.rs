//! Tracing set-up, the masks that keep whole document and phone numbers out of logs, and
//! the gateway's metrics ([`metrics`]).

pub mod metrics;

/// How log lines are written (`[log] format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, message, fields), for a log
    /// shipper.
    Json,
}

/// Starts logging to stderr in `format`; `RUST_LOG` filters (default `info`).
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        LogFormat::Json => builder.json().with_ansi(false).try_init(),
    };
}

/// A phone number with all but its last three digits hidden: `+99450***4567` → `********567`.
pub fn mask_msisdn(msisdn: &str) -> String {
    let chars: Vec<char> = msisdn.chars().collect();
    let keep = chars.len().min(3);
    let mut out = "*".repeat(chars.len() - keep);
    out.extend(&chars[chars.len() - keep..]);
    out
}

/// A citizen's text with every number hidden but its last two digits, so a log can say what
/// shape a bad message had without holding a document number. A number is any run of 3 or
/// more digits (any script's: Arabic-Indic, full-width, ...), however it was typed: digits
/// joined by up to three separators (`21-22-33-44`, `1234 - 5678`, `31.32.33.44`, `4 1 2 2 3 3 4 4`), and
/// the letters O, o, l, I where people type them for 0 and 1 inside a number.
pub fn mask_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let is_digit = |c: char| c.is_numeric();
    let is_separator = |c: char| matches!(c, ' ' | '-' | '.' | ',' | '/' | '_' | '\u{a0}');
    let is_lookalike = |c: char| matches!(c, 'O' | 'o' | 'l' | 'I');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !is_digit(chars[i]) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits, look-alike letters after a digit, and up to three separators
        // between digits.
        let start = i;
        let mut end = i;
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if is_digit(c) || (is_lookalike(c) && j > start) {
                j += 1;
                end = j;
            } else if is_separator(c) {
                let gap = (j..chars.len().min(j + 4))
                    .take_while(|&k| is_separator(chars[k]))
                    .count();
                match chars.get(j + gap) {
                    Some(&d) if gap <= 3 && is_digit(d) => j += gap,
                    _ => break,
                }
            } else {
                break;
            }
        }
        let run = &chars[start..end];
        let digits = run
            .iter()
            .filter(|&&c| is_digit(c) || is_lookalike(c))
            .count();
        if digits >= 3 {
            let mut shown = 0;
            let keep_from = digits - 2;
            for &c in run {
                if is_digit(c) || is_lookalike(c) {
                    out.push(if shown >= keep_from { c } else { '*' });
                    shown += 1;
                } else {
                    out.push(c);
                }
            }
        } else {
            out.extend(run);
        }
        i = end;
    }
    out
}

/// A system_id someone tried to bind with: its first two characters and its length, since a
/// refused one is as often a mistyped password as a name.
pub fn mask_system_id(system_id: &str) -> String {
    let shown: String = system_id.chars().take(2).collect();
    format!("{shown}…({} chars)", system_id.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_hide_numbers() {
        assert_eq!(mask_msisdn("994501234567"), "*********567");
        assert_eq!(mask_msisdn("12"), "12");
        assert_eq!(mask_text("2 AZE 11111234 car 10"), "2 AZE ******34 car 10");
    }

    #[test]
    fn numbers_typed_with_separators_or_lookalikes_are_masked_whole() {
        for (text, masked) in [
            ("2 AZE 21-22-33-44", "2 AZE **-**-**-44"),
            ("AZE 31.32.33.44", "AZE **.**.**.44"),
            ("2 AZE 4 1 2 2 3 3 4 4", "2 AZE * * * * * * 4 4"),
            ("AZE 1234 - 5678", "AZE **** - **78"),
            ("AZE 1234O678", "AZE ******78"),
            ("AA l234567", "AA l****67"),
            ("MYİ ١٢٣٤٥٦٧", "MYİ *****٦٧"),
            ("AZE １２３４５６７８", "AZE ******７８"),
            ("2 kod", "2 kod"),
            ("10 : 00", "10 : 00"),
        ] {
            assert_eq!(mask_text(text), masked, "{text:?}");
        }
    }

    #[test]
    fn a_system_id_shows_only_its_start() {
        assert_eq!(mask_system_id("secret12"), "se…(8 chars)");
        assert_eq!(mask_system_id("a"), "a…(1 chars)");
    }
}
