//! MO intake on the wire: from an incoming short message to its text, holding the parts of
//! a concatenated one until the last arrives, and saying which held messages will never
//! complete (so the citizen can be told to send it again).
//!
//! What happens to the text after (deciding, the operator's rate and queue) is not the
//! wire's business; the caller checks that first and asks here only for the text.

use crate::smpp::codec::{IncomingSm, Status};
use crate::smpp::concat::{Expired, MessageKey, Offer, Part, Reassembler, ReassemblyConfig};
use crate::smpp::text::{self, DefaultAlphabet};
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// Concatenated messages one session holds at once.
const MAX_PENDING: usize = 1_000;

/// Where a held part came from, to answer its sender if the message never completes.
#[derive(Debug, Clone)]
struct PartToken {
    source_ton: u8,
    source_npi: u8,
    destination: String,
}

/// A concatenated MO that will never complete; its parts were acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abandoned {
    /// The citizen's number.
    pub source: String,
    /// Its type of number.
    pub source_ton: u8,
    /// Its numbering plan.
    pub source_npi: u8,
    /// The short number it was sent to.
    pub destination: String,
    /// Parts that had arrived.
    pub parts: usize,
}

/// What one incoming short message gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// A whole text: hand it over, acknowledge once it is decided.
    Whole(String),
    /// A part held (or a duplicate of one): acknowledge now; the last part carries the
    /// decision.
    Held,
    /// Refused with this status (bad coding, bad concatenation info).
    Refused(Status),
}

/// The intake state of one session: its concatenated messages in progress.
#[derive(Debug)]
pub struct Intake {
    concat: Reassembler<(), PartToken>,
}

impl Intake {
    /// Holds parts for up to `timeout` each.
    pub fn new(timeout: Duration) -> Self {
        Intake {
            concat: Reassembler::new(ReassemblyConfig {
                timeout,
                max_pending: MAX_PENDING,
                ..ReassemblyConfig::default()
            }),
        }
    }

    /// The text of `sm` at `now`. `abandoned` is called with a held message pushed out to
    /// make room, if any.
    pub fn text(
        &mut self,
        sm: &IncomingSm,
        now: Instant,
        mut abandoned: impl FnMut(Abandoned),
    ) -> Text {
        let segment = match sm.segment() {
            Ok(s) => s,
            Err(e) => return Text::Refused(e.status()),
        };
        let Some(concat) = segment.concat else {
            return match text::decode(sm.data_coding, &segment.user_data) {
                Ok(t) => Text::Whole(t),
                Err(e) => Text::Refused(e.status()),
            };
        };
        let key = MessageKey {
            link: (),
            source: Bytes::copy_from_slice(sm.source.as_bytes()),
            reference: concat.reference,
            total: concat.total,
        };
        let part = Part {
            seq: concat.seq,
            data_coding: sm.data_coding,
            default_alphabet: DefaultAlphabet::Gsm7,
            user_data: segment.user_data,
            token: PartToken {
                source_ton: sm.source.ton,
                source_npi: sm.source.npi,
                destination: sm.destination.as_str().to_string(),
            },
        };
        match self.concat.offer(key, part, now.into_std()) {
            Offer::Incomplete { evicted, .. } => {
                if let Some(e) = evicted.and_then(abandon) {
                    abandoned(e);
                }
                Text::Held
            }
            Offer::Duplicate(_) => Text::Held,
            Offer::Rejected(_, why) => Text::Refused(why.status()),
            Offer::Complete(done) => match done.text {
                Ok(t) => Text::Whole(t),
                Err(e) => Text::Refused(e.status()),
            },
        }
    }

    /// When a held message next times out.
    pub fn deadline(&self) -> Option<Instant> {
        self.concat.next_deadline().map(Instant::from_std)
    }

    /// The held messages timed out at `now`.
    pub fn expire(&mut self, now: Instant) -> impl Iterator<Item = Abandoned> {
        self.concat
            .expire(now.into_std())
            .into_iter()
            .filter_map(abandon)
    }
}

fn abandon(e: Expired<(), PartToken>) -> Option<Abandoned> {
    let first = e.tokens.first()?;
    Some(Abandoned {
        source: String::from_utf8_lossy(&e.key.source).into_owned(),
        source_ton: first.source_ton,
        source_npi: first.source_npi,
        destination: first.destination.clone(),
        parts: e.tokens.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smpp::codec::{Address, Sar};
    use rusmpp::CommandId;

    fn sm(text: &[u8], sar: Option<(u16, u8, u8)>) -> IncomingSm {
        IncomingSm {
            command_id: CommandId::SubmitSm,
            source: Address::new(1, 1, "994501234567").unwrap(),
            destination: Address::new(0, 0, "8103").unwrap(),
            esm_class: 0,
            registered_delivery: 0,
            data_coding: 1,
            short_message: Bytes::copy_from_slice(text),
            message_payload: None,
            sar: sar.map(|(msg_ref_num, total_segments, segment_seqnum)| Sar {
                msg_ref_num,
                total_segments,
                segment_seqnum,
            }),
            receipted_message_id: None,
            message_state: None,
        }
    }

    #[test]
    fn a_single_message_is_whole_and_parts_wait_for_the_last() {
        let t0 = Instant::now();
        let mut intake = Intake::new(Duration::from_secs(60));
        let none = |a: Abandoned| panic!("nothing abandoned: {a:?}");
        assert_eq!(
            intake.text(&sm(b"2 AZE 11111111", None), t0, none),
            Text::Whole("2 AZE 11111111".into())
        );
        assert_eq!(
            intake.text(&sm(b"2 AZE ", Some((7, 2, 1))), t0, none),
            Text::Held
        );
        assert_eq!(
            intake.text(&sm(b"2 AZE ", Some((7, 2, 1))), t0, none),
            Text::Held
        );
        assert_eq!(
            intake.text(&sm(b"11111111", Some((7, 2, 2))), t0, none),
            Text::Whole("2 AZE 11111111".into())
        );
        assert!(intake.deadline().is_none());
    }

    #[test]
    fn a_message_that_never_completes_is_abandoned_at_its_timeout() {
        let t0 = Instant::now();
        let mut intake = Intake::new(Duration::from_secs(60));
        let none = |a: Abandoned| panic!("nothing abandoned: {a:?}");
        assert_eq!(
            intake.text(&sm(b"2 AZE ", Some((9, 3, 1))), t0, none),
            Text::Held
        );
        assert_eq!(intake.deadline(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(intake.expire(t0 + Duration::from_secs(59)).count(), 0);
        let gone: Vec<Abandoned> = intake.expire(t0 + Duration::from_secs(60)).collect();
        assert_eq!(
            gone,
            [Abandoned {
                source: "994501234567".into(),
                source_ton: 1,
                source_npi: 1,
                destination: "8103".into(),
                parts: 1,
            }]
        );
    }
}
