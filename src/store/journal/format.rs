//! The on-disk format: file names, headers, and the framing of records (see the module
//! documentation of [`super`] for the layout).

use super::error::JournalError;
use super::{BlockChange, BlockRecord, RevocationRecord};
use crate::permit::document::Document;
use crate::permit::id::PhoneTag;
use crate::store::GrantRecord;
use crate::store::outbox::{self, OwedReply};
use chrono::{Datelike, NaiveDate};
use std::path::Path;

/// First bytes of every journal file.
pub(super) const MAGIC: [u8; 4] = *b"ICZJ";
/// The format this build writes and reads.
pub(super) const VERSION: u8 = 1;
/// Bytes of a file header.
pub(super) const HEADER_LEN: usize = 16;
/// File kind byte of a grants segment.
pub(super) const KIND_GRANTS: u8 = b'G';
/// File kind byte of the blocklist file.
pub(super) const KIND_BLOCKLIST: u8 = b'B';
/// File kind byte of the revocations file.
pub(super) const KIND_REVOCATIONS: u8 = b'R';
/// File kind byte of the admin blocklist file.
pub(super) const KIND_BLOCKS: u8 = b'K';
/// Record tag of a grant.
const TAG_GRANT: u8 = 1;
/// Record tag of a blocklist change.
const TAG_BLOCK: u8 = 2;
/// Record tag of a revocation.
const TAG_REVOKE: u8 = 3;
/// Record tag of an admin blocklist entry.
const TAG_BLOCK_ENTRY: u8 = 4;
/// File kind byte of the outbox file.
pub(super) const KIND_OUTBOX: u8 = b'O';
/// Record tag of a reply owed (in `outbox.log`).
const TAG_OWED: u8 = 5;
/// Record tag of a reply settled (in `outbox.log`).
const TAG_SETTLED: u8 = 6;
/// Record tag of a grant with the tag of the phone that asked (what this build writes
/// whenever the phone is known; tag 1 records, from before phones were kept or without a
/// phone, are still read, as grants of no known phone).
const TAG_GRANT_PHONE: u8 = 7;
/// Tag, `u16` length and checksum around an outbox body.
const OUTBOX_OVERHEAD: usize = 3 + 4;
/// Bytes of the shortest outbox record (a settled one: an 8-byte id).
pub(super) const MIN_OUTBOX_FRAME: usize = 8 + OUTBOX_OVERHEAD;
/// The outbox file's name.
pub(super) const OUTBOX_FILE: &str = "outbox.log";
/// Body bytes of an admin blocklist entry: document, codes, blocked, at, until, reason.
const BLOCK_ENTRY_BODY: usize = 8 + 32 + 1 + 8 + 8 + 1 + REASON_BYTES;
/// Bytes of a revocation's reason on disk (UTF-8, cut at a character boundary).
pub const REASON_BYTES: usize = 128;
/// Body bytes of a revocation record: the grant, when, the reason's length and bytes.
const REVOKE_BODY: usize = GRANT_BODY + 8 + 1 + REASON_BYTES;
/// Body bytes of a grant record.
const GRANT_BODY: usize = 8 + 1 + 8 + 8;
/// Body bytes of a grant record with its phone's tag.
const GRANT_PHONE_BODY: usize = GRANT_BODY + 8;
/// Body bytes of a blocklist change record.
const BLOCK_BODY: usize = 8 + 32 + 1 + 8;
/// Tag, length and checksum around a body.
const FRAME_OVERHEAD: usize = 2 + 4;
/// Bytes of one grant record without a phone on disk (the shortest grant record).
pub(super) const GRANT_FRAME: usize = GRANT_BODY + FRAME_OVERHEAD;
/// Bytes of one grant record with its phone's tag on disk.
pub(super) const GRANT_PHONE_FRAME: usize = GRANT_PHONE_BODY + FRAME_OVERHEAD;
/// Bytes of one blocklist change record on disk.
pub(super) const BLOCK_FRAME: usize = BLOCK_BODY + FRAME_OVERHEAD;
/// Bytes of one revocation record on disk.
pub(super) const REVOKE_FRAME: usize = REVOKE_BODY + FRAME_OVERHEAD;
/// Bytes of one admin blocklist entry on disk.
pub(super) const BLOCK_ENTRY_FRAME: usize = BLOCK_ENTRY_BODY + FRAME_OVERHEAD;
/// The admin blocklist file's name.
pub(super) const BLOCKS_FILE: &str = "blocks.log";
/// The revocations file's name.
pub(super) const REVOCATIONS_FILE: &str = "revocations.log";
/// The blocklist file's name.
pub(super) const BLOCKLIST_FILE: &str = "blocklist.log";
/// Where a blocklist rewrite is built before it replaces [`BLOCKLIST_FILE`].
pub(super) const BLOCKLIST_TMP: &str = "blocklist.log.tmp";
/// The lock file's name.
pub(super) const LOCK_FILE: &str = "LOCK";
/// `NaiveDate::num_days_from_ce` of 1970-01-01, to turn a
/// [`Calendar`](crate::permit::clock::Calendar) day into a date.
const CE_DAYS_AT_EPOCH: i32 = 719_163;

