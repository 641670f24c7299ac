use super::*;
use crate::replies::Classifier;
use crate::traffic::Reason;

struct World {
    ledger: Ledger,
    pop: Arc<Population>,
    rules: Arc<Rules>,
    classifier: Classifier,
}

fn world() -> World {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
    world_of(Rules::load(&path).unwrap())
}

fn world_of(rules: Rules) -> World {
    let rules = Arc::new(rules);
    let pop = Arc::new(Population::new(&rules, 50, 3).unwrap());
    let oracle = Oracle::new(rules.clone(), &pop);
    World {
        ledger: Ledger::new(oracle, pop.clone(), rules.clone(), Instant::now()),
        classifier: Classifier::new(&rules).unwrap(),
        pop,
        rules,
    }
}

impl World {
    fn request(&mut self, doc: u32, code: u8) -> Ticket {
        let phone = self.pop.owner(doc);
        let (kind, number) = self.pop.document(doc);
        let sms = Sms {
            phone,
            text: format!("{code} {} {number}", self.rules.kinds[kind].series),
            expect: Expect::Request { doc, code },
            origin: Origin::Clean,
        };
        self.ledger.register(sms, Instant::now(), 1_586_152_800)
    }

    fn reply(&mut self, doc: u32, text: &str) {
        let phone = self.pop.owner(doc);
        self.ledger.on_reply(Reply {
            msisdn: self.pop.msisdn(phone),
            phone: Some(phone),
            text: text.into(),
            classified: self.classifier.classify(text),
            arrived: Instant::now(),
        });
    }

    fn doc_text(&self, doc: u32) -> String {
        let (kind, number) = self.pop.document(doc);
        format!("{} {number}", self.rules.kinds[kind].series)
    }
}

const NOW: i64 = 1_586_152_800;

#[test]
fn a_family_reply_is_checked_document_by_document_in_order() {
    let mut w = world();
    // Two documents of one household (phone), the first granted alone beforehand.
    let phone = (0..w.pop.phones())
        .find(|&p| w.pop.docs_of(p).len() >= 2)
        .unwrap();
    let docs: Vec<u32> = w.pop.docs_of(phone).take(2).collect();
    let (d0, d1) = (w.doc_text(docs[0]), w.doc_text(docs[1]));
    let a = w.request(docs[0], 2);
    w.ledger.on_ack(a, 0, Instant::now(), NOW);
    w.reply(
        docs[0],
        &format!("İCAZƏ VERİLDİ: kod 2 (x), {d0}, 10:00–13:00. İcazə № A"),
    );
    let family = |w: &mut World| {
        let sms = Sms {
            phone,
            text: format!("2 {d0} {d1}"),
            expect: Expect::Family(crate::traffic::Family::new(2, &docs)),
            origin: Origin::Family,
        };
        assert!(!w.ledger.busy(phone, docs[1], 3));
        let t = w.ledger.register(sms, Instant::now(), NOW);
        assert!(
            w.ledger.busy(phone, docs[1], 2),
            "a family's documents are busy"
        );
        w.ledger.on_ack(t, 0, Instant::now(), NOW);
    };
    family(&mut w);
    // Each document as if sent alone: the first's permit is active, the second granted.
    w.reply(
        docs[0],
        &format!(
            "Kod 2 (x), 2 sənəd:\n{d0}: artıq var 10:00–13:00, № A\n{d1}: VERİLDİ 10:00–13:00, № B"
        ),
    );
    assert_eq!(
        w.ledger.stats().mismatches,
        0,
        "{:?}",
        w.ledger.stats().mismatch_list
    );
    assert_eq!(w.ledger.stats().got.get("family"), Some(&1));
    // Again: both active now; a reply saying the second was granted again is wrong.
    family(&mut w);
    w.reply(
        docs[0],
        &format!(
            "Kod 2 (x), 2 sənəd:\n{d0}: artıq var 10:00–13:00, № A\n{d1}: VERİLDİ 10:00–13:00, № B"
        ),
    );
    let s = w.ledger.stats();
    assert_eq!(s.mismatches, 1);
    assert_eq!(
        s.mismatch_kinds.get("active → granted"),
        Some(&1),
        "a second permit is counted as one: {:?}",
        s.mismatch_kinds
    );
    assert!(
        s.mismatch_list[0]
            .why
            .contains("expected active, got granted"),
        "{:?}",
        s.mismatch_list
    );
    // A reply listing the documents in another order does not answer the family.
    family(&mut w);
    w.reply(
        docs[0],
        &format!(
            "Kod 2 (x), 2 sənəd:\n{d1}: artıq var 10:00–13:00, № B\n{d0}: artıq var 10:00–13:00, № A"
        ),
    );
    assert_eq!(w.ledger.stats().mismatches, 2);
    assert!(w.ledger.stats().mismatch_list[1].why.contains("line"));
}

