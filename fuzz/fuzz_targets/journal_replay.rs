//! Journal replay of corrupted files: the input becomes a grants segment (and a blocklist
//! file, and a revocations file) in a scratch data directory, which
//! `icaze::store::journal::Journal::open` then replays.
//!
//! Input: a flags byte, the grants file's part length (u16 BE), the grants part, the
//! blocklist part. Flags say whether each file gets a valid header in front, whether its
//! part is raw bytes or a list of chunks (`ctl` < 0x80: a valid, checksummed record built
//! from the next body-length bytes; otherwise `ctl & 0x7F` raw bytes as they are), which
//! day the segment is for (today, yesterday, long ago), and whether a blocklist exists.
//! With the top flag bit, the blocklist part's second half is a `revocations.log` (a valid
//! header, then chunks whose valid records are revocations of today's permits).
//!
//! What the journal documents, checked: open never panics, it fails only with an error or
//! replays; a torn tail is cut off (the file ends where `Damage::TornTail` says); every
//! valid record written in chunk mode is replayed, in order, whatever corrupt bytes lie
//! between (and a copy of a valid record inside raw bytes may add one, never remove one);
//! a segment too old to matter is removed; and a second open finds no torn tail, removes
//! nothing and replays the same records.
#![no_main]

use chrono_tz::Asia::Baku;
use icaze::permit::document::Document;
use icaze::store::GrantRecord;
use icaze::store::journal::{BlockChange, Damage, Journal, RevocationRecord};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;

/// 2020-04-06 12:00 in Baku.
const NOW: i64 = 1_586_160_000;
const TODAY: i32 = 18_358;
const THREE_HOURS: u32 = 3 * 3600;
const GRANT_BODY: usize = 25;
const BLOCK_BODY: usize = 49;
const REVOKE_BODY: usize = 162;
const SERIES: [&[u8]; 4] = [b"AZE", b"AA", b"MYI", b"MOM"];

static SCRATCH: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("scratch folder")
    } else {
        tempfile::tempdir().expect("scratch folder")
    }
});

