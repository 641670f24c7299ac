//! A family in one SMS over real SMPP: every document decided against its own quota, one
//! reply listing each; and replies in the language of the text for `language = "auto"`.

mod support;

use support::TestGateway;
use support::smpp::*;

/// Sends `text` (UCS-2) from one phone and returns the response status and the whole reply.
async fn ask(c: &mut Client, text: &str) -> (u32, String) {
    let seq = c.submit("994501234567", "8103", 8, &to_ucs2(text)).await;
    let mut delivered = Vec::new();
    let resp = c.expect_resp(seq, &mut delivered).await;
    let sm = match delivered.pop() {
        Some(sm) => sm,
        None => c.expect_deliver().await,
    };
    (resp.status, sm_text(&sm))
}

/// The one line of `reply` that names `document`.
fn line<'r>(reply: &'r str, document: &str) -> &'r str {
    let lines: Vec<&str> = reply.lines().filter(|l| l.starts_with(document)).collect();
    assert_eq!(lines.len(), 1, "{document} once in {reply:?}");
    lines[0]
}

/// The permit id a reply or a line ends with.
fn permit_id(text: &str) -> &str {
    text.trim_end().rsplit(' ').next().expect("an id")
}

#[tokio::test]
async fn a_family_gets_one_reply_naming_every_document_with_its_own_permit() {
    let gw = TestGateway::start("", "").await;
    let mut c = gw.trx().await;
    // AA 1234567 already has today's permit for code 2 when the family asks.
    let (status, alone) = ask(&mut c, "2 AA 1234567").await;
    assert_eq!(status, ESME_ROK);
    let aa_id = permit_id(&alone).to_owned();

    let (status, reply) = ask(&mut c, "2 AZE 11111111 AA 1234567 MYİ 7654321").await;
    assert_eq!(status, ESME_ROK);
    assert!(
        reply.starts_with("Kod 2 (ərzaq, dərman, bank, poçt), 3 sənəd:"),
        "{reply}"
    );
    let aze = line(&reply, "AZE 11111111");
    let aa = line(&reply, "AA 1234567");
    let myi = line(&reply, "MYİ 7654321");
    assert!(aze.contains("VERİLDİ 10:00\u{2013}13:00"), "{aze}");
    assert!(aa.contains("artıq var 10:00\u{2013}13:00"), "{aa}");
    assert!(myi.contains("VERİLDİ 10:00\u{2013}13:00"), "{myi}");
    assert_eq!(permit_id(aa), aa_id, "the active document keeps its permit");
    assert_ne!(permit_id(aze), permit_id(myi), "one permit per document");

    // Each document's quota was used: alone, it is active with the permit the family got.
    let (_, again) = ask(&mut c, "2 MYİ 7654321").await;
    assert!(again.starts_with("İcazəniz artıq var"), "{again}");
    assert_eq!(permit_id(&again), permit_id(myi));
    let (_, again) = ask(&mut c, "2 aze 1111 1111").await;
    assert!(again.starts_with("İcazəniz artıq var"), "{again}");
    assert_eq!(permit_id(&again), permit_id(aze));
}

#[tokio::test]
async fn an_auto_operator_answers_in_the_language_of_the_text() {
    let gw = TestGateway::start(
        "",
        "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\nlanguage = \"auto\"\n",
    )
    .await;
    let mut c = gw.trx().await;
    let (_, ru) = ask(&mut c, "Код 2 АЗЕ 11111111").await;
    assert!(ru.starts_with("РАЗРЕШЕНИЕ ВЫДАНО"), "{ru}");
    let (_, en) = ask(&mut c, "help").await;
    assert!(en.starts_with("For a permit send"), "{en}");
    let (_, az) = ask(&mut c, "2 AZE 22222222").await;
    assert!(
        az.starts_with("İCAZƏ VERİLDİ"),
        "the rules file's default: {az}"
    );
    let (_, family) = ask(&mut c, "пожалуйста 3 AZE 33333333 AA 7654321").await;
    assert!(family.starts_with("Код 3"), "{family}");
    assert!(
        line(&family, "AA 7654321").contains("РАЗРЕШЕНО"),
        "{family}"
    );
}
