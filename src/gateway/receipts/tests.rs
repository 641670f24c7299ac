//! The book alone, with made-up instants: matching ids as SMSCs re-render them, a reply's
//! state from its parts' receipts, and the bounds.

use super::*;
use crate::telemetry::metrics::Metrics;

const H: Duration = Duration::from_secs(3600);

fn book(registered_delivery: u8, limit: usize) -> ReceiptBook {
    let metrics = Metrics::new().receipts("smsc1");
    let bounds = Bounds {
        registered_delivery,
        expiry: 48 * H,
        limit,
    };
    ReceiptBook::new("smsc1", bounds, metrics)
}

fn receipt(id: &str, stat: Stat) -> Receipt {
    Receipt {
        id: Some(id.to_string()),
        stat: Some(stat),
    }
}

/// (receipts by state, replies by state) so far.
fn counts(b: &ReceiptBook) -> (Vec<u64>, Vec<u64>) {
    (
        b.metrics.receipts.iter().map(|c| c.get()).collect(),
        b.metrics.replies.iter().map(|c| c.get()).collect(),
    )
}

fn settled(m: Matched) -> Option<ReplyState> {
    match m {
        Matched::Part { settled, .. } => settled,
        Matched::Unmatched => panic!("unmatched"),
    }
}

#[test]
fn ids_match_exactly_then_without_zeros_then_across_hex_and_decimal() {
    let t0 = Instant::now();
    // (id the submit_sm_resp gave, id the receipt carries)
    let cases = [
        ("1234567890", "1234567890"),
        ("00001234", "1234"),
        ("1234", "00001234"),
        ("ab12f0", "AB12F0"),
        ("00AB12F0", "ab12f0"),
        // Hex id, receipt in decimal (Kannel's msg-id-type): 0xAB12F0 = 11211504.
        ("AB12F0", "11211504"),
        ("00ab12f0", "0011211504"),
        // Decimal id, receipt in hex: 12345 = 0x3039.
        ("12345", "3039"),
        ("12345", "00003039"),
        // Ids that are no number: case-blind, leading zeros stripped.
        ("MSG-7Q", "msg-7q"),
        ("00x-1", "X-1"),
    ];
    for (i, (given, told)) in cases.iter().enumerate() {
        let b = book(1, 100);
        b.accepted(given, i as u64, 0, 1, "994501234567", t0);
        assert_eq!(
            settled(b.receipt(&receipt(told, Stat::Delivered), t0)),
            Some(ReplyState::Delivered),
            "{given} told as {told}"
        );
        assert_eq!(b.waiting(), 0);
    }
    // A neighbour is never taken for it.
    let b = book(1, 100);
    b.accepted("1235", 1, 0, 1, "994501234567", t0);
    assert_eq!(
        b.receipt(&receipt("1234", Stat::Delivered), t0),
        Matched::Unmatched
    );
    // An exact match wins over a re-rendered one: "3039" booked as itself and 12345 = 0x3039.
    let b = book(1, 100);
    b.accepted("12345", 1, 0, 1, "994501234567", t0);
    b.accepted("3039", 2, 0, 1, "994501234567", t0);
    assert!(matches!(
        b.receipt(&receipt("3039", Stat::Delivered), t0),
        Matched::Part { reply: 2, .. }
    ));
}