/// The file name of a day's grants, e.g. `grants-2020-04-06.log`.
pub(super) fn segment_name(day: i32) -> String {
    // Calendar days come from chrono-valid instants, so they are always in range.
    let date = NaiveDate::from_num_days_from_ce_opt(day.saturating_add(CE_DAYS_AT_EPOCH))
        .unwrap_or_default();
    format!("grants-{}.log", date.format("%Y-%m-%d"))
}

/// The day of a segment file name, `None` for any other name.
pub(super) fn segment_day(name: &str) -> Option<i32> {
    let date = name.strip_prefix("grants-")?.strip_suffix(".log")?;
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .ok()?
        .num_days_from_ce()
        - CE_DAYS_AT_EPOCH;
    (segment_name(day) == name).then_some(day)
}

/// The header of a file of `kind` for `day`.
pub(super) fn header(kind: u8, day: i32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC);
    h[4] = VERSION;
    h[5] = kind;
    h[8..12].copy_from_slice(&day.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks a whole header against the one expected for this file.
pub(super) fn check_header(h: &[u8], path: &Path, kind: u8, day: i32) -> Result<(), JournalError> {
    let bad = |offset, reason| JournalError::BadHeader {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    if h[..4] != MAGIC {
        return Err(bad(0, "magic is not ICZJ"));
    }
    if h[4] != VERSION {
        return Err(JournalError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: h[4],
        });
    }
    if crc32fast::hash(&h[..12]).to_le_bytes() != h[12..16] {
        return Err(bad(12, "header checksum does not match"));
    }
    if h[5] != kind {
        return Err(bad(5, "file kind does not match its name"));
    }
    if h[8..12] != day.to_le_bytes() {
        return Err(bad(8, "day does not match the file name"));
    }
    Ok(())
}

/// Appends one framed grant to `out`: tag 7 with the phone's tag when it is known, else
/// the tag 1 record of a grant without one.
pub(super) fn encode_grant(out: &mut Vec<u8>, g: &GrantRecord) {
    let mut f = [0u8; GRANT_PHONE_FRAME];
    let body = if g.phone.is_known() {
        f[0] = TAG_GRANT_PHONE;
        f[27..35].copy_from_slice(&g.phone.0.to_le_bytes());
        GRANT_PHONE_BODY
    } else {
        f[0] = TAG_GRANT;
        GRANT_BODY
    };
    f[1] = body as u8;
    f[2..10].copy_from_slice(&g.document.packed().to_le_bytes());
    f[10] = g.code;
    f[11..19].copy_from_slice(&g.from.to_le_bytes());
    f[19..27].copy_from_slice(&g.until.to_le_bytes());
    let crc = crc32fast::hash(&f[..2 + body]);
    f[2 + body..2 + body + 4].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f[..body + FRAME_OVERHEAD]);
}

