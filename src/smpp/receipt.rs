//! Delivery receipts as they arrive: which message they are for and what became of it.
//!
//! An SMSC reports on a message it accepted (its submit_sm_resp gave a message_id) with a
//! deliver_sm (or data_sm) whose esm_class message type bits say "receipt" (0x04 SMSC
//! delivery receipt; 0x08 SME acknowledgement, 0x10 user acknowledgement, 0x20
//! intermediate notification), or that carries a `receipted_message_id` TLV. Where the id
//! and the state are, SMPP leaves loose: SMPP 3.4 Appendix B's text
//! (`id:IIII sub:001 dlvrd:001 submit date:… done date:… stat:DELIVRD err:000 text:…`) in
//! short_message, which everyone sends, and the `receipted_message_id` and `message_state`
//! TLVs, which SMPP 3.4 added and many SMSCs send as well. The TLVs are exact where the text
//! is free-form, so they win when present.
//!
//! Parsing never fails: a receipt whose text says nothing we can read is still a receipt
//! (its esm_class says so), just one with no id or no state.

use super::message::IncomingSm;

/// A receipt's `stat:` (or `message_state`), as SMPP names the message states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// DELIVRD / DELIVERED (message_state 2): the handset has it.
    Delivered,
    /// EXPIRED (3): its validity period passed before it could be delivered.
    Expired,
    /// DELETED (4): cancelled at the SMSC.
    Deleted,
    /// UNDELIV / UNDELIVERABLE (5): it will never be delivered.
    Undeliverable,
    /// ACCEPTD / ACCEPTED (6): accepted on the subscriber's behalf (an intermediate state).
    Accepted,
    /// UNKNOWN (7), or a state no standard names.
    Unknown,
    /// REJECTD / REJECTED (8): refused by the network.
    Rejected,
    /// ENROUTE (1) or SCHEDULED (0): still on its way (an intermediate notification).
    Enroute,
    /// SKIPPED (9, SMPP 5.0): not sent, on purpose.
    Skipped,
}

impl Stat {
    /// Reads a `stat:` word (case-insensitive; the 7-letter SMPP 3.4 forms and the full
    /// words some SMSCs write). `None` for a word that names no state.
    pub fn from_word(word: &str) -> Option<Stat> {
        let upper = word.to_ascii_uppercase();
        Some(match upper.as_str() {
            "DELIVRD" | "DELIVERED" => Stat::Delivered,
            "EXPIRED" => Stat::Expired,
            "DELETED" => Stat::Deleted,
            "UNDELIV" | "UNDELIVERABLE" => Stat::Undeliverable,
            "ACCEPTD" | "ACCEPTED" => Stat::Accepted,
            "UNKNOWN" => Stat::Unknown,
            "REJECTD" | "REJECTED" => Stat::Rejected,
            "ENROUTE" | "SCHEDULED" => Stat::Enroute,
            "SKIPPED" => Stat::Skipped,
            _ => return None,
        })
    }

    /// Reads a `message_state` TLV value (SMPP 5.0 §4.8.4.37); an unassigned value is
    /// [`Stat::Unknown`].
    pub fn from_message_state(state: u8) -> Stat {
        match state {
            0 | 1 => Stat::Enroute,
            2 => Stat::Delivered,
            3 => Stat::Expired,
            4 => Stat::Deleted,
            5 => Stat::Undeliverable,
            6 => Stat::Accepted,
            8 => Stat::Rejected,
            9 => Stat::Skipped,
            _ => Stat::Unknown,
        }
    }

    /// Whether the message's fate is settled (no further receipt is expected for it):
    /// everything but ENROUTE and ACCEPTD.
    pub fn is_final(self) -> bool {
        !matches!(self, Stat::Enroute | Stat::Accepted)
    }
}

/// What a receipt says, as far as it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The SMSC's message_id it reports on, as written (`receipted_message_id`, else the
    /// text's `id:`); `None` when it names none.
    pub id: Option<String>,
    /// Its state (`message_state`, else the text's `stat:`); `None` when it names none we
    /// know.
    pub stat: Option<Stat>,
}

impl Receipt {
    /// Reads the receipt in `sm` (which [`IncomingSm::is_receipt`] said is one): TLVs first,
    /// the text for what they leave out.
    pub fn of(sm: &IncomingSm) -> Receipt {
        let text = parse_text(sm.payload());
        Receipt {
            id: sm.receipted_message_id.clone().or(text.id),
            stat: sm.message_state.map(Stat::from_message_state).or(text.stat),
        }
    }
}

