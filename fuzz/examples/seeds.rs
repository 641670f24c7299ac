//! Writes the seed corpora, `corpus/TARGET/seed-*`, from the library's own encoders and the
//! journal API (run from `fuzz/`: `cargo run --example seeds`). The seeds are committed;
//! rerun this only when a format changes.

use bytes::{Bytes, BytesMut};
use chrono_tz::Asia::Baku;
use icaze::permit::document::Document;
use icaze::smpp::codec::{self, Address, MtPart};
use icaze::smpp::session::BindKind;
use icaze::smpp::status::Status;
use icaze::store::GrantRecord;
use icaze::store::journal::{ALL_CODES, BlockChange, Journal};
use rusmpp::{CommandId, Pdu};
use std::path::Path;

const NOW: i64 = 1_586_160_000; // 2020-04-06 12:00 in Baku

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus folder");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed");
}

fn wire(seq: u32, pdu: &Pdu) -> Vec<u8> {
    let mut b = BytesMut::new();
    codec::encode(&mut b, seq, Status::ESME_ROK, pdu);
    b.to_vec()
}

fn mo(text: &[u8], data_coding: u8, udh: bool) -> MtPart {
    MtPart {
        source: Address::new(1, 1, "994501234567").expect("address"),
        destination: Address::new(0, 0, "8103").expect("address"),
        data_coding,
        udh,
        short_message: Bytes::copy_from_slice(text),
    }
}

fn ucs2(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

fn pdus() -> Vec<(&'static str, Vec<u8>)> {
    let bind = codec::bind_request(BindKind::Transceiver, "demo", "demo", "", 0x34).expect("bind");
    let mut resp = BytesMut::new();
    codec::encode_message_id_resp(
        &mut resp,
        CommandId::SubmitSmResp,
        2,
        Status::ESME_ROK,
        "1a2b",
    );
    let mut udh_part = vec![0x05, 0x00, 0x03, 0x2A, 0x02, 0x01];
    udh_part.extend(ucs2("2 AZE 1111"));
    vec![
        ("bind-transceiver", wire(1, &bind)),
        (
            "submit-sm-gsm",
            wire(2, &mo(b"2 AZE 11111111", 0, false).submit_sm()),
        ),
        (
            "submit-sm-ucs2",
            wire(3, &mo(&ucs2("2 MYİ1234567"), 8, false).submit_sm()),
        ),
        (
            "deliver-sm-udh",
            wire(4, &mo(&udh_part, 8, true).deliver_sm()),
        ),
        ("submit-sm-resp", resp.to_vec()),
        ("enquire-link", wire(5, &Pdu::EnquireLink)),
        ("unbind", wire(6, &Pdu::Unbind)),
        ("generic-nack", wire(7, &Pdu::GenericNack)),
    ]
}

fn main() {
    let pdus = pdus();
    let mut stream = Vec::new();
    for (name, bytes) in &pdus {
        write("pdu_decode", name, &[[0u8].as_slice(), bytes].concat());
        stream.extend_from_slice(bytes);
    }
    write(
        "pdu_decode",
        "stream",
        &[[0u8].as_slice(), &stream].concat(),
    );
    // A submit_sm whose body is cut short inside a well-framed PDU, then a good one.
    let good = &pdus[1].1;
    let mut bad = good[..good.len() - 10].to_vec();
    let len = bad.len() as u32;
    bad[..4].copy_from_slice(&len.to_be_bytes());
    write(
        "pdu_decode",
        "truncated-body",
        &[[0u8].as_slice(), &bad, good].concat(),
    );
    // Framed mode: (command_id, body length, body) for each PDU.
    let mut framed = vec![1u8];
    for (_, bytes) in &pdus {
        framed.extend_from_slice(&bytes[4..8]);
        framed.extend_from_slice(&((bytes.len() - 16) as u16).to_be_bytes());
        framed.extend_from_slice(&bytes[16..]);
    }
    write("pdu_decode", "framed", &framed);

    // The session and text targets take structured input: a few octet strings to start.
    for (i, (_, bytes)) in pdus.iter().enumerate().take(4) {
        write("smpp_session", &format!("pdu-{i}"), bytes);
        write("smpp_gateway", &format!("pdu-{i}"), bytes);
        write("mo_text", &format!("pdu-{i}"), bytes);
    }
    write("mo_text", "ucs2", &ucs2("2 AZE 11111111 ə ş ğ"));

    for (i, text) in [
        "2 AZE 11111111",
        "1 AA1234567",
        "2 MYİ1234567",
        "2aze11111111",
        "2 aze 1111 1111",
        "2 АЗЕ 11111111",
        "3 DYI1234567 10-AA-123",
        "2 mom 1234567",
        "4 AZE 11111111",
        "2 XYZ 123",
        "2 AZE 111111111",
    ]
    .iter()
    .enumerate()
    {
        write("permit_parse", &format!("text-{i}"), text.as_bytes());
    }

    let config = std::fs::read("../config/icaze.toml").expect("config/icaze.toml");
    let rules = std::fs::read("../config/rules.toml").expect("config/rules.toml");
    write(
        "config_load",
        "shipped",
        &[config.as_slice(), b"\0", &rules].concat(),
    );
    write("config_load", "config-only", &config);

    // A real journal: grants and blocklist changes through the journal API.
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (journal, _) = Journal::open(dir.path(), Baku, NOW, 3 * 3600).expect("journal");
        for (n, doc) in ["AZE11111111", "AA1234567", "MYI1234567", "MOM7654321"]
            .iter()
            .enumerate()
        {
            let document = Document::parse_canonical(doc).expect("document");
            let from = NOW - 3600 + n as i64 * 60;
            let grant = GrantRecord {
                document,
                code: (n % 3) as u8 + 1,
                from,
                until: from + 3 * 3600,
                // Both grant records: without a phone (tag 1) and with one (tag 7).
                phone: icaze::permit::id::PhoneTag(n as u64 % 2 * 0xfeed),
            };
            journal.append(&[grant]).await.expect("append");
        }
        let document = Document::parse_canonical("AZE22222222").expect("document");
        let change = BlockChange {
            document,
            codes: ALL_CODES,
            blocked: true,
            at: NOW - 60,
        };
        journal.append_block_change(change).await.expect("block");
        journal.close().await;
    });
    let grants = std::fs::read(dir.path().join("grants-2020-04-06.log")).expect("segment");
    let blocks = std::fs::read(dir.path().join("blocklist.log")).expect("blocklist");
    let seed = |flags: u8, g: &[u8], b: &[u8]| {
        [&[flags][..], &(g.len() as u16).to_be_bytes(), g, b].concat()
    };
    write("journal_replay", "real", &seed(0x40, &grants, &blocks));
    write(
        "journal_replay",
        "torn-tail",
        &seed(0x40, &grants[..grants.len() - 7], &blocks),
    );
    let mut flipped = grants.clone();
    flipped[16 + 31 + 5] ^= 0x10;
    write("journal_replay", "flipped-bit", &seed(0x00, &flipped, &[]));
    // Chunk mode: records built by the target from these bodies, one raw stretch between.
    let mut chunks = Vec::new();
    for body in grants[16..].chunks(31).take(2) {
        chunks.push(0u8);
        chunks.extend_from_slice(&body[2..27]);
    }
    chunks.extend_from_slice(&[0x83, 0xde, 0xad, 0x00]);
    chunks.push(0);
    chunks.extend_from_slice(&grants[16 + 31 * 2 + 2..16 + 31 * 2 + 27]);
    write("journal_replay", "chunks", &seed(0x03, &chunks, &[]));
}