/// Appends one framed blocklist change to `out`.
pub(super) fn encode_block(out: &mut Vec<u8>, c: &BlockChange) {
    let mut f = [0u8; BLOCK_FRAME];
    f[0] = TAG_BLOCK;
    f[1] = BLOCK_BODY as u8;
    f[2..10].copy_from_slice(&c.document.packed().to_le_bytes());
    for (i, word) in c.codes.iter().enumerate() {
        f[10 + 8 * i..18 + 8 * i].copy_from_slice(&word.to_le_bytes());
    }
    f[42] = u8::from(c.blocked);
    f[43..51].copy_from_slice(&c.at.to_le_bytes());
    let crc = crc32fast::hash(&f[..2 + BLOCK_BODY]);
    f[2 + BLOCK_BODY..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f);
}

/// Appends one framed revocation to `out`; a reason longer than [`REASON_BYTES`] is cut at
/// the last character boundary that fits.
pub(super) fn encode_revocation(out: &mut Vec<u8>, r: &RevocationRecord) {
    let mut f = [0u8; REVOKE_FRAME];
    f[0] = TAG_REVOKE;
    f[1] = REVOKE_BODY as u8;
    f[2..10].copy_from_slice(&r.grant.document.packed().to_le_bytes());
    f[10] = r.grant.code;
    f[11..19].copy_from_slice(&r.grant.from.to_le_bytes());
    f[19..27].copy_from_slice(&r.grant.until.to_le_bytes());
    f[27..35].copy_from_slice(&r.at.to_le_bytes());
    let reason = cut_reason(&r.reason);
    f[35] = reason.len() as u8;
    f[36..36 + reason.len()].copy_from_slice(reason.as_bytes());
    let crc = crc32fast::hash(&f[..2 + REVOKE_BODY]);
    f[2 + REVOKE_BODY..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f);
}

/// Appends one framed admin blocklist entry to `out` (the reason cut like a revocation's).
pub(super) fn encode_block_entry(out: &mut Vec<u8>, b: &BlockRecord) {
    let mut f = [0u8; BLOCK_ENTRY_FRAME];
    f[0] = TAG_BLOCK_ENTRY;
    f[1] = BLOCK_ENTRY_BODY as u8;
    f[2..10].copy_from_slice(&b.document.packed().to_le_bytes());
    for (i, word) in b.codes.iter().enumerate() {
        f[10 + 8 * i..18 + 8 * i].copy_from_slice(&word.to_le_bytes());
    }
    f[42] = u8::from(b.blocked);
    f[43..51].copy_from_slice(&b.at.to_le_bytes());
    f[51..59].copy_from_slice(&b.until.unwrap_or(0).to_le_bytes());
    let reason = cut_reason(&b.reason);
    f[59] = reason.len() as u8;
    f[60..60 + reason.len()].copy_from_slice(reason.as_bytes());
    let crc = crc32fast::hash(&f[..2 + BLOCK_ENTRY_BODY]);
    f[2 + BLOCK_ENTRY_BODY..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f);
}

/// An admin blocklist entry frame at the start of `buf`, if whole and valid.
pub(super) fn decode_block_entry(buf: &[u8]) -> Option<BlockRecord> {
    let b = frame_body(buf, TAG_BLOCK_ENTRY, BLOCK_ENTRY_BODY)?;
    let blocked = match b[40] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let until = le_u64(&b[49..]) as i64;
    let len = usize::from(b[57]);
    Some(BlockRecord {
        document: Document::from_packed(le_u64(&b[0..]))?,
        codes: std::array::from_fn(|i| le_u64(&b[8 + 8 * i..])),
        blocked,
        at: le_u64(&b[41..]) as i64,
        until: (until != 0).then_some(until),
        reason: std::str::from_utf8(b.get(58..58 + len)?).ok()?.to_string(),
    })
}

/// A record of `outbox.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OutboxEntry {
    /// A reply owed from now on.
    Owed(OwedReply),
    /// The reply with this id is settled.
    Settled(u64),
}

