//! Delivery receipts in connector mode, against an SMSC played by the test over real TCP:
//! icaze asks for a receipt on each submit_sm part (`registered_delivery`), books the
//! message_id the SMSC gives each part, and matches the SMSC's receipts (deliver_sm with
//! esm_class 0x04 and an `id:… stat:…` text, or receipted_message_id / message_state TLVs)
//! to the reply, answering every one and deciding none as a citizen's SMS.

mod support;

use std::time::Duration;
use support::smpp::{self, Client};
use support::{TestGateway, config};
use tokio::net::TcpListener;

const SUBMIT_SM_RESP: u32 = smpp::SUBMIT_SM | smpp::RESP;
const DELIVER_SM_RESP: u32 = smpp::DELIVER_SM | smpp::RESP;
/// receipted_message_id and message_state TLV tags.
const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
const MESSAGE_STATE: u16 = 0x0427;

/// An SMSC on a free port, a gateway whose one connector (`smsc1`, replies in `language`,
/// `extra` keys) binds to it as a transceiver, and the bound session.
async fn bound(language: &str, extra: &str) -> (TestGateway, Client, TcpListener) {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = smsc.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n\
         [[connectors]]\nname = \"smsc1\"\naddress = \"127.0.0.1:{port}\"\nsystem_id = \"icaze\"\n\
         password = \"s3cret\"\nlanguage = \"{language}\"\nreconnect = \"100ms\"\n{extra}"
    );
    let config = config(dir.path(), "response_timeout = \"2s\"", &tables);
    let gw = TestGateway::start_with(config, dir).await;
    let (mut c, bind) = smpp::accept_bind(&smsc).await;
    assert_eq!(bind.command_id, smpp::BIND_TRANSCEIVER);
    smpp::answer_bind(&mut c, &bind, smpp::ESME_ROK).await;
    (gw, c, smsc)
}

/// registered_delivery of a submit_sm body (after the three addresses' C strings and the
/// esm_class, protocol_id, priority_flag, schedule and validity fields).
fn registered_delivery(body: &[u8]) -> u8 {
    let mut at = 0;
    let skip_cstr = |at: &mut usize| {
        while body[*at] != 0 {
            *at += 1;
        }
        *at += 1;
    };
    skip_cstr(&mut at); // service_type
    at += 2;
    skip_cstr(&mut at); // source
    at += 2;
    skip_cstr(&mut at); // destination
    at += 3; // esm_class, protocol_id, priority_flag
    skip_cstr(&mut at); // schedule_delivery_time
    skip_cstr(&mut at); // validity_period
    body[at]
}

/// Injects the MO `text` from 994501234567 and answers every submit_sm part of its reply
/// with the next of `ids`, until the MO's deliver_sm_resp and the whole reply are in.
/// Returns the reply's text and how many parts it came in.
async fn mo_and_reply(c: &mut Client, text: &str, ids: &[&str]) -> (String, usize) {
    let seq = c
        .send(
            smpp::DELIVER_SM,
            &smpp::sm_body("994501234567", "8103", 0, 0, text.as_bytes(), &[]),
        )
        .await;
    let (mut acked, mut reply, mut parts) = (false, None, 0);
    while !acked || reply.is_none() {
        let p = c.read_skipping_enquire().await.expect("icaze answers");
        match p.command_id {
            DELIVER_SM_RESP if p.seq == seq => {
                assert_eq!(p.status, smpp::ESME_ROK);
                acked = true;
            }
            smpp::SUBMIT_SM => {
                assert_eq!(
                    registered_delivery(&p.body),
                    1,
                    "every part asks for a receipt"
                );
                let id = ids.get(parts).unwrap_or_else(|| {
                    panic!("part {} of a reply given ids for {}", parts + 1, ids.len())
                });
                parts += 1;
                let mut body = id.as_bytes().to_vec();
                body.push(0);
                c.send_raw(&smpp::pdu(SUBMIT_SM_RESP, 0, p.seq, &body))
                    .await;
                if let Some(whole) = c.assemble(&p.body) {
                    reply = Some(smpp::sm_text(&whole));
                }
            }
            other => panic!("unexpected {other:#x}: {p:?}"),
        }
    }
    (reply.unwrap(), parts)
}

/// Sends a receipt (deliver_sm from the citizen's number with `esm_class`, `text` and
/// `tlvs`) and returns the status of its deliver_sm_resp; nothing else may come first.
async fn receipt(c: &mut Client, esm_class: u8, text: &str, tlvs: &[(u16, Vec<u8>)]) -> u32 {
    let body = smpp::sm_body("994501234567", "8103", esm_class, 0, text.as_bytes(), tlvs);
    let seq = c.send(smpp::DELIVER_SM, &body).await;
    let p = c
        .read_skipping_enquire()
        .await
        .expect("the receipt answered");
    assert_eq!(
        (p.command_id, p.seq),
        (DELIVER_SM_RESP, seq),
        "the receipt is answered, and nothing sent for it: {p:?}"
    );
    p.status
}

