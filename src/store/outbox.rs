//! Replies owed, as the stores keep them: an MO is acknowledged only once its reply is
//! durable, so a crash (`kill -9`, power loss) between the acknowledgement and the
//! reply's delivery leaves the reply to be delivered after the restart.
//!
//! A reply is *owed* from the store round that makes it durable (with the MO's grant, in the
//! same journal commit) until it is *settled*: its last part was answered by the operator
//! (`deliver_sm_resp`/`submit_sm_resp` status 0), or refused for good. Settling is written
//! after the fact and without waiting, so a crash in the few milliseconds between the
//! answer and the next commit round may deliver that reply once more; a reply is never
//! lost. The body encoding here is shared by the journal (framed in `outbox.log`) and Redis
//! (one hash field per reply).

/// The longest reply text kept, in UTF-8 bytes (a family reply of five documents is well
/// under 1 KiB; a text longer than this is cut at a character boundary).
pub const MAX_TEXT: usize = 8 * 1024;

/// One reply owed to a citizen, durable until settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwedReply {
    /// The reply's id: unique in this gateway's outbox and growing in the order replies
    /// were owed.
    pub id: u64,
    /// The queue it waits in: an operator's `system_id`, or `@` and a connector's name.
    pub queue: String,
    /// Source address: the short number the citizen texted.
    pub source: String,
    /// The citizen's number.
    pub destination: String,
    /// Type of number of the destination.
    pub dest_ton: u8,
    /// Numbering plan of the destination.
    pub dest_npi: u8,
    /// The reply text.
    pub text: String,
    /// When it was owed, Unix seconds.
    pub owed_at: i64,
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Appends `r`'s body: id `u64`, owed_at `i64`, ton `u8`, npi `u8`, queue, source and
/// destination each as length `u8` + UTF-8 (cut to 255 bytes), text as length `u16` +
/// UTF-8 (cut to [`MAX_TEXT`]); little-endian.
pub fn encode_body(out: &mut Vec<u8>, r: &OwedReply) {
    out.extend_from_slice(&r.id.to_le_bytes());
    out.extend_from_slice(&r.owed_at.to_le_bytes());
    out.push(r.dest_ton);
    out.push(r.dest_npi);
    for s in [&r.queue, &r.source, &r.destination] {
        let s = cut(s, 255);
        out.push(s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    let text = cut(&r.text, MAX_TEXT);
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// The reply whose body is exactly `b`, if it is one.
pub fn decode_body(b: &[u8]) -> Option<OwedReply> {
    let mut r = Reader(b);
    let id = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let owed_at = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let dest_ton = r.take(1)?[0];
    let dest_npi = r.take(1)?[0];
    let mut short = || -> Option<String> {
        let n = usize::from(r.take(1)?[0]);
        Some(std::str::from_utf8(r.take(n)?).ok()?.to_string())
    };
    let (queue, source, destination) = (short()?, short()?, short()?);
    let n = usize::from(u16::from_le_bytes(r.take(2)?.try_into().ok()?));
    if n > MAX_TEXT {
        return None;
    }
    let text = std::str::from_utf8(r.take(n)?).ok()?.to_string();
    r.0.is_empty().then_some(OwedReply {
        id,
        queue,
        source,
        destination,
        dest_ton,
        dest_npi,
        text,
        owed_at,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn owed(id: u64, text: &str) -> OwedReply {
        OwedReply {
            id,
            queue: "azercell".into(),
            source: "8103".into(),
            destination: "994501234567".into(),
            dest_ton: 1,
            dest_npi: 1,
            text: text.into(),
            owed_at: 1_586_152_800,
        }
    }

    #[test]
    fn bodies_round_trip_and_long_texts_are_cut_at_a_character() {
        let r = owed(7, "İcazə verildi: 2 AZE ***111, 10:00-13:00");
        let mut b = Vec::new();
        encode_body(&mut b, &r);
        assert_eq!(decode_body(&b), Some(r));
        let long = owed(8, &"ə".repeat(MAX_TEXT));
        let mut b = Vec::new();
        encode_body(&mut b, &long);
        let back = decode_body(&b).expect("a cut text still decodes");
        assert!(back.text.len() <= MAX_TEXT && back.text.chars().all(|c| c == 'ə'));
        // A body with a byte too many or too few is not a reply.
        b.push(0);
        assert_eq!(decode_body(&b), None);
        assert_eq!(decode_body(&b[..b.len() - 2]), None);
    }
}
