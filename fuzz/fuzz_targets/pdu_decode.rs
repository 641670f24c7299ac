//! PDU framing and decoding (`icaze::smpp::codec::decode`): any bytes, split at any point.
//!
//! The first input byte picks the mode; the rest is the stream.
//! - Raw (even): the rest is the byte stream as it comes off a socket, decoded three ways
//!   (all at once, one octet at a time, in chunks whose sizes the input gives). Every call
//!   must consume a whole PDU or nothing; the three ways must give the same outcomes.
//! - Framed (odd): the rest is a list of (command_id, body) pairs, each put behind a header
//!   with the right command_length. No framing error may come out, every frame gives one
//!   outcome carrying its sequence number, and a PDU after a body error still decodes.
#![no_main]

use bytes::BytesMut;
use icaze::smpp::codec::{DEFAULT_MAX_PDU_LEN, DecodeError, HEADER_LEN, decode};
use libfuzzer_sys::fuzz_target;

/// One decode call's result, reduced to what must not depend on how the bytes were split.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Frame {
        id: u32,
        seq: u32,
        status: u32,
        len: usize,
    },
    Body {
        seq: u32,
        answer: Option<(u32, u32)>,
    },
    Framing,
}

fn header_word(buf: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([buf[i], buf[i + 1], buf[i + 2], buf[i + 3]])
}

/// Calls `decode` until it asks for more, checking each call's contract; returns false once
/// a framing error closed the stream.
fn drain(buf: &mut BytesMut, out: &mut Vec<Outcome>) -> bool {
    loop {
        let before = buf.len();
        let announced = (before >= HEADER_LEN).then(|| {
            (
                header_word(buf, 0) as usize,
                header_word(buf, 4),
                header_word(buf, 8),
                header_word(buf, 12),
            )
        });
        match decode(buf, DEFAULT_MAX_PDU_LEN) {
            Ok(None) => {
                assert_eq!(buf.len(), before, "asking for more must consume nothing");
                if let Some((len, ..)) = announced {
                    assert!(len > before, "a complete PDU was left undecoded");
                }
                return true;
            }
            Ok(Some(frame)) => {
                let (len, id, status, seq) = announced.expect("a frame from under 16 octets");
                assert_eq!(
                    before - buf.len(),
                    len,
                    "a frame consumes exactly command_length"
                );
                assert_eq!(frame.sequence_number, seq);
                assert_eq!(frame.status.0, status);
                assert_eq!(u32::from(frame.command_id), id);
                assert_eq!(
                    u32::from(frame.pdu.command_id()),
                    id,
                    "body of another command"
                );
                out.push(Outcome::Frame {
                    id,
                    seq,
                    status,
                    len,
                });
            }
            Err(DecodeError::Body(e)) => {
                let (len, id, _, seq) = announced.expect("a body error from under 16 octets");
                assert_eq!(
                    before - buf.len(),
                    len,
                    "a bad body consumes exactly its frame"
                );
                assert_eq!(e.sequence_number, seq);
                let answer = e.response().map(|r| {
                    assert_eq!(r.sequence_number, seq, "answer echoes the sequence number");
                    let resp = u32::from(r.pdu.command_id());
                    assert!(
                        resp == 0x8000_0000 || resp == id | 0x8000_0000,
                        "answer {resp:#x} to {id:#x}"
                    );
                    assert!(!r.status.is_ok(), "a bad body answered with status 0");
                    (resp, r.status.0)
                });
                out.push(Outcome::Body { seq, answer });
            }
            Err(e @ DecodeError::Framing(_)) => {
                assert!(e.is_fatal());
                assert_eq!(buf.len(), before, "a framing error consumes nothing");
                let (len, ..) = announced.expect("a framing error from under 16 octets");
                assert!(!(HEADER_LEN..=DEFAULT_MAX_PDU_LEN).contains(&len));
                let r = e.response().expect("a framing error is answered");
                assert_eq!(u32::from(r.pdu.command_id()), 0x8000_0000);
                out.push(Outcome::Framing);
                return false;
            }
        }
    }
}

/// Feeds `stream` in the chunks `sizes` gives (cycled), returning the outcomes and what is
/// left buffered.
fn feed(stream: &[u8], mut sizes: impl FnMut() -> usize) -> (Vec<Outcome>, usize) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let n = sizes().clamp(1, rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if !drain(&mut buf, &mut out) {
            return (out, buf.len());
        }
    }
    (out, buf.len())
}

/// The outcomes, and what was left buffered unless a framing error stopped the reading
/// (then how much had arrived depends on the chunks).
fn comparable((out, left): (Vec<Outcome>, usize)) -> (Vec<Outcome>, Option<usize>) {
    let broken = out.last() == Some(&Outcome::Framing);
    (out, (!broken).then_some(left))
}

fn raw(stream: &[u8], splits: &[u8]) {
    let whole = comparable(feed(stream, || usize::MAX));
    let bytewise = comparable(feed(stream, || 1));
    assert_eq!(whole, bytewise, "one octet at a time decodes differently");
    let mut i = 0;
    let chunked = comparable(feed(stream, || {
        let s = splits.get(i % splits.len().max(1)).copied().unwrap_or(7);
        i += 1;
        usize::from(s) * 3 + 1
    }));
    assert_eq!(whole, chunked, "chunked input decodes differently");
}

fn framed(mut rest: &[u8]) {
    let mut stream = Vec::new();
    let mut seqs = Vec::new();
    let mut seq = 1u32;
    while rest.len() >= 6 {
        let id = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        rest = &rest[6..];
        let take = len.min(rest.len()).min(DEFAULT_MAX_PDU_LEN - HEADER_LEN);
        stream.extend(icaze_fuzz::pdu(id, 0, seq, &rest[..take]));
        rest = &rest[take..];
        seqs.push(seq);
        seq += 1;
    }
    // A good PDU after all of them: whatever came before, it must decode.
    let marker = 0x7FFF_FFFF;
    stream.extend(icaze_fuzz::pdu(0x15, 0, marker, &[])); // enquire_link
    let (out, left) = feed(&stream, || usize::MAX);
    assert_eq!(left, 0, "bytes left after whole frames");
    assert_eq!(out.len(), seqs.len() + 1, "one outcome per frame");
    for (o, want) in out.iter().zip(seqs.iter().chain([&marker])) {
        match o {
            Outcome::Frame { seq, .. } | Outcome::Body { seq, .. } => assert_eq!(seq, want),
            Outcome::Framing => panic!("framing error on well-framed input"),
        }
    }
    assert!(matches!(
        out.last(),
        Some(Outcome::Frame {
            id: 0x15,
            seq: 0x7FFF_FFFF,
            ..
        })
    ));
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        raw(rest, data.get(1..9).unwrap_or(&[]));
    } else {
        framed(rest);
    }
});
