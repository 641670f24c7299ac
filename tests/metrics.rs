//! The metrics the person on call reads, counted from real SMPP traffic.

mod support;

use std::time::Duration;
use support::TestGateway;
use support::smpp::*;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len()..].trim().parse().ok())
}

#[tokio::test]
async fn mos_decisions_binds_and_reply_times_are_counted() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    for text in ["2 AZE 11111111", "2 AZE 11111111", "2 QQQ 1234567", "hello"] {
        let seq = c.submit("994501234567", "8103", 0, text.as_bytes()).await;
        let mut delivered = Vec::new();
        assert_eq!(c.expect_resp(seq, &mut delivered).await.status, ESME_ROK);
        if delivered.is_empty() {
            c.expect_deliver().await;
        }
    }
    // The last reply's deliver_sm_resp was sent; give the gateway a moment to read it.
    let mut text = String::new();
    for _ in 0..50 {
        text = gw.gateway.metrics_text();
        if value(&text, "icaze_mo_to_mt_seconds_count") == Some(4.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let op = |outcome: &str| format!("icaze_mos_total{{operator=\"demo\",outcome=\"{outcome}\"}}");
    assert_eq!(value(&text, &op("granted")), Some(1.0), "{text}");
    assert_eq!(value(&text, &op("active")), Some(1.0));
    assert_eq!(value(&text, &op("invalid")), Some(2.0));
    assert_eq!(value(&text, &op("refused")), Some(0.0));
    assert_eq!(
        value(
            &text,
            "icaze_decisions_total{code=\"2\",outcome=\"granted\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            "icaze_decisions_total{code=\"2\",outcome=\"active\"}"
        ),
        Some(1.0)
    );
    let invalid: f64 = text
        .lines()
        .filter(|l| l.starts_with("icaze_invalid_texts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(invalid, 2.0, "{text}");
    assert_eq!(
        value(&text, "icaze_binds{operator=\"demo\",kind=\"transceiver\"}"),
        Some(1.0)
    );
    assert_eq!(value(&text, "icaze_mo_to_mt_seconds_count"), Some(4.0));
    assert_eq!(
        value(&text, "icaze_replies_delivered_total{operator=\"demo\"}"),
        Some(4.0)
    );
    assert_eq!(
        value(&text, "icaze_reply_queue_depth{operator=\"demo\"}"),
        Some(0.0)
    );
    assert_eq!(
        value(&text, "icaze_store_round_seconds_count"),
        Some(4.0),
        "every MO's reply (and the grant with its own) was journaled before its \
         acknowledgement, one round each"
    );
    // The journal's fsyncs (at open and for the grant's round) are timed.
    assert!(
        value(&text, "icaze_journal_fsync_seconds_count").is_some_and(|n| n >= 1.0),
        "{text}"
    );
    // The bind goes: its gauge comes down.
    let seq = c.send(UNBIND, &[]).await;
    let r = c.read().await.unwrap();
    assert_eq!(r.seq, seq);
    for _ in 0..50 {
        if value(
            &gw.gateway.metrics_text(),
            "icaze_binds{operator=\"demo\",kind=\"transceiver\"}",
        ) == Some(0.0)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("bind gauge still up after unbind");
}