fn frame_outbox(out: &mut Vec<u8>, tag: u8, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[tag, 0, 0]);
    body(out);
    let len = (out.len() - start - 3) as u16;
    out[start + 1..start + 3].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Appends one framed owed reply to `out`: tag 5, body length `u16`, the body of
/// [`crate::store::outbox::encode_body`], CRC32 of tag + length + body.
pub(super) fn encode_owed(out: &mut Vec<u8>, r: &OwedReply) {
    frame_outbox(out, TAG_OWED, |out| outbox::encode_body(out, r));
}

/// Appends one framed settlement of reply `id` to `out`: tag 6, length 8, the id `u64`,
/// CRC32.
pub(super) fn encode_settled(out: &mut Vec<u8>, id: u64) {
    frame_outbox(out, TAG_SETTLED, |out| {
        out.extend_from_slice(&id.to_le_bytes())
    });
}

/// The outbox record at the start of `buf` and its length on disk, if whole and valid.
pub(super) fn decode_outbox(buf: &[u8]) -> Option<(OutboxEntry, usize)> {
    let head = buf.get(..3)?;
    let len = usize::from(u16::from_le_bytes([head[1], head[2]]));
    let frame = buf.get(..len + OUTBOX_OVERHEAD)?;
    let (covered, crc) = frame.split_at(3 + len);
    if crc32fast::hash(covered).to_le_bytes() != crc {
        return None;
    }
    let body = &covered[3..];
    let entry = match head[0] {
        TAG_OWED => OutboxEntry::Owed(outbox::decode_body(body)?),
        TAG_SETTLED if len == 8 => OutboxEntry::Settled(le_u64(body)),
        _ => return None,
    };
    Some((entry, frame.len()))
}