/// An SMPP 3.4 Appendix B receipt text.
fn receipt_text(id: &str, stat: &str, quoted: &str) -> String {
    format!(
        "id:{id} sub:001 dlvrd:001 submit date:2004061000 done date:2004061001 stat:{stat} err:000 text:{quoted}"
    )
}

/// A counter's value in the gateway's metrics (0 when absent).
fn count(gw: &TestGateway, name: &str, state: &str) -> u64 {
    let key = format!("{name}{{connector=\"smsc1\",state=\"{state}\"}} ");
    let text = gw.gateway.metrics_text();
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn receipts(gw: &TestGateway, state: &str) -> u64 {
    count(gw, "icaze_receipts_total", state)
}

fn replies(gw: &TestGateway, state: &str) -> u64 {
    count(gw, "icaze_reply_delivery_total", state)
}

#[tokio::test]
async fn text_receipts_with_the_ids_in_decimal_are_matched_answered_and_counted() {
    let (gw, mut c, _smsc) = bound("en", "registered_delivery = 1\n").await;
    let (reply, parts) = mo_and_reply(&mut c, "2 AZE 11111111", &["00AB12F0", "00AB12F1"]).await;
    assert!(reply.contains("AZE 11111111"), "{reply}");
    assert_eq!(parts, 2, "the English grant is two GSM 7-bit parts");
    assert_eq!(replies(&gw, "delivered"), 0, "no receipt yet");
    // The SMSC gave hex ids; its receipts render them in decimal (0xAB12F0 = 11211504).
    let text = receipt_text("11211504", "DELIVRD", "PERMIT GRANTED");
    assert_eq!(receipt(&mut c, 0x04, &text, &[]).await, smpp::ESME_ROK);
    assert_eq!(receipts(&gw, "delivered"), 1);
    assert_eq!(replies(&gw, "delivered"), 0);
    let text = receipt_text("11211505", "DELIVRD", "code 2");
    assert_eq!(receipt(&mut c, 0x04, &text, &[]).await, smpp::ESME_ROK);
    assert_eq!(receipts(&gw, "delivered"), 2);
    assert_eq!(receipts(&gw, "unmatched"), 0);
    assert_eq!(replies(&gw, "delivered"), 1);
}

#[tokio::test]
async fn a_tlv_receipt_keeps_the_failure_and_its_text_grants_nothing() {
    let (gw, mut c, _smsc) = bound("en", "registered_delivery = 1\n").await;
    mo_and_reply(&mut c, "2 AZE 11111111", &["12345", "12346"]).await;
    // esm_class 0, so only the TLVs say "receipt"; the id in hex with leading zeros
    // (12345 = 0x3039), state 5 (UNDELIVERABLE); the text looks like a request for another
    // document, and the TLVs win over the text's stat.
    let tlvs = [
        (RECEIPTED_MESSAGE_ID, b"00003039\0".to_vec()),
        (MESSAGE_STATE, vec![5]),
    ];
    assert_eq!(
        receipt(&mut c, 0, "2 AZE 22222222 stat:DELIVRD", &tlvs).await,
        smpp::ESME_ROK
    );
    assert_eq!(receipts(&gw, "failed"), 1);
    assert_eq!(replies(&gw, "failed"), 1);
    assert_eq!(replies(&gw, "delivered"), 0);
    // Receipts whose text reads as a request, by esm_class and by TLV alone: nothing
    // granted, so AZE 22222222 still gets its first permit of the day.
    let text = receipt_text("999", "DELIVRD", "2 AZE 22222222");
    assert_eq!(receipt(&mut c, 0x04, &text, &[]).await, smpp::ESME_ROK);
    let (reply, _) = mo_and_reply(&mut c, "2 AZE 22222222", &["777", "778"]).await;
    assert!(
        reply.starts_with("PERMIT GRANTED"),
        "the receipts were decided as a request: {reply}"
    );
}

#[tokio::test]
async fn a_two_part_reply_is_delivered_only_when_both_parts_are() {
    let (gw, mut c, _smsc) = bound("az", "registered_delivery = 1\n").await;
    let (_, parts) = mo_and_reply(&mut c, "2 AZE 11111111", &["0000007001", "7002"]).await;
    assert_eq!(parts, 2, "an Azerbaijani grant is two UCS-2 parts");
    let first = receipt_text("7001", "DELIVRD", "");
    assert_eq!(receipt(&mut c, 0x04, &first, &[]).await, smpp::ESME_ROK);
    assert_eq!(receipts(&gw, "delivered"), 1);
    assert_eq!(
        replies(&gw, "delivered"),
        0,
        "one part of two is not the reply"
    );
    // An intermediate notification for the second part settles nothing.
    let enroute = receipt_text("7002", "ENROUTE", "");
    assert_eq!(receipt(&mut c, 0x20, &enroute, &[]).await, smpp::ESME_ROK);
    assert_eq!(receipts(&gw, "enroute"), 1);
    assert_eq!(replies(&gw, "delivered"), 0);
    let second = receipt_text("0007002", "DELIVRD", "");
    assert_eq!(receipt(&mut c, 0x04, &second, &[]).await, smpp::ESME_ROK);
    assert_eq!(replies(&gw, "delivered"), 1);
    assert_eq!(replies(&gw, "unknown") + replies(&gw, "failed"), 0);
}

#[tokio::test]
async fn unmatched_and_malformed_receipts_are_answered_and_counted() {
    let (gw, mut c, _smsc) = bound("en", "registered_delivery = 1\n").await;
    mo_and_reply(&mut c, "2 AZE 11111111", &["4242", "4243"]).await;
    let stranger = receipt_text("999999", "DELIVRD", "");
    assert_eq!(receipt(&mut c, 0x04, &stranger, &[]).await, smpp::ESME_ROK);
    // esm_class says receipt, the text says nothing readable: still a receipt.
    assert_eq!(
        receipt(&mut c, 0x04, "garbage 2 AZE 33333333", &[]).await,
        smpp::ESME_ROK
    );
    assert_eq!(
        receipt(&mut c, 0x08, "id: stat:", &[]).await,
        smpp::ESME_ROK
    );
    assert_eq!(receipts(&gw, "unmatched"), 3);
    assert_eq!(replies(&gw, "delivered") + replies(&gw, "unknown"), 0);
    // The real one still matches afterwards.
    let ours = receipt_text("4242", "EXPIRED", "");
    assert_eq!(receipt(&mut c, 0x04, &ours, &[]).await, smpp::ESME_ROK);
    assert_eq!(replies(&gw, "expired"), 1);
    // No MO was counted for any of them: only the one request.
    let mos: u64 = gw.gateway.metrics.mos_total();
    assert_eq!(mos, 1);
}

#[tokio::test]
async fn with_a_pair_the_receipt_on_the_receiver_matches_the_part_sent_on_the_transmitter() {
    let smsc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = smsc.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n\
         [[connectors]]\nname = \"smsc1\"\naddress = \"127.0.0.1:{port}\"\nsystem_id = \"icaze\"\n\
         password = \"s3cret\"\nlanguage = \"en\"\nreconnect = \"100ms\"\nbind = \"pair\"\n\
         registered_delivery = 1\n"
    );
    let gw = TestGateway::start_with(config(dir.path(), "", &tables), dir).await;
    let (mut tx, mut rx) = (None, None);
    while tx.is_none() || rx.is_none() {
        let (mut c, bind) = smpp::accept_bind(&smsc).await;
        smpp::answer_bind(&mut c, &bind, smpp::ESME_ROK).await;
        match bind.command_id {
            smpp::BIND_TRANSMITTER => tx = Some(c),
            smpp::BIND_RECEIVER => rx = Some(c),
            other => panic!("a pair binds transmitter and receiver, not {other:#x}"),
        }
    }
    let (mut tx, mut rx) = (tx.unwrap(), rx.unwrap());
    let seq = rx
        .send(
            smpp::DELIVER_SM,
            &smpp::sm_body("994501234567", "8103", 0, 0, b"2 AZE 11111111", &[]),
        )
        .await;
    let ack = rx.read_skipping_enquire().await.expect("the MO answered");
    assert_eq!(
        (ack.command_id, ack.seq, ack.status),
        (DELIVER_SM_RESP, seq, 0)
    );
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let p = tx.read_skipping_enquire().await.expect("the reply's parts");
        assert_eq!(p.command_id, smpp::SUBMIT_SM);
        assert_eq!(registered_delivery(&p.body), 1);
        let id = format!("{:x}", 0xF00 + ids.len());
        let mut body = id.as_bytes().to_vec();
        body.push(0);
        tx.send_raw(&smpp::pdu(SUBMIT_SM_RESP, 0, p.seq, &body))
            .await;
        ids.push(id);
    }
    // The receipts come on the other session: wait until the transmitter's answers are in
    // (the reply counted delivered to the SMSC) before sending them.
    let delivered = |gw: &TestGateway| {
        gw.gateway
            .metrics_text()
            .contains("icaze_replies_delivered_total{operator=\"smsc1\"} 1")
    };
    for _ in 0..500 {
        if delivered(&gw) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(delivered(&gw), "the SMSC's answers were taken");
    for id in &ids {
        let text = receipt_text(&id.to_uppercase(), "DELIVRD", "");
        assert_eq!(receipt(&mut rx, 0x04, &text, &[]).await, smpp::ESME_ROK);
    }
    assert_eq!(receipts(&gw, "delivered"), 2);
    assert_eq!(replies(&gw, "delivered"), 1);
}
