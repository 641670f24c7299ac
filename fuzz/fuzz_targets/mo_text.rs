//! MO text decoding and concatenation reassembly: `icaze::smpp::text` (data codings, UDH,
//! MT encoding), `icaze::smpp::concat::Reassembler` and the session's
//! `icaze::smpp::session::intake::Intake`.
//!
//! Checks, besides never panicking:
//! - `decode_into` leaves its output as it was on error, and agrees with `decode`;
//! - an MT text that `encode_mt` accepts decodes back to itself from its parts (UDH parsed,
//!   each part decoded, in order), and every part fits one short_message;
//! - every part offered to the reassembler is handed back exactly once (completed,
//!   duplicate, rejected, evicted or expired), no more messages are held than allowed, and
//!   a completed text is its parts decoded in sequence order (runs of one coding joined);
//! - the intake gives an unsegmented message the text `IncomingSm::text` gives.
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use icaze::smpp::codec::{Address, IncomingSm, Sar};
use icaze::smpp::concat::{MessageKey, Offer, Part, Reassembler, ReassemblyConfig, WhenFull};
use icaze::smpp::session::intake::{Intake, Text};
use icaze::smpp::text::{self, DefaultAlphabet};
use libfuzzer_sys::fuzz_target;
use rusmpp::CommandId;
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Single texts to decode: data_coding and octets.
    texts: Vec<(u8, Vec<u8>)>,
    /// A reply to encode and read back.
    mt: String,
    mt_ref: u8,
    /// Reassembler limits.
    max_pending: u8,
    max_parts: u8,
    reject_when_full: bool,
    /// Parts as they arrive.
    parts: Vec<PartIn>,
}

#[derive(Arbitrary, Debug)]
struct PartIn {
    source: u8,
    reference: u16,
    total: u8,
    seq: u8,
    data_coding: u8,
    alphabet: u8,
    user_data: Vec<u8>,
    /// How the concatenation info travels: 8-bit UDH, 16-bit UDH, sar_* TLVs, or the raw
    /// octets behind UDHI as they came.
    via: u8,
    /// Milliseconds since the previous part.
    after_ms: u16,
}

const SOURCES: [&str; 4] = ["994501234567", "994551112233", "", "12"];

fn alphabet(n: u8) -> DefaultAlphabet {
    match n % 3 {
        0 => DefaultAlphabet::Gsm7,
        1 => DefaultAlphabet::Ascii,
        _ => DefaultAlphabet::Latin1,
    }
}

fn check_decode(data_coding: u8, bytes: &[u8]) {
    for a in 0..3 {
        let mut out = String::from("kept");
        match text::decode_into(data_coding, bytes, alphabet(a), &mut out) {
            Ok(()) => assert!(out.starts_with("kept")),
            Err(e) => {
                assert_eq!(out, "kept", "decode_into changed its output on error");
                let _ = e.status();
            }
        }
    }
    let plain = text::decode(data_coding, bytes);
    let mut into = String::new();
    let via_into = text::decode_into(data_coding, bytes, DefaultAlphabet::Gsm7, &mut into);
    assert_eq!(plain.is_ok(), via_into.is_ok());
    if let Ok(t) = plain {
        assert_eq!(t, into);
    }
    if let Ok(udh) = text::parse_udh(bytes) {
        assert!(udh.user_data.len() < bytes.len(), "UDH took no octets");
        if let Some(c) = udh.concat {
            assert!(c.total >= 1 && c.seq >= 1 && c.seq <= c.total);
        }
    }
}