/// Reads the `id:` and `stat:` fields of a receipt text in SMPP 3.4 Appendix B's format.
/// Keys are case-insensitive and must start a word (so `id:` is never read out of
/// `sid:` or out of the quoted `text:` after it, which comes last); a value runs to the next
/// space. A text without them gives a receipt with no id or no state.
pub fn parse_text(text: &[u8]) -> Receipt {
    // The quoted original text comes last and may hold anything, "id:" included.
    let head = find_key(text, b"text:").map_or(text, |(at, _)| &text[..at]);
    let value = |key: &[u8]| -> Option<String> {
        let (_, rest) = find_key(head, key)?;
        let rest = trim_start(rest);
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let v = std::str::from_utf8(&rest[..end]).ok()?;
        (!v.is_empty()).then(|| v.to_string())
    };
    Receipt {
        id: value(b"id:"),
        stat: value(b"stat:").and_then(|w| Stat::from_word(&w)),
    }
}

/// Where `key` (ASCII, lower case) first starts a word in `text`, case-insensitively:
/// its offset and the bytes after it.
fn find_key<'a>(text: &'a [u8], key: &[u8]) -> Option<(usize, &'a [u8])> {
    let n = key.len();
    (0..=text.len().checked_sub(n)?).find_map(|at| {
        let starts_word = at == 0 || text[at - 1].is_ascii_whitespace();
        (starts_word && text[at..at + n].eq_ignore_ascii_case(key)).then(|| (at, &text[at + n..]))
    })
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_texts_as_smscs_write_them() {
        use Stat::*;
        let cases: &[(&str, Option<&str>, Option<Stat>)] = &[
            (
                "id:1234567890 sub:001 dlvrd:001 submit date:2004011200 done date:2004011201 stat:DELIVRD err:000 text:2 AZE 11111111",
                Some("1234567890"),
                Some(Delivered),
            ),
            // Hex ids, lower-case keys and states, leading zeros kept as written.
            (
                "id:00AB12F0 sub:001 dlvrd:000 stat:undeliv err:001",
                Some("00AB12F0"),
                Some(Undeliverable),
            ),
            ("ID:77 STAT:EXPIRED", Some("77"), Some(Expired)),
            ("id:5 stat:DELETED", Some("5"), Some(Deleted)),
            ("id:5 stat:REJECTD", Some("5"), Some(Rejected)),
            ("id:5 stat:ACCEPTD", Some("5"), Some(Accepted)),
            ("id:5 stat:ENROUTE", Some("5"), Some(Enroute)),
            ("id:5 stat:UNKNOWN", Some("5"), Some(Unknown)),
            ("id:5 stat:DELIVERED", Some("5"), Some(Delivered)),
            // A space after the colon (some SMSCs) is skipped.
            ("id: 42 stat: DELIVRD", Some("42"), Some(Delivered)),
            // A state nobody names: the id still counts.
            ("id:9 stat:WHATEVER", Some("9"), None),
            // Keys only at the start of a word; the quoted text is never read.
            ("sid:1 stat:DELIVRD text:id:666", None, Some(Delivered)),
            ("id:3 text:stat:DELIVRD", Some("3"), None),
            // Malformed: still a receipt, with nothing in it.
            ("", None, None),
            ("id:", None, None),
            ("2 AZE 11111111", None, None),
        ];
        for (text, id, stat) in cases {
            let r = parse_text(text.as_bytes());
            assert_eq!(
                (r.id.as_deref(), r.stat),
                (*id, *stat),
                "{text:?} reads as {r:?}"
            );
        }
        // Not UTF-8 after a key: no id, no panic.
        assert_eq!(parse_text(b"id:\xff\xfe stat:DELIVRD").id, None);
    }

    #[test]
    fn message_states_and_which_are_final() {
        assert_eq!(Stat::from_message_state(2), Stat::Delivered);
        assert_eq!(Stat::from_message_state(5), Stat::Undeliverable);
        assert_eq!(Stat::from_message_state(1), Stat::Enroute);
        assert_eq!(Stat::from_message_state(200), Stat::Unknown);
        assert!(Stat::Delivered.is_final() && Stat::Rejected.is_final());
        assert!(!Stat::Enroute.is_final() && !Stat::Accepted.is_final());
    }
}
