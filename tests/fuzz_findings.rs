//! Inputs the fuzz targets in `fuzz/` found, kept as tests of the behaviour they pinned down.
//! The crashing inputs themselves are in the targets' seed corpora (`fuzz/corpus/<target>/`).
//! Findings that were gateway bugs have their regression tests beside the code they touched
//! (`tests/smpp_listener.rs::a_stray_unbind_resp_leaves_the_bind_up`,
//! `smpp::session::machine::tests::nothing_is_sent_after_our_unbind_and_the_rest_stays_owed`).

use bytes::Bytes;
use icaze::smpp::concat::{MessageKey, Offer, Part, Reassembler, ReassemblyConfig};
use icaze::smpp::text::DefaultAlphabet;
use std::time::Instant;

fn offer(
    r: &mut Reassembler<&'static str, u32>,
    seq: u8,
    data_coding: u8,
    data: &'static [u8],
    now: Instant,
) -> Offer<&'static str, u32> {
    r.offer(
        MessageKey {
            link: "op1",
            source: Bytes::from_static(b"994501234567"),
            reference: 7,
            total: 3,
        },
        Part {
            seq,
            data_coding,
            default_alphabet: DefaultAlphabet::Gsm7,
            user_data: Bytes::from_static(data),
            token: u32::from(seq),
        },
        now,
    )
}

/// mo_text, 6.96M runs in: a message under data_coding 0 whose later part carries octets
/// above 0x7F. Those are no GSM septets, so the peer is sending 8-bit text, and every part of
/// that run is read as such, the first included: 0x05 stays U+0005 and is not GSM's "é".
/// The fuzz target's oracle decoded each part alone and disagreed; the gateway's rule
/// (consecutive parts of one coding are one text, so an escape or a UTF-8 sequence may
/// straddle a boundary) is the documented one, and the oracle now follows it.
#[test]
fn a_run_of_one_coding_is_decoded_as_one_text() {
    let now = Instant::now();
    let mut r = Reassembler::new(ReassemblyConfig::default());
    assert!(matches!(
        offer(&mut r, 1, 0, b"2 AZE \x05", now),
        Offer::Incomplete { .. }
    ));
    assert!(matches!(
        offer(&mut r, 2, 0, b"caf\xe9 ", now),
        Offer::Incomplete { .. }
    ));
    // A third part in UCS-2 is its own run: decoded alone.
    let Offer::Complete(done) = offer(&mut r, 3, 8, b"\x00\xe9\x001", now) else {
        panic!("three parts of three did not complete");
    };
    assert_eq!(done.text.as_deref(), Ok("2 AZE \u{5}café é1"));
    let mut tokens = done.tokens.clone();
    tokens.sort();
    assert_eq!(tokens, [1, 2, 3]);

    // The same first part alone in its run reads as GSM: 0x05 is "é".
    let mut r = Reassembler::new(ReassemblyConfig::default());
    offer(&mut r, 1, 0, b"2 AZE \x05", now);
    offer(&mut r, 2, 8, b"\x00 ", now);
    let Offer::Complete(done) = offer(&mut r, 3, 0, b"caf\xe9", now) else {
        panic!("three parts of three did not complete");
    };
    assert_eq!(done.text.as_deref(), Ok("2 AZE é café"));
}
