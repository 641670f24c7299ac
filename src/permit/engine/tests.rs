//! The engine's unit tests: decisions, the table, the batch path.

use super::table::decode_span;
use super::*;
use crate::permit::id::PhoneTag;

const RULES: &str = r#"
timezone = "Asia/Baku"
[[documents]]
series = "AZE"
digits = [8, 7]
[codes.1]
name = "medical"
validity = "3h"
group = "daily"
[codes.2]
name = "food"
validity = "2h"
group = "daily"
[codes.3]
name = "funeral"
validity = "3h"
daily_limit = "unlimited"
[codes.4]
name = "walk"
validity = "1h"
daily_limit = 2
hours = "07:00-20:00"
[codes.5]
name = "off"
enabled = false
validity = "1h"
daily_limit = 1
[groups.daily]
daily_limit = 1
[[blocklist]]
document = "AZE 99999999"
codes = [3]
"#;

fn at(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

fn doc(n: &str) -> Document {
    Document::new(b"AZE", n.as_bytes()).unwrap()
}

fn rules() -> Rules {
    Rules::from_toml(RULES).unwrap()
}

fn ask(e: &QuotaEngine, r: &Rules, code: u8, d: Document, t: &str) -> Outcome {
    e.decide_at(r, code, d, &r.calendar.moment(at(t))).outcome
}

#[test]
fn grant_repeat_and_daily_limit_across_a_group() {
    let (e, r) = (QuotaEngine::new(), rules());
    let d = doc("11111111");
    let g = ask(&e, &r, 1, d, "2020-04-06T10:00:00+04:00");
    let Outcome::Granted(v) = g else {
        panic!("{g:?}")
    };
    assert_eq!(v.until - v.from, 3 * 3600);
    // Repeat while active: the same permit again.
    assert_eq!(
        ask(&e, &r, 1, d, "2020-04-06T11:00:00+04:00"),
        Outcome::Active(v)
    );
    // Code 2 shares the group's one permit a day.
    assert_eq!(
        ask(&e, &r, 2, d, "2020-04-06T11:00:00+04:00"),
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
    // After expiry, the same code is refused too: the day's permit is used.
    assert_eq!(
        ask(&e, &r, 1, d, "2020-04-06T13:00:00+04:00"),
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
    // Next Baku day: a new permit.
    assert!(matches!(
        ask(&e, &r, 2, d, "2020-04-07T00:00:00+04:00"),
        Outcome::Granted(_)
    ));
    // Another document is untouched.
    assert!(matches!(
        ask(&e, &r, 2, doc("1111111"), "2020-04-06T11:00:00+04:00"),
        Outcome::Granted(_)
    ));
}

#[test]
fn peek_reports_without_recording_and_agrees_with_decide() {
    let (e, r) = (QuotaEngine::new(), rules());
    let d = doc("44444444");
    let m = r.calendar.moment(at("2020-04-06T10:00:00+04:00"));
    // A possible grant, any number of times: nothing is used.
    for code in [1, 2, 4] {
        let peek = e.peek_at(&r, code, d, &m).outcome;
        assert!(matches!(peek, Outcome::Granted(_)), "{peek:?}");
        assert_eq!(peek, e.peek_at(&r, code, d, &m).outcome);
    }
    assert!(e.is_empty());
    // Denials that need no state are the same as decide's.
    assert_eq!(
        e.peek_at(&r, 5, d, &m).outcome,
        Outcome::Denied(Denial::CodeDisabled)
    );
    // Once a grant is recorded (as the Redis path does), peek sees it like decide would:
    // the permit is active, and the shared group's limit is used for the other code.
    let Outcome::Granted(v) = e.peek_at(&r, 1, d, &m).outcome else {
        panic!()
    };
    e.record_grant(&r, 1, d, v);
    let later = r.calendar.moment(at("2020-04-06T11:00:00+04:00"));
    assert_eq!(e.peek_at(&r, 1, d, &later).outcome, Outcome::Active(v));
    assert_eq!(
        e.peek_at(&r, 2, d, &later).outcome,
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
    assert_eq!(
        e.peek_at(&r, 2, d, &later),
        e.decide_at(&r, 2, d, &later),
        "peek and decide agree where nothing is granted"
    );
}

#[test]
fn late_permit_crosses_midnight_and_counts_for_its_day() {
    let (e, r) = (QuotaEngine::new(), rules());
    let d = doc("22222222");
    let Outcome::Granted(v) = ask(&e, &r, 1, d, "2020-04-06T22:30:00+04:00") else {
        panic!()
    };
    assert_eq!(r.calendar.hh_mm(v.until), "01:30");
    // At 00:30 the permit is still active: a repeat re-sends it.
    assert_eq!(
        ask(&e, &r, 1, d, "2020-04-07T00:30:00+04:00"),
        Outcome::Active(v)
    );
    // But it counted for the 6th, so the 7th has its own permit once it expires.
    assert!(matches!(
        ask(&e, &r, 1, d, "2020-04-07T01:30:00+04:00"),
        Outcome::Granted(_)
    ));
}

#[test]
fn unlimited_hours_disabled_blocked() {
    let (e, r) = (QuotaEngine::new(), rules());
    let d = doc("33333333");
    let Outcome::Granted(v) = ask(&e, &r, 3, d, "2020-04-06T10:00:00+04:00") else {
        panic!()
    };
    assert_eq!(
        ask(&e, &r, 3, d, "2020-04-06T12:59:59+04:00"),
        Outcome::Active(v)
    );
    assert!(matches!(
        ask(&e, &r, 3, d, "2020-04-06T13:00:00+04:00"),
        Outcome::Granted(_)
    ));
    assert!(matches!(
        ask(&e, &r, 3, d, "2020-04-06T16:00:00+04:00"),
        Outcome::Granted(_)
    ));
    assert!(matches!(
        ask(&e, &r, 4, d, "2020-04-06T06:59:00+04:00"),
        Outcome::Denied(Denial::OutsideHours { .. })
    ));
    assert!(matches!(
        ask(&e, &r, 4, d, "2020-04-06T07:00:00+04:00"),
        Outcome::Granted(_)
    ));
    assert!(matches!(
        ask(&e, &r, 4, d, "2020-04-06T09:00:00+04:00"),
        Outcome::Granted(_)
    ));
    assert_eq!(
        ask(&e, &r, 4, d, "2020-04-06T11:00:00+04:00"),
        Outcome::Denied(Denial::DailyLimit { limit: 2 })
    );
    assert_eq!(
        ask(&e, &r, 5, d, "2020-04-06T11:00:00+04:00"),
        Outcome::Denied(Denial::CodeDisabled)
    );
    assert_eq!(
        ask(&e, &r, 9, d, "2020-04-06T11:00:00+04:00"),
        Outcome::Denied(Denial::UnknownCode)
    );
    let b = doc("99999999");
    assert_eq!(
        ask(&e, &r, 3, b, "2020-04-06T11:00:00+04:00"),
        Outcome::Denied(Denial::Blocked)
    );
    assert!(matches!(
        ask(&e, &r, 1, b, "2020-04-06T11:00:00+04:00"),
        Outcome::Granted(_)
    ));
}

#[test]
fn sweep_drops_only_dead_state_and_record_grant_restores() {
    let (e, r) = (QuotaEngine::new(), rules());
    for n in 0..100u32 {
        ask(
            &e,
            &r,
            3,
            doc(&format!("{:08}", n)),
            "2020-04-06T22:30:00+04:00",
        );
    }
    ask(&e, &r, 3, doc("44444444"), "2020-04-07T00:10:00+04:00");
    assert_eq!(e.len(), 101);
    // 00:30 on the 7th: yesterday's permits still run until 01:30.
    assert_eq!(e.sweep(&r, at("2020-04-07T00:30:00+04:00")), 0);
    assert_eq!(e.sweep(&r, at("2020-04-07T01:30:00+04:00")), 100);
    assert_eq!(e.len(), 1);

    let restored = QuotaEngine::new();
    let v = Validity {
        from: at("2020-04-06T10:00:00+04:00"),
        until: at("2020-04-06T12:00:00+04:00"),
    };
    restored.record_grant(&r, 2, doc("55555555"), v);
    assert_eq!(
        ask(
            &restored,
            &r,
            2,
            doc("55555555"),
            "2020-04-06T11:00:00+04:00"
        ),
        Outcome::Active(v)
    );
    assert_eq!(
        ask(
            &restored,
            &r,
            1,
            doc("55555555"),
            "2020-04-06T11:00:00+04:00"
        ),
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
}

/// A small deterministic generator, so the table tests need no dependency.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn table_agrees_with_a_hash_map_through_growth_and_deletion() {
    let mut table = Table::with_lines(0, foldhash::fast::RandomState::default());
    let mut reference = std::collections::HashMap::new();
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    for round in 0..40_000u32 {
        // Keys from a small space so updates and deletions hit present keys often.
        let k = 1 + xorshift(&mut rng) % 5_000;
        let value = Entry {
            issued: round,
            span: (round % 7) as u16,
            used: (round % 5) as u16,
        };
        if xorshift(&mut rng).is_multiple_of(4) {
            if let Ok(pos) = table.find(k) {
                table.remove_at(pos);
            }
            reference.remove(&k);
        } else {
            let at = table.find(k);
            table.put(k, at, value, u32::from(value.span));
            reference.insert(k, value);
        }
        assert!(table.len < table.slots());
    }
    assert_eq!(table.len, reference.len());
    for k in 1..=5_000u64 {
        let got = table
            .find(k)
            .ok()
            .map(|pos| Entry::unpack(table.bucket(pos).value));
        assert_eq!(got, reference.get(&k).copied(), "key {k}");
    }
    // Sweeping everything from before `issued` 30_000 whose (short) grant has ended.
    let before = table.len;
    let dropped = table.sweep(0, table.slots(), 30_000, 30_000);
    reference.retain(|_, e| e.issued >= 30_000 || e.issued + u32::from(e.span) > 30_000);
    assert_eq!(table.len, reference.len());
    assert_eq!(before - dropped, table.len);
    for k in 1..=5_000u64 {
        assert_eq!(table.find(k).is_ok(), reference.contains_key(&k), "key {k}");
    }
}

#[test]
fn validity_of_any_length_comes_back_exact() {
    for secs in [
        1,
        45,
        32_767,
        32_768,
        32_820,
        10 * 3600,
        10 * 3600 + 1,
        30 * 86_400,
    ] {
        let span = encode_span(secs);
        let kept = decode_span(span).unwrap_or(secs);
        assert_eq!(kept, secs, "{secs} s");
    }
    assert_eq!(decode_span(encode_span(10 * 3600 + 1)), None);
    let toml = RULES.replace(
        "validity = \"3h\"\ndaily_limit = \"unlimited\"",
        "validity = \"10h0m1s\"\ndaily_limit = \"unlimited\"",
    );
    let r = Rules::from_toml(&toml).unwrap();
    let e = QuotaEngine::new();
    let d = doc("12121212");
    let Outcome::Granted(v) = ask(&e, &r, 3, d, "2020-04-06T10:00:00+04:00") else {
        panic!()
    };
    assert_eq!(v.until - v.from, 10 * 3600 + 1);
    assert_eq!(
        ask(&e, &r, 3, d, "2020-04-06T20:00:00+04:00"),
        Outcome::Active(v)
    );
    assert!(matches!(
        ask(&e, &r, 3, d, "2020-04-06T20:00:01+04:00"),
        Outcome::Granted(_)
    ));
    // A replayed grant with an odd window is also kept to the second.
    let odd = Validity {
        from: at("2020-04-06T10:00:00+04:00"),
        until: at("2020-04-07T09:00:07+04:00"),
    };
    let other = doc("13131313");
    e.record_grant(&r, 4, other, odd);
    assert_eq!(
        ask(&e, &r, 4, other, "2020-04-07T09:00:06+04:00"),
        Outcome::Active(odd)
    );
    // A sweep after it ends drops it and its side entry.
    let before = e.len();
    assert!(e.sweep(&r, at("2020-04-07T09:00:07+04:00")) >= 1);
    assert!(e.len() < before);
    assert!(e.shards.iter().all(|s| s.lock().wide.len() <= 1));
}

#[test]
fn a_batch_decides_as_one_by_one_in_request_order() {
    let r = rules();
    let now = at("2020-04-06T10:00:00+04:00");
    let requests: Vec<PermitRequest> = (0..2_000u32)
        .map(|i| PermitRequest {
            // Few documents, so most appear many times in the batch.
            code: [1, 2, 3, 4, 5, 9][(i % 6) as usize],
            document: if i % 97 == 0 {
                doc("99999999")
            } else {
                doc(&format!("{:08}", i % 37))
            },
            extra: String::new(),
        })
        .collect();
    let one_by_one = QuotaEngine::new();
    let want: Vec<Decision> = requests
        .iter()
        .map(|q| one_by_one.decide(&r, q, now))
        .collect();
    let batched = QuotaEngine::new();
    let mut out = vec![want[0]];
    batched.decide_batch(&r, &requests[..700], now, &mut out);
    let mut scratch = BatchScratch::new();
    batched.decide_batch_with(&r, &requests[700..], now, &mut out, &mut scratch);
    assert_eq!(out[1..], want[..]);
    assert_eq!(batched.len(), one_by_one.len());
}

#[test]
fn a_peeked_batch_answers_as_peek_at_and_records_nothing() {
    let r = rules();
    let now = at("2020-04-06T10:00:00+04:00");
    let m = r.calendar.moment(now);
    let (held, fresh) = (doc("81818181"), doc("82828282"));
    let e = QuotaEngine::new();
    e.decide_at(&r, 1, held, &m);
    let ask = |code, document| PermitRequest {
        code,
        document,
        extra: String::new(),
    };
    // The same fresh document twice for one group, an active permit, a used-up shared
    // limit, a blocked and an unknown code.
    let requests = [
        ask(2, fresh),
        ask(1, fresh),
        ask(1, held),
        ask(2, held),
        ask(3, doc("99999999")),
        ask(9, fresh),
        ask(2, fresh),
    ];
    let len = e.len();
    let mut out = vec![e.peek_at(&r, 4, held, &m)];
    e.peek_batch(&r, &requests, now, &mut out);
    let mut scratch = BatchScratch::new();
    e.peek_batch_with(&r, &requests, now, &mut out, &mut scratch);
    let want: Vec<Decision> = requests
        .iter()
        .map(|q| e.peek_at(&r, q.code, q.document, &m))
        .collect();
    assert_eq!(out[1..8], want[..]);
    assert_eq!(out[8..], want[..]);
    // Each answered as if alone: both asks of the fresh group may be granted.
    assert!(matches!(out[1].outcome, Outcome::Granted(_)));
    assert!(matches!(out[2].outcome, Outcome::Granted(_)));
    assert!(matches!(out[3].outcome, Outcome::Active(_)));
    assert_eq!(
        out[4].outcome,
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
    // Nothing was recorded: a later decision still grants, once.
    assert_eq!(e.len(), len);
    assert!(matches!(
        e.decide(&r, &requests[0], now).outcome,
        Outcome::Granted(_)
    ));
    assert_eq!(
        e.decide(&r, &requests[1], now).outcome,
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
}

#[test]
fn a_reserved_engine_takes_its_reserve_without_growing() {
    let r = rules();
    // 50,000 documents ask code 2 at 10:00; every one is granted.
    let fill = |e: &QuotaEngine| {
        for i in 0..50_000u32 {
            let d = doc(&format!("{:08}", 10_000_000 + i));
            let g = ask(e, &r, 2, d, "2020-04-06T10:00:00+04:00");
            assert!(matches!(g, Outcome::Granted(_)), "{g:?}");
        }
    };
    // These rules' codes 1 and 2 share a group: a grant is two entries.
    let e = QuotaEngine::with_capacity(100_000);
    let reserved = e.capacity();
    assert!(reserved >= 100_000, "{reserved}");
    fill(&e);
    assert_eq!(e.len(), 100_000);
    assert_eq!(e.capacity(), reserved, "no table grew");
    // Unreserved, the same load makes the tables grow.
    let grown = QuotaEngine::new();
    let before = grown.capacity();
    fill(&grown);
    assert!(grown.capacity() > before);
}

#[test]
fn record_grant_on_a_shared_group_counts_and_re_sends() {
    let r = rules();
    let e = QuotaEngine::new();
    let d = doc("66666666");
    let v = Validity {
        from: at("2020-04-06T09:00:00+04:00"),
        until: at("2020-04-06T12:00:00+04:00"),
    };
    // Codes 1 and 2 share one permit a day: code 1's replayed grant uses it.
    e.record_grant(&r, 1, d, v);
    assert_eq!(
        ask(&e, &r, 1, d, "2020-04-06T10:00:00+04:00"),
        Outcome::Active(v)
    );
    assert_eq!(
        ask(&e, &r, 2, d, "2020-04-06T10:00:00+04:00"),
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
    // A replayed grant from the day before does not touch today's count.
    let yesterday = Validity {
        from: v.from - 86_400,
        until: v.until - 86_400,
    };
    let fresh = doc("77777777");
    e.record_grant(&r, 2, fresh, v);
    e.record_grant(&r, 2, fresh, yesterday);
    assert_eq!(
        ask(&e, &r, 2, fresh, "2020-04-06T10:00:00+04:00"),
        Outcome::Active(v)
    );
    assert_eq!(
        ask(&e, &r, 1, fresh, "2020-04-06T12:30:00+04:00"),
        Outcome::Denied(Denial::DailyLimit { limit: 1 })
    );
    assert!(matches!(
        ask(&e, &r, 1, fresh, "2020-04-07T00:00:00+04:00"),
        Outcome::Granted(_)
    ));
}

#[test]
fn many_documents_grow_every_shard_and_stay_found() {
    let (e, r) = (QuotaEngine::new(), rules());
    let m = r.calendar.moment(at("2020-04-06T10:00:00+04:00"));
    let docs: Vec<Document> = (0..20_000u32).map(|n| doc(&format!("{n:08}"))).collect();
    for d in &docs {
        assert!(matches!(
            e.decide_at(&r, 3, *d, &m).outcome,
            Outcome::Granted(_)
        ));
    }
    assert_eq!(e.len(), docs.len());
    for d in &docs {
        assert!(matches!(
            e.decide_at(&r, 3, *d, &m).outcome,
            Outcome::Active(_)
        ));
    }
    // Everything is dead the next day after the permits end; the sweep empties it.
    assert_eq!(e.sweep(&r, at("2020-04-07T02:00:00+04:00")), docs.len());
    assert!(e.is_empty());
}

#[test]
fn concurrent_batches_grant_each_permit_once() {
    let (e, r) = (QuotaEngine::new(), rules());
    let now = at("2020-04-06T10:00:00+04:00");
    let docs: Vec<Document> = (0..3_000u32).map(|n| doc(&format!("{n:08}"))).collect();
    let granted: Vec<Vec<Decision>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4usize)
            .map(|t| {
                let (e, r, docs) = (&e, &r, &docs);
                s.spawn(move || {
                    // Each thread asks for every document, codes 1 and 2 (one permit a
                    // day between them) and 3, starting at a different place.
                    let requests: Vec<PermitRequest> = (0..docs.len() * 3)
                        .map(|i| {
                            let i = i + t * 997;
                            PermitRequest {
                                code: [1, 2, 3][i % 3],
                                document: docs[(i / 3) % docs.len()],
                                extra: String::new(),
                            }
                        })
                        .collect();
                    let mut out = Vec::new();
                    for batch in requests.chunks(100) {
                        e.decide_batch(r, batch, now, &mut out);
                    }
                    out.retain(|d| matches!(d.outcome, Outcome::Granted(_)));
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut per_doc = std::collections::HashMap::new();
    for d in granted.iter().flatten() {
        let (daily, funeral) = per_doc.entry(d.document).or_insert((0, 0));
        if d.code == 3 {
            *funeral += 1
        } else {
            *daily += 1
        }
    }
    assert_eq!(per_doc.len(), docs.len());
    assert!(per_doc.values().all(|&n| n == (1, 1)), "{per_doc:?}");
}

#[test]
fn a_revoked_permit_is_refused_on_every_path_while_others_stay_active() {
    use crate::permit::engine::permits::Revocation;
    let r = rules();
    let e = QuotaEngine::with_permits(
        0,
        crate::permit::id::PermitKey::from_secret(b"engine test key"),
    );
    let (mine, other) = (doc("11111111"), doc("22222222"));
    let from = at("2020-04-06T10:00:00+04:00");
    let validity = Validity {
        from,
        until: from + 3 * 3600,
    };
    e.record_grant(&r, 2, mine, validity);
    e.record_grant(&r, 2, other, validity);
    let book = e.permits().unwrap();
    let id = book.id_of(mine, 2, validity);
    assert_eq!(
        book.get(id).unwrap().document,
        mine,
        "replayed grants are indexed"
    );
    book.revoke(
        id,
        Revocation {
            reason: "test".into(),
            at: from + 60,
        },
    );
    let later = "2020-04-06T11:00:00+04:00";
    assert_eq!(
        ask(&e, &r, 2, mine, later),
        Outcome::Denied(Denial::Revoked)
    );
    assert_eq!(ask(&e, &r, 2, other, later), Outcome::Active(validity));
    let m = r.calendar.moment(at(later));
    assert_eq!(
        e.peek_at(&r, 2, mine, &m).outcome,
        Outcome::Denied(Denial::Revoked)
    );
    let requests: Vec<PermitRequest> = ["2 AZE 11111111", "2 AZE 22222222"]
        .iter()
        .map(|t| crate::permit::answer::request_of(r.parser().parse(t)).unwrap())
        .collect();
    let mut out = Vec::new();
    e.peek_batch(&r, &requests, at(later), &mut out);
    assert_eq!(out[0].outcome, Outcome::Denied(Denial::Revoked));
    assert_eq!(out[1].outcome, Outcome::Active(validity));
    // Once the revoked permit has ended, the day's limit still holds.
    assert!(matches!(
        ask(&e, &r, 2, mine, "2020-04-06T14:00:00+04:00"),
        Outcome::Denied(Denial::DailyLimit { .. })
    ));
}

/// [`RULES`] with the abuse limits of seed 004: three documents a phone a day, code 3 twice
/// a document a day.
fn abuse_rules() -> Rules {
    let text = RULES
        .replace(
            "timezone = \"Asia/Baku\"",
            "timezone = \"Asia/Baku\"\nmax_documents_per_phone = 3",
        )
        .replace(
            "daily_limit = \"unlimited\"",
            "daily_limit = \"unlimited\"\nabuse_after = 2",
        );
    Rules::from_toml(&text).unwrap()
}

fn key() -> crate::permit::id::PermitKey {
    crate::permit::id::PermitKey::from_secret(b"engine citizens test")
}

fn by(e: &QuotaEngine, r: &Rules, code: u8, d: Document, phone: PhoneTag, t: &str) -> Outcome {
    let request = PermitRequest {
        code,
        document: d,
        extra: String::new(),
    };
    e.decide_by(r, &request, phone, at(t)).outcome
}

#[test]
fn code_3_past_abuse_after_is_refused_as_abuse_until_the_next_day() {
    let (e, r) = (QuotaEngine::new(), abuse_rules());
    let d = doc("31313131");
    let me = PhoneTag(5);
    assert!(matches!(
        by(&e, &r, 3, d, me, "2020-04-06T08:00:00+04:00"),
        Outcome::Granted(_)
    ));
    assert!(matches!(
        by(&e, &r, 3, d, me, "2020-04-06T11:00:00+04:00"),
        Outcome::Granted(_)
    ));
    assert_eq!(
        by(&e, &r, 3, d, me, "2020-04-06T14:00:00+04:00"),
        Outcome::Denied(Denial::Abuse)
    );
    assert_eq!(
        ask(&e, &r, 3, d, "2020-04-06T18:00:00+04:00"),
        Outcome::Denied(Denial::Abuse),
        "whatever phone asks"
    );
    assert!(matches!(
        by(&e, &r, 3, d, me, "2020-04-07T08:00:00+04:00"),
        Outcome::Granted(_)
    ));
    // Without abuse_after, code 3 stays unlimited.
    let plain = QuotaEngine::new();
    for hour in [8, 11, 14, 17] {
        let t = format!("2020-04-06T{hour:02}:00:00+04:00");
        assert!(matches!(
            ask(&plain, &rules(), 3, d, &t),
            Outcome::Granted(_)
        ));
    }
}

#[test]
fn a_phone_past_max_documents_per_phone_is_refused_as_abuse() {
    let (e, r) = (QuotaEngine::new(), abuse_rules());
    let (me, other) = (PhoneTag(7), PhoneTag(8));
    for n in 1..=3 {
        let d = doc(&format!("4000000{n}"));
        assert!(matches!(
            by(&e, &r, 2, d, me, "2020-04-06T10:00:00+04:00"),
            Outcome::Granted(_)
        ));
    }
    let fourth = doc("40000004");
    assert_eq!(
        by(&e, &r, 2, fourth, me, "2020-04-06T10:05:00+04:00"),
        Outcome::Denied(Denial::Abuse)
    );
    // A document it already had is answered as ever; another phone is not limited by it.
    assert!(matches!(
        by(&e, &r, 2, doc("40000001"), me, "2020-04-06T10:10:00+04:00"),
        Outcome::Active(_)
    ));
    assert!(matches!(
        by(&e, &r, 2, fourth, other, "2020-04-06T10:10:00+04:00"),
        Outcome::Granted(_)
    ));
    // A refusal under the limit used no quota: the document is still free for its own phone.
    let fifth = doc("40000005");
    assert_eq!(
        by(&e, &r, 2, fifth, me, "2020-04-06T10:15:00+04:00"),
        Outcome::Denied(Denial::Abuse)
    );
    assert!(matches!(
        by(&e, &r, 2, fifth, other, "2020-04-06T10:20:00+04:00"),
        Outcome::Granted(_)
    ));
    // The next Baku day starts afresh.
    assert!(matches!(
        by(&e, &r, 2, doc("40000006"), me, "2020-04-07T00:00:00+04:00"),
        Outcome::Granted(_)
    ));
}

#[test]
fn status_lists_only_the_asking_phones_permits_of_today_and_survives_a_replay() {
    let (e, r) = (QuotaEngine::with_permits(0, key()), abuse_rules());
    let d = doc("51515151");
    let (me, stranger) = (PhoneTag(11), PhoneTag(12));
    let t = "2020-04-06T10:00:00+04:00";
    let Outcome::Granted(v2) = by(&e, &r, 2, d, me, t) else {
        panic!()
    };
    let Outcome::Granted(v3) = by(&e, &r, 3, d, stranger, "2020-04-06T10:30:00+04:00") else {
        panic!()
    };
    let mine = e.status(&r, d, me, at("2020-04-06T12:00:00+04:00"));
    assert_eq!(mine.len(), 1);
    assert_eq!((mine[0].code, mine[0].validity), (2, v2));
    let theirs = e.status(&r, d, stranger, at("2020-04-06T12:00:00+04:00"));
    assert_eq!(theirs.len(), 1);
    assert_eq!((theirs[0].code, theirs[0].validity), (3, v3));
    assert!(
        e.status(&r, d, PhoneTag(13), at(t)).is_empty(),
        "a stranger learns nothing"
    );
    assert!(e.status(&r, d, PhoneTag::NONE, at(t)).is_empty());
    assert!(
        e.status(&r, d, me, at("2020-04-07T09:00:00+04:00"))
            .is_empty(),
        "only today's"
    );

    // Rebuilt from grants with their phones (a journal replay), status and the phone's
    // count come back.
    let restored = QuotaEngine::with_permits(0, key());
    restored.record_grant_by(&r, 2, d, v2, me);
    restored.record_grant_by(&r, 3, d, v3, stranger);
    assert_eq!(restored.status(&r, d, me, at(t)), mine);
    let day = r.calendar.moment(at(t)).day_start;
    assert_eq!(restored.phones().documents(me, day), 1);
}