fn header(kind: u8, day: i32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(b"ICZJ");
    h[4] = 1;
    h[5] = kind;
    h[8..12].copy_from_slice(&day.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn frame(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    let start = out.len();
    out.push(tag);
    out.push(body.len() as u8);
    out.extend_from_slice(body);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// A valid document from fuzz octets: a known series and a number that fits it.
fn document(b: &[u8]) -> Document {
    let series = SERIES[usize::from(b[0] % 4)];
    let digits = if series == b"AZE" && b[1] & 1 == 0 {
        8
    } else {
        7
    };
    let n = u32::from_le_bytes([b[2], b[3], b[4], b[5]]) % 10u32.pow(digits);
    let text = format!("{n:0width$}", width = digits as usize);
    Document::new(series, text.as_bytes()).expect("a document that fits its series")
}

fn le_i64(b: &[u8]) -> i64 {
    i64::from_le_bytes(b[..8].try_into().expect("8 octets"))
}

/// Builds a file body from chunks; returns the bytes and the valid records written.
fn chunks<T>(
    mut part: &[u8],
    tag: u8,
    body_len: usize,
    build: impl Fn(&[u8]) -> (Vec<u8>, T),
) -> (Vec<u8>, Vec<T>) {
    let mut out = Vec::new();
    let mut records = Vec::new();
    while let Some((&ctl, rest)) = part.split_first() {
        if ctl < 0x80 {
            let Some(src) = rest.get(..body_len) else {
                out.extend_from_slice(rest);
                break;
            };
            let (body, record) = build(src);
            frame(&mut out, tag, &body);
            records.push(record);
            part = &rest[body_len..];
        } else {
            let n = usize::from(ctl & 0x7F).min(rest.len());
            out.extend_from_slice(&rest[..n]);
            part = &rest[n..];
        }
    }
    (out, records)
}

fn grant(src: &[u8]) -> (Vec<u8>, GrantRecord) {
    let g = GrantRecord {
        document: document(src),
        code: src[8],
        from: le_i64(&src[9..]),
        until: le_i64(&src[17..]),
        phone: icaze::permit::id::PhoneTag::NONE,
    };
    let mut body = g.document.packed().to_le_bytes().to_vec();
    body.push(g.code);
    body.extend_from_slice(&g.from.to_le_bytes());
    body.extend_from_slice(&g.until.to_le_bytes());
    (body, g)
}

fn block(src: &[u8]) -> (Vec<u8>, BlockChange) {
    let c = BlockChange {
        document: document(src),
        codes: std::array::from_fn(|i| le_i64(&src[8 + 8 * i..]) as u64),
        blocked: src[40] & 1 == 1,
        at: le_i64(&src[41..]),
    };
    let mut body = c.document.packed().to_le_bytes().to_vec();
    for w in c.codes {
        body.extend_from_slice(&w.to_le_bytes());
    }
    body.push(u8::from(c.blocked));
    body.extend_from_slice(&c.at.to_le_bytes());
    (body, c)
}

/// A revocation of a permit issued today (so replay keeps it), its reason ASCII letters.
fn revocation(src: &[u8]) -> (Vec<u8>, RevocationRecord) {
    let from = NOW - i64::from(src[9] % 12) * 3600 - i64::from(src[10]);
    let len = usize::from(src[20]) % 129;
    let reason: String = src[21..21 + len.min(src.len() - 21)]
        .iter()
        .map(|b| char::from(b'a' + b % 26))
        .collect();
    let r = RevocationRecord {
        grant: GrantRecord {
            document: document(src),
            code: src[8],
            from,
            until: from + i64::from(THREE_HOURS),
            phone: icaze::permit::id::PhoneTag::NONE,
        },
        at: le_i64(&src[12..]),
        reason,
    };
    let mut body = vec![0u8; REVOKE_BODY];
    body[..8].copy_from_slice(&r.grant.document.packed().to_le_bytes());
    body[8] = r.grant.code;
    body[9..17].copy_from_slice(&r.grant.from.to_le_bytes());
    body[17..25].copy_from_slice(&r.grant.until.to_le_bytes());
    body[25..33].copy_from_slice(&r.at.to_le_bytes());
    body[33] = r.reason.len() as u8;
    body[34..34 + r.reason.len()].copy_from_slice(r.reason.as_bytes());
    (body, r)
}

/// Whether `want` appears in `got` in order (other records may lie between).
fn subsequence<T: PartialEq>(want: &[T], got: &[T]) -> bool {
    let mut it = got.iter();
    want.iter().all(|w| it.any(|g| g == w))
}

fn segment_name(day: i32) -> String {
    let date = chrono::DateTime::from_timestamp(i64::from(day) * 86_400, 0)
        .expect("a day in range")
        .date_naive();
    format!("grants-{}.log", date.format("%Y-%m-%d"))
}

fuzz_target!(|data: &[u8]| {
    let [flags, hi, lo, rest @ ..] = data else {
        return;
    };
    let split = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
    let (grants_part, block_part) = rest.split_at(split);

    let dir = SCRATCH.path().join("data");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch data dir");

    let day = match (flags >> 4) & 3 {
        0 | 1 => TODAY,
        2 => TODAY - 1,
        _ => TODAY - 30,
    };
    let (mut grants_file, want_grants) = if flags & 2 != 0 {
        chunks(grants_part, 1, GRANT_BODY, grant)
    } else {
        (grants_part.to_vec(), Vec::new())
    };
    if flags & 1 != 0 {
        grants_file.splice(0..0, header(b'G', day));
    }
    let segment = dir.join(segment_name(day));
    std::fs::write(&segment, &grants_file).expect("write segment");

    let (block_part, revoke_part) = if flags & 0x80 != 0 {
        block_part.split_at(block_part.len() / 2)
    } else {
        (block_part, &[][..])
    };
    let mut want_revocations = Vec::new();
    if flags & 0x80 != 0 {
        let (bytes, records) = chunks(revoke_part, 3, REVOKE_BODY, revocation);
        want_revocations = records;
        let mut file = header(b'R', 0).to_vec();
        file.extend_from_slice(&bytes);
        std::fs::write(dir.join("revocations.log"), &file).expect("write revocations");
    }

    let mut want_blocks = Vec::new();
    let blocklist = dir.join("blocklist.log");
    if flags & 0x40 != 0 {
        let mut file = if flags & 8 != 0 {
            let (bytes, records) = chunks(block_part, 2, BLOCK_BODY, block);
            want_blocks = records;
            bytes
        } else {
            block_part.to_vec()
        };
        if flags & 4 != 0 {
            file.splice(0..0, header(b'B', 0));
        }
        std::fs::write(&blocklist, &file).expect("write blocklist");
    }

    let first = match Journal::open(&dir, Baku, NOW, THREE_HOURS) {
        Ok((journal, replayed)) => {
            drop(journal);
            replayed
        }
        Err(e) => {
            // Refusing to guess is allowed (a bad header, a future version); say why.
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let old = day == TODAY - 30;
    if old {
        assert_eq!(
            first.removed_segments,
            vec![segment.clone()],
            "old segment kept"
        );
        assert!(first.grants.is_empty());
    } else {
        assert!(first.removed_segments.is_empty());
        assert!(
            subsequence(&want_grants, &first.grants),
            "a valid grant was lost"
        );
    }
    assert!(
        subsequence(&want_blocks, &first.block_changes),
        "a block change was lost"
    );
    assert!(
        subsequence(&want_revocations, &first.revocations),
        "a revocation was lost"
    );
    for d in &first.damage {
        if let Damage::TornTail {
            path,
            offset,
            bytes,
        } = d
        {
            let len = std::fs::metadata(path).expect("repaired file exists").len();
            let expected = if *offset == 0 { 16 } else { *offset };
            assert_eq!(
                len,
                expected,
                "torn tail of {} not cut at {offset}",
                path.display()
            );
            // An empty file (a crash right after creating it) gets its header back and
            // counts as a torn tail of 0 bytes at 0.
            assert!(*bytes > 0 || *offset == 0);
        }
    }

    let (journal, second) = Journal::open(&dir, Baku, NOW, THREE_HOURS)
        .expect("a journal that opened once opens again");
    drop(journal);
    assert!(second.removed_segments.is_empty());
    assert!(
        !second
            .damage
            .iter()
            .any(|d| matches!(d, Damage::TornTail { .. })),
        "a torn tail survived its repair: {:?}",
        second.damage
    );
    assert_eq!(first.grants, second.grants, "a second replay differs");
    assert_eq!(
        first.block_changes, second.block_changes,
        "a second replay differs"
    );
    assert_eq!(
        first.revocations, second.revocations,
        "a second replay differs"
    );
});