#[test]
fn a_grant_answered_try_again_is_not_counted_as_made() {
    let mut w = world();
    let doc = w.pop.docs_of(0).start;
    let d = w.doc_text(doc);
    // Predicted a grant, answered "try again later" (the store was away): a mismatch,
    // and no permit in the oracle's books.
    let a = w.request(doc, 2);
    w.ledger.on_ack(a, 0, Instant::now(), NOW);
    w.reply(
        doc,
        "Sorğunuzu indi emal etmək mümkün olmadı. Bir neçə dəqiqədən sonra yenidən göndərin.",
    );
    // So the re-send is predicted a grant again, and a grant is right.
    let b = w.request(doc, 2);
    w.ledger.on_ack(b, 0, Instant::now(), NOW);
    w.reply(
        doc,
        &format!("İCAZƏ VERİLDİ: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
    );
    let s = w.ledger.stats();
    assert_eq!(s.mismatches, 1, "{:?}", s.mismatch_list);
    assert_eq!(
        s.mismatch_kinds.get("granted → try_later"),
        Some(&1),
        "{:?}",
        s.mismatch_kinds
    );
}

#[test]
fn a_family_answered_try_again_gives_its_phone_back_every_document() {
    // Two documents a phone: a family of both answered "try again later" made no grant,
    // so each asked alone afterwards is granted (not refused as a third document).
    let mut w = world_of(
        Rules::from_toml(
            r#"
            max_documents_per_phone = 2
            [[documents]]
            series = "AA"
            digits = [7]
            [codes.2]
            validity = "3h"
            daily_limit = 1
            "#,
        )
        .unwrap(),
    );
    let phone = (0..w.pop.phones())
        .find(|&p| w.pop.docs_of(p).len() >= 2)
        .unwrap();
    let docs: Vec<u32> = w.pop.docs_of(phone).take(2).collect();
    let (d0, d1) = (w.doc_text(docs[0]), w.doc_text(docs[1]));
    let sms = Sms {
        phone,
        text: format!("2 {d0} {d1}"),
        expect: Expect::Family(crate::traffic::Family::new(2, &docs)),
        origin: Origin::Family,
    };
    let t = w.ledger.register(sms, Instant::now(), NOW);
    w.ledger.on_ack(t, 0, Instant::now(), NOW);
    w.reply(
        docs[0],
        "Sorğunuzu indi emal etmək mümkün olmadı. Bir neçə dəqiqədən sonra yenidən göndərin.",
    );
    for (doc, text) in [(docs[0], &d0), (docs[1], &d1)] {
        let a = w.request(doc, 2);
        w.ledger.on_ack(a, 0, Instant::now(), NOW);
        w.reply(
            doc,
            &format!("İCAZƏ VERİLDİ: kod 2 (x), {text}, 10:00–13:00. İcazə № A"),
        );
    }
    let s = w.ledger.stats();
    assert_eq!(
        s.mismatch_kinds.get("family → try_later"),
        Some(&1),
        "{:?}",
        s.mismatch_kinds
    );
    assert_eq!(s.mismatches, 1, "{:?}", s.mismatch_list);
}

#[test]
fn a_help_word_gets_the_usage_reply() {
    let mut w = world();
    let sms = Sms {
        phone: 0,
        text: "kömək".into(),
        expect: Expect::Help,
        origin: Origin::Help,
    };
    let t = w.ledger.register(sms, Instant::now(), NOW);
    w.ledger.on_ack(t, 0, Instant::now(), NOW);
    w.reply(
        w.pop.docs_of(0).start,
        "İcazə üçün yazın: KOD SERİYA NÖMRƏ, məs. 1 AZE 12345678. Kodlar: 1 (a), 2 (b).",
    );
    let s = w.ledger.stats();
    assert_eq!((s.answered, s.mismatches), (1, 0), "{:?}", s.mismatch_list);
}

#[test]
fn grant_then_active_in_order_and_out_of_order() {
    let mut w = world();
    let d = w.doc_text(0);
    let a = w.request(0, 2);
    assert!(w.ledger.busy(w.pop.owner(0), 0, 2));
    assert_eq!(
        w.ledger.on_ack(a, 0, Instant::now(), NOW),
        AckOutcome::Accepted
    );
    w.reply(
        0,
        &format!("İCAZƏ VERİLDİ: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
    );
    assert!(!w.ledger.busy(w.pop.owner(0), 0, 2));
    // A repeat whose reply comes before its acknowledgement.
    let b = w.request(0, 2);
    w.reply(
        0,
        &format!("İcazəniz artıq var: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
    );
    assert_eq!(w.ledger.outstanding(), 1);
    w.ledger.on_ack(b, 0, Instant::now(), NOW);
    let s = w.ledger.stats();
    assert_eq!((s.answered, s.mismatches, s.duplicates), (2, 0, 0));
    assert_eq!(w.ledger.outstanding(), 0);
}

#[test]
fn wrong_class_wrong_echo_duplicate_and_missing_are_caught() {
    let mut w = world();
    let d = w.doc_text(1);
    let a = w.request(1, 2);
    w.ledger.on_ack(a, 0, Instant::now(), NOW);
    w.reply(
        1,
        &format!("İcazəniz artıq var: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
    );
    assert_eq!(w.ledger.stats().mismatches, 1);
    w.reply(
        1,
        "Boş mesaj. Yazın: KOD SERİYA NÖMRƏ, məs. 1 AZE 12345678. Kodlar: 1, 2, 3.",
    );
    assert_eq!(w.ledger.stats().duplicates, 1);
    // A window that is not the code's validity.
    let b = w.request(2, 2);
    w.ledger.on_ack(b, 0, Instant::now(), NOW);
    let d2 = w.doc_text(2);
    w.reply(
        2,
        &format!("İCAZƏ VERİLDİ: kod 2 (x), {d2}, 10:00–12:00. İcazə № A"),
    );
    assert_eq!(w.ledger.stats().mismatches, 2);
    assert!(w.ledger.stats().mismatch_list[1].why.contains("window"));
    let c = w.request(3, 1);
    w.ledger.on_ack(c, 0, Instant::now(), NOW);
    let (missing, list) = w.ledger.close();
    assert_eq!(missing, 1);
    assert!(list[0].acknowledged && !list[0].replied);
}

#[test]
fn a_redelivered_grant_may_come_back_active_and_nothing_else_may() {
    let mut w = world();
    let (d5, d6) = (w.doc_text(5), w.doc_text(6));
    // The session carrying both ended before their acknowledgements.
    let a = w.request(5, 2);
    let b = w.request(6, 2);
    w.ledger.unacknowledged(a);
    w.ledger.unacknowledged(a);
    w.ledger.unacknowledged(b);
    assert_eq!(w.ledger.stats().redelivered, 2);
    for t in [a, b] {
        w.ledger.resent(t, Instant::now(), NOW);
        w.ledger.on_ack(t, 0, Instant::now(), NOW);
    }
    // The gateway had granted the first before it lost the bind: right.
    w.reply(
        5,
        &format!("İcazəniz artıq var: kod 2 (x), {d5}, 10:00–13:00. İcazə № A"),
    );
    assert_eq!(w.ledger.stats().mismatches, 0);
    // A refusal is no answer to a grant, redelivered or not.
    w.reply(
        6,
        &format!(
            "İcazə verilmədi: {d6} bu gün kod 2 üzrə icazəsini artıq alıb (gündə 1). Sabah yenidən yazın."
        ),
    );
    let s = w.ledger.stats();
    assert_eq!((s.answered, s.mismatches), (2, 1), "{:?}", s.mismatch_list);
    assert_eq!(s.got.get("daily_limit"), Some(&1));
    assert!(
        s.mismatch_list[0]
            .why
            .contains("expected granted, got daily_limit")
    );
    // An MO that was never redelivered still must get its grant.
    let c = w.request(7, 2);
    w.ledger.on_ack(c, 0, Instant::now(), NOW);
    let d7 = w.doc_text(7);
    w.reply(
        7,
        &format!("İcazəniz artıq var: kod 2 (x), {d7}, 10:00–13:00. İcazə № A"),
    );
    assert_eq!(w.ledger.stats().mismatches, 2);
}

#[test]
fn throttled_mos_are_sent_again_and_predicted_in_gateway_order() {
    let mut w = world();
    let d = w.doc_text(4);
    let a = w.request(4, 2);
    let phone = w.pop.owner(4);
    let invalid = w.ledger.register(
        Sms {
            phone,
            text: "salam".into(),
            expect: Expect::Invalid(Reason::NoCode),
            origin: Origin::Invalid,
        },
        Instant::now(),
        NOW,
    );
    assert_eq!(
        w.ledger
            .on_ack(a, Status::ESME_RTHROTTLED.code(), Instant::now(), NOW),
        AckOutcome::Retry
    );
    w.ledger.on_ack(invalid, 0, Instant::now(), NOW);
    w.reply(
        4,
        "Mesaj icazə kodu ilə başlamalıdır (1, 2, 3), məs. 1 AZE 12345678.",
    );
    w.ledger.resent(a, Instant::now(), NOW);
    w.ledger.on_ack(a, 0, Instant::now(), NOW);
    w.reply(
        4,
        &format!("İCAZƏ VERİLDİ: kod 2 (x), {d}, 10:00–13:00. İcazə № A"),
    );
    let s = w.ledger.stats();
    assert_eq!(
        (s.answered, s.mismatches, s.throttled, s.resent),
        (2, 0, 1, 1)
    );
    assert_eq!(s.errors.get("ESME_RTHROTTLED"), Some(&1));
    assert_eq!(
        w.ledger.on_ack(a, 0, Instant::now(), NOW),
        AckOutcome::Unknown
    );
}