/// `reason` cut to at most [`REASON_BYTES`] bytes at a character boundary.
pub fn cut_reason(reason: &str) -> &str {
    let mut end = reason.len().min(REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// The body of a whole, checksummed frame of `tag` at the start of `buf`.
fn frame_body(buf: &[u8], tag: u8, body_len: usize) -> Option<&[u8]> {
    let frame = buf.get(..body_len + FRAME_OVERHEAD)?;
    if frame[0] != tag || usize::from(frame[1]) != body_len {
        return None;
    }
    let (covered, crc) = frame.split_at(2 + body_len);
    (crc32fast::hash(covered).to_le_bytes() == crc).then(|| &covered[2..])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// A grant frame at the start of `buf` (either tag), if whole and valid, and its length.
pub(super) fn decode_grant_frame(buf: &[u8]) -> Option<(GrantRecord, usize)> {
    let (b, len, phone) = match buf.first()? {
        &TAG_GRANT_PHONE => {
            let b = frame_body(buf, TAG_GRANT_PHONE, GRANT_PHONE_BODY)?;
            (b, GRANT_PHONE_FRAME, PhoneTag(le_u64(&b[25..])))
        }
        _ => (
            frame_body(buf, TAG_GRANT, GRANT_BODY)?,
            GRANT_FRAME,
            PhoneTag::NONE,
        ),
    };
    let grant = GrantRecord {
        document: Document::from_packed(le_u64(&b[0..]))?,
        code: b[8],
        from: le_u64(&b[9..]) as i64,
        until: le_u64(&b[17..]) as i64,
        phone,
    };
    Some((grant, len))
}

/// A grant frame at the start of `buf`, if whole and valid.
#[cfg(test)]
pub(super) fn decode_grant(buf: &[u8]) -> Option<GrantRecord> {
    decode_grant_frame(buf).map(|(g, _)| g)
}

/// A blocklist change frame at the start of `buf`, if whole and valid.
pub(super) fn decode_block(buf: &[u8]) -> Option<BlockChange> {
    let b = frame_body(buf, TAG_BLOCK, BLOCK_BODY)?;
    let blocked = match b[40] {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(BlockChange {
        document: Document::from_packed(le_u64(&b[0..]))?,
        codes: std::array::from_fn(|i| le_u64(&b[8 + 8 * i..])),
        blocked,
        at: le_u64(&b[41..]) as i64,
    })
}

/// A revocation frame at the start of `buf`, if whole and valid.
pub(super) fn decode_revocation(buf: &[u8]) -> Option<RevocationRecord> {
    let b = frame_body(buf, TAG_REVOKE, REVOKE_BODY)?;
    let len = usize::from(b[33]);
    let reason = std::str::from_utf8(b.get(34..34 + len)?).ok()?.to_string();
    Some(RevocationRecord {
        grant: GrantRecord {
            document: Document::from_packed(le_u64(&b[0..]))?,
            code: b[8],
            from: le_u64(&b[9..]) as i64,
            until: le_u64(&b[17..]) as i64,
            phone: PhoneTag::NONE,
        },
        at: le_u64(&b[25..]) as i64,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{BAKU, morning};
    use super::*;
    use crate::permit::clock::Calendar;

    #[test]
    fn segment_names_round_trip() {
        let cal = Calendar::new(BAKU);
        let day = cal.moment(morning()).day;
        assert_eq!(segment_name(day), "grants-2020-04-06.log");
        assert_eq!(segment_day("grants-2020-04-06.log"), Some(day));
        assert_eq!(segment_day("grants-2020-4-6.log"), None);
        assert_eq!(segment_day("grants-2020-04-06.log.tmp"), None);
        assert_eq!(segment_day("blocklist.log"), None);
    }

    #[test]
    fn grants_with_and_without_a_phone_round_trip_side_by_side() {
        let old = GrantRecord {
            document: Document::new(b"AZE", b"11111111").unwrap(),
            code: 2,
            from: morning(),
            until: morning() + 3 * 3600,
            phone: PhoneTag::NONE,
        };
        let new = GrantRecord {
            phone: PhoneTag(0x1234_5678_9abc_def0),
            ..old
        };
        let mut buf = Vec::new();
        encode_grant(&mut buf, &old);
        assert_eq!(
            buf.len(),
            GRANT_FRAME,
            "a grant without a phone keeps the old record"
        );
        encode_grant(&mut buf, &new);
        assert_eq!(buf.len(), GRANT_FRAME + GRANT_PHONE_FRAME);
        assert_eq!(decode_grant_frame(&buf), Some((old, GRANT_FRAME)));
        assert_eq!(
            decode_grant_frame(&buf[GRANT_FRAME..]),
            Some((new, GRANT_PHONE_FRAME))
        );
        buf[GRANT_FRAME + 30] ^= 1;
        assert_eq!(
            decode_grant_frame(&buf[GRANT_FRAME..]),
            None,
            "the phone is checksummed"
        );
    }

    #[test]
    fn revocations_round_trip_and_long_reasons_are_cut() {
        let record = RevocationRecord {
            grant: GrantRecord {
                document: Document::new(b"AZE", b"11111111").unwrap(),
                code: 2,
                from: morning(),
                until: morning() + 3 * 3600,
                phone: PhoneTag::NONE,
            },
            at: morning() + 60,
            reason: "ə".repeat(100),
        };
        let mut buf = Vec::new();
        encode_revocation(&mut buf, &record);
        assert_eq!(buf.len(), REVOKE_FRAME);
        let back = decode_revocation(&buf).unwrap();
        assert_eq!(back.grant, record.grant);
        assert_eq!(back.reason, "ə".repeat(64), "cut at a character boundary");
        buf[40] ^= 1;
        assert!(decode_revocation(&buf).is_none(), "a flipped bit is caught");

        let entry = BlockRecord {
            document: record.grant.document,
            codes: [0b1000, 0, 0, 0],
            blocked: true,
            at: morning(),
            until: Some(morning() + 86_400),
            reason: "quarantine list".into(),
        };
        let mut buf = Vec::new();
        encode_block_entry(&mut buf, &entry);
        assert_eq!(buf.len(), BLOCK_ENTRY_FRAME);
        assert_eq!(decode_block_entry(&buf), Some(entry));
    }
}