fn check_mt(mt: &str, ref_num: u8) {
    let Ok(enc) = text::encode_mt(mt, ref_num) else {
        return;
    };
    assert!(!enc.parts.is_empty());
    assert_eq!(
        enc.udh,
        enc.parts.len() > 1,
        "UDH exactly when there are several parts"
    );
    let mut back = String::new();
    for (i, part) in enc.parts.iter().enumerate() {
        assert!(part.len() <= 140 || enc.data_coding == text::DCS_DEFAULT && part.len() <= 160);
        let user_data = if enc.udh {
            let udh = text::parse_udh(part).expect("our own UDH parses");
            let c = udh.concat.expect("our own UDH carries concatenation");
            assert_eq!(usize::from(c.total), enc.parts.len());
            assert_eq!(usize::from(c.seq), i + 1);
            assert_eq!(c.reference, u16::from(ref_num));
            udh.user_data
        } else {
            &part[..]
        };
        text::decode_into(enc.data_coding, user_data, DefaultAlphabet::Gsm7, &mut back)
            .expect("our own encoding decodes");
    }
    assert_eq!(back, mt, "encode_mt then decode changed the text");
}

/// What a part offered to the reassembler was, kept to check what comes back.
struct Offered {
    seq: u8,
    data_coding: u8,
    alphabet: DefaultAlphabet,
    user_data: Bytes,
    returned: u32,
}

fn check_reassembly(input: &Input) {
    let config = ReassemblyConfig {
        timeout: Duration::from_secs(60),
        max_pending: usize::from(input.max_pending % 8),
        max_parts: input.max_parts,
        when_full: if input.reject_when_full {
            WhenFull::Reject
        } else {
            WhenFull::EvictOldest
        },
    };
    let mut r: Reassembler<u8, usize> = Reassembler::new(config);
    let mut offered: Vec<Offered> = Vec::new();
    let start = Instant::now();
    let mut now = start;
    let give_back = |offered: &mut Vec<Offered>, t: usize| offered[t].returned += 1;
    for p in &input.parts {
        now += Duration::from_millis(u64::from(p.after_ms) * 16);
        for e in r.expire(now) {
            assert!(!e.tokens.is_empty());
            for t in e.tokens {
                give_back(&mut offered, t);
            }
        }
        let token = offered.len();
        let user_data = Bytes::copy_from_slice(&p.user_data);
        offered.push(Offered {
            seq: p.seq,
            data_coding: p.data_coding,
            alphabet: alphabet(p.alphabet),
            user_data: user_data.clone(),
            returned: 0,
        });
        let key = MessageKey {
            link: p.source % 2,
            source: Bytes::from_static(SOURCES[usize::from(p.source % 4)].as_bytes()),
            reference: p.reference % 4,
            total: p.total % 12,
        };
        let total = key.total;
        let part = Part {
            seq: p.seq % 13,
            data_coding: p.data_coding,
            default_alphabet: alphabet(p.alphabet),
            user_data,
            token,
        };
        offered[token].seq = part.seq;
        match r.offer(key, part, now) {
            Offer::Incomplete {
                received,
                total: t,
                evicted,
            } => {
                assert!(received < t && t == total);
                if let Some(e) = evicted {
                    for t in e.tokens {
                        give_back(&mut offered, t);
                    }
                }
            }
            Offer::Duplicate(t) | Offer::Rejected(t, _) => {
                assert_eq!(t, token);
                give_back(&mut offered, t);
            }
            Offer::Complete(done) => {
                assert_eq!(
                    done.tokens.len(),
                    usize::from(total),
                    "a part missing or extra"
                );
                let mut parts: Vec<usize> = done.tokens.clone();
                parts.sort_by_key(|&t| offered[t].seq);
                for (i, &t) in parts.iter().enumerate() {
                    assert_eq!(usize::from(offered[t].seq), i + 1, "parts not 1..=total");
                }
                // Consecutive parts with the same coding are one text: their octets are
                // joined, then decoded (a GSM escape, a surrogate pair or a UTF-8 sequence
                // may straddle a boundary; 8-bit octets in one part under DCS 0 make the
                // whole run 8-bit).
                let mut want = String::new();
                let mut ok = true;
                let mut i = 0;
                while i < parts.len() {
                    let first = &offered[parts[i]];
                    let coding = (first.data_coding, first.alphabet);
                    let mut octets = Vec::new();
                    while i < parts.len()
                        && (offered[parts[i]].data_coding, offered[parts[i]].alphabet) == coding
                    {
                        octets.extend_from_slice(&offered[parts[i]].user_data);
                        i += 1;
                    }
                    ok &= text::decode_into(coding.0, &octets, coding.1, &mut want).is_ok();
                }
                match &done.text {
                    Ok(text) => {
                        assert!(ok, "a part that does not decode gave a text");
                        assert_eq!(*text, want, "completed text is not its parts in order");
                    }
                    Err(_) => assert!(!ok, "parts that decode gave an error"),
                }
                for t in done.tokens {
                    give_back(&mut offered, t);
                }
            }
        }
        assert!(
            r.len() <= config.max_pending,
            "more messages held than max_pending"
        );
    }
    for e in r.expire(now + Duration::from_secs(61)) {
        for t in e.tokens {
            give_back(&mut offered, t);
        }
    }
    assert!(r.is_empty() && r.next_deadline().is_none());
    for (i, o) in offered.iter().enumerate() {
        assert_eq!(o.returned, 1, "part {i} handed back {} times", o.returned);
    }
}

