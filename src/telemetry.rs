//! Tracing set-up, and the masks that keep whole document and phone numbers out of logs.

/// Starts logging to stderr; `RUST_LOG` filters (default `info`).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// A phone number with all but its last three digits hidden: `+99450***4567` → `********567`.
pub fn mask_msisdn(msisdn: &str) -> String {
    let chars: Vec<char> = msisdn.chars().collect();
    let keep = chars.len().min(3);
    let mut out = "*".repeat(chars.len() - keep);
    out.extend(&chars[chars.len() - keep..]);
    out
}

/// A citizen's text with every run of 3 or more digits hidden but its last two, so a log can
/// say what shape a bad message had without holding a document number.
pub fn mask_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let run = i - start;
            if run >= 3 {
                out.extend(std::iter::repeat_n('*', run - 2));
                out.extend(&chars[i - 2..i]);
            } else {
                out.extend(&chars[start..i]);
            }
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
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
}