#[test]
fn a_reply_is_delivered_when_every_part_is_and_failed_when_one_fails() {
    let t0 = Instant::now();
    let b = book(1, 100);
    b.accepted("a1", 7, 0, 2, "994501234567", t0);
    b.accepted("a2", 7, 1, 2, "994501234567", t0);
    assert_eq!(
        settled(b.receipt(&receipt("a1", Stat::Delivered), t0)),
        None
    );
    // An intermediate notification settles nothing and keeps the id.
    assert_eq!(settled(b.receipt(&receipt("a2", Stat::Enroute), t0)), None);
    assert_eq!(b.waiting(), 1);
    assert_eq!(
        settled(b.receipt(&receipt("a2", Stat::Delivered), t0)),
        Some(ReplyState::Delivered)
    );
    assert_eq!(counts(&b), (vec![2, 0, 0, 0, 1, 0], vec![1, 0, 0, 0]));
    // One part undeliverable: the reply failed at once, whatever the other says later.
    b.accepted("b1", 8, 0, 2, "994501234567", t0);
    b.accepted("b2", 8, 1, 2, "994501234567", t0);
    assert_eq!(
        settled(b.receipt(&receipt("b2", Stat::Undeliverable), t0)),
        Some(ReplyState::Failed)
    );
    assert_eq!(
        settled(b.receipt(&receipt("b1", Stat::Delivered), t0)),
        None
    );
    // Expired, and unknown.
    b.accepted("c1", 9, 0, 1, "994501234567", t0);
    b.accepted("d1", 10, 0, 1, "994501234567", t0);
    assert_eq!(
        settled(b.receipt(&receipt("c1", Stat::Expired), t0)),
        Some(ReplyState::Expired)
    );
    assert_eq!(
        settled(b.receipt(&receipt("d1", Stat::Unknown), t0)),
        Some(ReplyState::Unknown)
    );
    assert_eq!(counts(&b).1, vec![1, 1, 1, 1]);
    // A second receipt for a settled id, and one for no id at all: unmatched.
    assert_eq!(
        b.receipt(&receipt("d1", Stat::Delivered), t0),
        Matched::Unmatched
    );
    let none = Receipt {
        id: None,
        stat: None,
    };
    assert_eq!(b.receipt(&none, t0), Matched::Unmatched);
    assert_eq!(counts(&b).0[5], 2);
}

#[test]
fn a_receipt_that_comes_before_the_next_part_is_accepted_still_counts() {
    // An SMSC that answers each part and sends its receipt at once: part 1's receipt is in
    // before part 2 is booked.
    let t0 = Instant::now();
    let b = book(1, 100);
    b.accepted("p1", 3, 0, 2, "994501234567", t0);
    assert_eq!(
        settled(b.receipt(&receipt("p1", Stat::Delivered), t0)),
        None
    );
    b.accepted("p2", 3, 1, 2, "994501234567", t0);
    assert_eq!(
        settled(b.receipt(&receipt("p2", Stat::Delivered), t0)),
        Some(ReplyState::Delivered)
    );
    assert_eq!(counts(&b).1, vec![1, 0, 0, 0]);
    // A part never booked (refused by the SMSC): the reply is forgotten at the expiry.
    b.accepted("q1", 4, 0, 2, "994501234567", t0);
    b.receipt(&receipt("q1", Stat::Delivered), t0);
    b.receipt(&receipt("none", Stat::Delivered), t0 + 48 * H);
    assert_eq!(counts(&b).1, vec![1, 0, 0, 1]);
    assert!(b.lock().replies.is_empty());
}

#[test]
fn entries_expire_and_the_count_limit_holds() {
    let t0 = Instant::now();
    let b = book(1, 3);
    for i in 0..5u64 {
        b.accepted(&format!("m{i}"), i, 0, 1, "994501234567", t0 + H * i as u32);
    }
    assert_eq!(b.waiting(), 3, "the oldest went first");
    assert_eq!(
        b.receipt(&receipt("m0", Stat::Delivered), t0 + 5 * H),
        Matched::Unmatched
    );
    // Two evicted unanswered: unknown, as every receipt was asked for.
    assert_eq!(counts(&b).1, vec![0, 0, 0, 2]);
    // Past the expiry the rest goes too.
    assert_eq!(
        b.receipt(&receipt("m4", Stat::Delivered), t0 + 4 * H + 48 * H),
        Matched::Unmatched
    );
    assert_eq!(b.waiting(), 0);
    assert_eq!(counts(&b).1, vec![0, 0, 0, 5]);
    // Early answers never let the order queue grow without bound.
    let b = book(1, 2);
    for i in 0..1_000u64 {
        b.accepted(&format!("n{i}"), i, 0, 1, "994501234567", t0);
        b.receipt(&receipt(&format!("n{i}"), Stat::Delivered), t0);
    }
    assert!(b.lock().order.len() <= 32);
    assert!(b.lock().tracks.len() <= 32);
    assert_eq!(counts(&b).1[0], 1_000);
}

#[test]
fn on_failure_only_silence_is_not_counted_and_no_receipt_books_nothing() {
    let t0 = Instant::now();
    let b = book(2, 100);
    b.accepted("x", 1, 0, 1, "994501234567", t0);
    b.receipt(&receipt("y", Stat::Delivered), t0 + 49 * H);
    assert_eq!(counts(&b).1, vec![0, 0, 0, 0]);
    let b = book(0, 100);
    b.accepted("x", 1, 0, 1, "994501234567", t0);
    assert_eq!(b.waiting(), 0);
}
