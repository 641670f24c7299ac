//! Inputs the fuzz targets in `fuzz/` found, kept as tests of the behaviour they pinned down.
//! The crashing inputs themselves are in the targets' seed corpora (`fuzz/corpus/<target>/`).
//! Findings that were gateway bugs have their regression tests here or beside the code they
//! touched (`tests/smpp_listener.rs::a_stray_unbind_resp_leaves_the_bind_up`; the part sent
//! after our unbind both here, over a socket, and as
//! `smpp::session::machine::tests::nothing_is_sent_after_our_unbind_and_the_rest_stays_owed`).

mod support;

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

/// Found by fuzz/smpp_session, here over a real socket: window 1, a reply of two parts, a
/// drain whose grace runs out. The gateway unbinds; the first part's answer that comes
/// after our unbind must not let the second part go out (the peer refused such a part
/// ESME_RINVBNDSTS for good and the reply was dropped). The part not sent stays owed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_part_goes_out_after_the_gateways_unbind_at_shutdown() {
    use std::time::Duration;
    use support::smpp::*;
    let gw = support::TestGateway::start(
        "shutdown_grace = \"300ms\"",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nwindow = 1\nlanguage = \"az\"\n",
    )
    .await;
    let mut c = gw.trx().await;
    // An Azerbaijani grant is UCS-2 and longer than 70 characters: two parts.
    let seq = c.submit("994501234567", "8103", 0, b"2 AZE 11111111").await;
    let mut first = None;
    let mut acknowledged = false;
    while first.is_none() || !acknowledged {
        let p = c
            .read_skipping_enquire()
            .await
            .expect("the gateway answers");
        match p.command_id {
            DELIVER_SM => first = Some(p.seq),
            id if id == SUBMIT_SM | RESP && p.seq == seq => acknowledged = true,
            _ => {}
        }
    }
    // Shutdown: the first part is left unanswered past the grace, so the gateway unbinds.
    gw.shutdown.cancel();
    let unbind = loop {
        let p = c
            .read_within(Duration::from_secs(5))
            .await
            .expect("the gateway unbinds once its grace is over");
        assert_ne!(p.command_id, DELIVER_SM, "the window (1) is full");
        if p.command_id == UNBIND {
            break p;
        }
    };
    // Now the first part's answer: the second must not follow it.
    c.send_raw(&pdu(DELIVER_SM | RESP, 0, first.unwrap(), &[0]))
        .await;
    while let Some(p) = c.read_within(Duration::from_millis(500)).await {
        assert_ne!(
            p.command_id, DELIVER_SM,
            "a part went out after the gateway's unbind"
        );
    }
    c.send_raw(&pdu(UNBIND | RESP, 0, unbind.seq, &[])).await;
}
