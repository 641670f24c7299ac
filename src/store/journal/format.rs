//! The on-disk format: file names, headers, and the framing of records (see the module
//! documentation of [`super`] for the layout).

use super::BlockChange;
use super::error::JournalError;
use crate::permit::document::Document;
use crate::store::GrantRecord;
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
/// Record tag of a grant.
const TAG_GRANT: u8 = 1;
/// Record tag of a blocklist change.
const TAG_BLOCK: u8 = 2;
/// Body bytes of a grant record.
const GRANT_BODY: usize = 8 + 1 + 8 + 8;
/// Body bytes of a blocklist change record.
const BLOCK_BODY: usize = 8 + 32 + 1 + 8;
/// Tag, length and checksum around a body.
const FRAME_OVERHEAD: usize = 2 + 4;
/// Bytes of one grant record on disk.
pub(super) const GRANT_FRAME: usize = GRANT_BODY + FRAME_OVERHEAD;
/// Bytes of one blocklist change record on disk.
pub(super) const BLOCK_FRAME: usize = BLOCK_BODY + FRAME_OVERHEAD;
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

/// Appends one framed grant to `out`.
pub(super) fn encode_grant(out: &mut Vec<u8>, g: &GrantRecord) {
    let mut f = [0u8; GRANT_FRAME];
    f[0] = TAG_GRANT;
    f[1] = GRANT_BODY as u8;
    f[2..10].copy_from_slice(&g.document.packed().to_le_bytes());
    f[10] = g.code;
    f[11..19].copy_from_slice(&g.from.to_le_bytes());
    f[19..27].copy_from_slice(&g.until.to_le_bytes());
    let crc = crc32fast::hash(&f[..2 + GRANT_BODY]);
    f[2 + GRANT_BODY..].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&f);
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

/// A grant frame at the start of `buf`, if whole and valid.
pub(super) fn decode_grant(buf: &[u8]) -> Option<GrantRecord> {
    let b = frame_body(buf, TAG_GRANT, GRANT_BODY)?;
    Some(GrantRecord {
        document: Document::from_packed(le_u64(&b[0..]))?,
        code: b[8],
        from: le_u64(&b[9..]) as i64,
        until: le_u64(&b[17..]) as i64,
    })
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
}