fn incoming(p: &PartIn) -> IncomingSm {
    let source = Address::new(1, 1, SOURCES[usize::from(p.source % 2)]).expect("valid address");
    let destination = Address::new(0, 0, "8103").expect("valid address");
    let (short_message, esm_class, sar) = match p.via % 4 {
        0 => (
            icaze_fuzz::udh8(p.reference as u8, p.total, p.seq, &p.user_data),
            0x40,
            None,
        ),
        1 => {
            let [hi, lo] = p.reference.to_be_bytes();
            let mut v = vec![0x06, 0x08, 0x04, hi, lo, p.total, p.seq];
            v.extend_from_slice(&p.user_data);
            (v, 0x40, None)
        }
        2 => (
            p.user_data.clone(),
            0,
            Some(Sar {
                msg_ref_num: p.reference,
                total_segments: p.total,
                segment_seqnum: p.seq,
            }),
        ),
        _ => (p.user_data.clone(), 0x40, None),
    };
    let long = short_message.len() > 254;
    let short_message = Bytes::from(short_message);
    IncomingSm {
        command_id: CommandId::SubmitSm,
        source,
        destination,
        esm_class,
        registered_delivery: 0,
        data_coding: p.data_coding,
        short_message: if long {
            Bytes::new()
        } else {
            short_message.clone()
        },
        message_payload: long.then_some(short_message),
        sar,
        receipted_message_id: None,
        message_state: None,
    }
}

fn check_intake(parts: &[PartIn]) {
    let mut intake = Intake::new(Duration::from_secs(60));
    let mut now = tokio::time::Instant::now();
    for p in parts {
        now += Duration::from_millis(u64::from(p.after_ms) * 16);
        for gone in intake.expire(now) {
            assert!(gone.parts >= 1);
        }
        let sm = incoming(p);
        let single = sm.segment().map(|s| s.concat.is_none());
        let got = intake.text(&sm, now, |gone| assert!(gone.parts >= 1));
        if let Ok(true) = single {
            match (sm.text(), &got) {
                (Ok(t), Text::Whole(w)) => assert_eq!(&t, w),
                (Err(e), Text::Refused(s)) => assert_eq!(e.status(), *s),
                (want, got) => panic!("single message: text {want:?}, intake {got:?}"),
            }
        }
        if let Some(at) = intake.deadline() {
            assert!(at > now, "a deadline already past was not expired");
        }
    }
}

fuzz_target!(|input: Input| {
    for (dcs, bytes) in &input.texts {
        check_decode(*dcs, bytes);
    }
    check_mt(&input.mt, input.mt_ref);
    check_reassembly(&input);
    check_intake(&input.parts);
});
