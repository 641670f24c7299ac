//! Opening a journal: replay of what it holds, and repair of torn tails and headers.

use super::error::{JournalError, io_error};
use super::files::{
    Segment, first_kept_day, list_segments, lock_dir, remove_segments_before, sync_dir, sync_file,
};
use super::format::{
    BLOCK_ENTRY_FRAME, BLOCK_FRAME, BLOCKLIST_FILE, BLOCKLIST_TMP, BLOCKS_FILE, GRANT_FRAME,
    HEADER_LEN, KIND_BLOCKLIST, KIND_BLOCKS, KIND_GRANTS, KIND_REVOCATIONS, REVOCATIONS_FILE,
    REVOKE_FRAME, check_header, decode_block, decode_block_entry, decode_grant_frame,
    decode_revocation, encode_block_entry, encode_revocation, header,
};
use super::outbox::{self, OutboxLog};
use super::writer::Writer;
use super::{BlockNet, Counters, Damage, Inner, Journal, JournalOptions, Replayed};
use crate::permit::clock::Calendar;
use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use tokio::sync::mpsc;

impl Journal {
    /// Opens (or creates) the journal in `dir` with default [`JournalOptions`]. See
    /// [`Journal::open_with`].
    pub fn open(
        dir: impl AsRef<Path>,
        tz: Tz,
        now_unix: i64,
        longest_validity_secs: u32,
    ) -> Result<(Journal, Replayed), JournalError> {
        Self::open_with(
            dir,
            tz,
            now_unix,
            longest_validity_secs,
            JournalOptions::default(),
        )
    }

    /// Opens (or creates) the journal in `dir`, days counted in `tz`, and returns what it
    /// holds that can still matter at `now_unix`: the grants of every day from the one a
    /// permit issued `longest_validity_secs` ago falls on (and at least yesterday's), and the
    /// whole blocklist. Older segments are deleted; torn tails are truncated (see
    /// [`Damage`]). Blocking file I/O: call it at start, before serving, or from
    /// `spawn_blocking`.
    pub fn open_with(
        dir: impl AsRef<Path>,
        tz: Tz,
        now_unix: i64,
        longest_validity_secs: u32,
        options: JournalOptions,
    ) -> Result<(Journal, Replayed), JournalError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_error("creating directory", &dir))?;
        let lock = lock_dir(&dir)?;
        let calendar = Calendar::new(tz);
        let mut replayed = Replayed::default();

        let tmp = dir.join(BLOCKLIST_TMP);
        if tmp.exists() {
            // A rewrite that crashed before its rename: blocklist.log is still whole.
            fs::remove_file(&tmp).map_err(io_error("removing", &tmp))?;
        }

        let keep_from = first_kept_day(&calendar, now_unix, longest_validity_secs);
        replayed.removed_segments = remove_segments_before(&dir, keep_from)?;
        for (day, path) in list_segments(&dir)? {
            let grants = load_frames(
                &path,
                KIND_GRANTS,
                day,
                GRANT_FRAME,
                decode_grant_frame,
                &mut replayed.damage,
            )?;
            replayed.grants.extend(grants);
        }

        let block_path = dir.join(BLOCKLIST_FILE);
        if block_path.exists() {
            replayed.block_changes = load_file(
                &block_path,
                KIND_BLOCKLIST,
                0,
                BLOCK_FRAME,
                decode_block,
                &mut replayed.damage,
            )?;
        }
        let (blocklist, created) = Segment::open(block_path.clone(), KIND_BLOCKLIST, 0)
            .map_err(io_error("opening", &block_path))?;
        if created {
            sync_file(&blocklist.file, &blocklist.path)?;
            sync_dir(&dir)?;
        }
        let revoke_path = dir.join(REVOCATIONS_FILE);
        let blocks_path = dir.join(BLOCKS_FILE);
        for path in [&revoke_path, &blocks_path] {
            // A rewrite that crashed before its rename: the file itself is still whole.
            let tmp = path.with_extension("log.tmp");
            if tmp.exists() {
                fs::remove_file(&tmp).map_err(io_error("removing", &tmp))?;
            }
        }
        if revoke_path.exists() {
            let all = load_file(
                &revoke_path,
                KIND_REVOCATIONS,
                0,
                REVOKE_FRAME,
                decode_revocation,
                &mut replayed.damage,
            )?;
            // A revocation matters while its grant's segment is kept.
            let (kept, gone): (Vec<_>, Vec<_>) = all
                .into_iter()
                .partition(|r| calendar.moment(r.grant.from).day >= keep_from);
            if !gone.is_empty() {
                let mut buf = header(KIND_REVOCATIONS, 0).to_vec();
                for r in &kept {
                    encode_revocation(&mut buf, r);
                }
                rewrite(&dir, &revoke_path, &buf)?;
            }
            replayed.revocations = kept;
        }
        let (revocations, created) = Segment::open(revoke_path.clone(), KIND_REVOCATIONS, 0)
            .map_err(io_error("opening", &revoke_path))?;
        if created {
            sync_file(&revocations.file, &revocations.path)?;
            sync_dir(&dir)?;
        }
        if blocks_path.exists() {
            let all = load_file(
                &blocks_path,
                KIND_BLOCKS,
                0,
                BLOCK_ENTRY_FRAME,
                decode_block_entry,
                &mut replayed.damage,
            )?;
            // The net state: each document's last entry, if it still blocks.
            let mut last = BTreeMap::new();
            for b in &all {
                last.insert(b.document, b.clone());
            }
            let kept: Vec<_> = last
                .into_values()
                .filter(|b| b.blocked && b.until.is_none_or(|u| u > now_unix))
                .collect();
            if kept.len() < all.len() {
                let mut buf = header(KIND_BLOCKS, 0).to_vec();
                for b in &kept {
                    encode_block_entry(&mut buf, b);
                }
                rewrite(&dir, &blocks_path, &buf)?;
            }
            replayed.blocks = kept;
        }
        let (blocks, created) = Segment::open(blocks_path.clone(), KIND_BLOCKS, 0)
            .map_err(io_error("opening", &blocks_path))?;
        if created {
            sync_file(&blocks.file, &blocks.path)?;
            sync_dir(&dir)?;
        }
        let mut net = BlockNet::default();
        for change in &replayed.block_changes {
            net.apply(change);
        }
        let settled = outbox::Settled::default();
        let (outbox, owed) = OutboxLog::open(&dir, settled.clone(), &mut replayed.damage)?;
        replayed.owed = owed.len();

        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let longest = Arc::new(AtomicU32::new(longest_validity_secs));
        let counters = Arc::new(Counters::default());
        let writer = Writer {
            dir: dir.clone(),
            calendar,
            longest_validity_secs: longest.clone(),
            counters: counters.clone(),
            segments: BTreeMap::new(),
            blocklist,
            revocations,
            blocks,
            outbox,
            outbox_unsynced: false,
            block_records: replayed.block_changes.len(),
            net,
            needs_dir_sync: false,
            failed: None,
            _lock: lock,
            day_bufs: Vec::new(),
            block_buf: Vec::new(),
            revoke_buf: Vec::new(),
            entry_buf: Vec::new(),
            pending_blocks: Vec::new(),
            waiters: Vec::new(),
            syncers: Default::default(),
            rewrite_threshold: options.blocklist_rewrite_records,
            faults: options.faults.clone(),
        };
        let batch_limit = options.queue_depth.max(1);
        let round_every = options.round_every;
        let handle = std::thread::Builder::new()
            .name("icaze-journal".into())
            .spawn(move || writer.run(rx, batch_limit, round_every))
            .map_err(io_error("starting the writer thread for", &dir))?;
        let journal = Journal {
            inner: Arc::new(Inner {
                dir,
                tx: Some(tx),
                writer: Some(handle),
                longest_validity_secs: longest,
                counters,
                settled,
                owed_at_open: std::sync::Mutex::new(owed),
            }),
        };
        Ok((journal, replayed))
    }
}

/// Atomically replaces `path` with `bytes`: a temp file beside it, fsynced, renamed over
/// it, the directory fsynced (used at open to drop records that no longer matter).
fn rewrite(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), JournalError> {
    let tmp = path.with_extension("log.tmp");
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .map_err(io_error("writing", &tmp));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(io_error("renaming over", path))?;
    sync_dir(dir)
}

/// The records of one file's bytes and where they are damaged.
pub(super) struct Scanned<T> {
    pub(super) records: Vec<T>,
    /// `(offset, bytes)` of bad stretches followed by good records.
    pub(super) skipped: Vec<(usize, usize)>,
    /// Where a tail without any good record starts.
    pub(super) tail: Option<usize>,
}

/// Reads fixed-size frames from `HEADER_LEN` to the end of `data`, resyncing after bad bytes
/// on the next offset where a whole valid frame starts (a CRC32 match by chance is a one in
/// four billion event per offset, and the tag, length and document must fit too).
#[cfg(test)]
pub(super) fn scan<T>(data: &[u8], frame_len: usize, decode: fn(&[u8]) -> Option<T>) -> Scanned<T> {
    scan_frames(data, frame_len, |b| decode(b).map(|r| (r, frame_len)))
}

/// [`scan`] for frames of any length (the outbox's): `decode` gives a record and its length
/// on disk; `min_frame` is the shortest a frame can be.
pub(super) fn scan_frames<T>(
    data: &[u8],
    min_frame: usize,
    decode: impl Fn(&[u8]) -> Option<(T, usize)>,
) -> Scanned<T> {
    let mut out = Scanned {
        records: Vec::with_capacity(data.len().saturating_sub(HEADER_LEN) / min_frame),
        skipped: Vec::new(),
        tail: None,
    };
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        if let Some((record, len)) = decode(&data[pos..]) {
            out.records.push(record);
            pos += len;
            continue;
        }
        let resume = (pos + 1..data.len().saturating_sub(min_frame - 1))
            .find(|&p| decode(&data[p..]).is_some());
        match resume {
            Some(next) => {
                out.skipped.push((pos, next - pos));
                pos = next;
            }
            None => {
                out.tail = Some(pos);
                break;
            }
        }
    }
    out
}

/// Reads one journal file at open, repairs a torn tail or a torn header, and returns its
/// records.
pub(super) fn load_file<T>(
    path: &Path,
    kind: u8,
    day: i32,
    frame_len: usize,
    decode: fn(&[u8]) -> Option<T>,
    damage: &mut Vec<Damage>,
) -> Result<Vec<T>, JournalError> {
    load_frames(
        path,
        kind,
        day,
        frame_len,
        |b| decode(b).map(|r| (r, frame_len)),
        damage,
    )
}

/// [`load_file`] for frames of any length (see [`scan_frames`]).
pub(super) fn load_frames<T>(
    path: &Path,
    kind: u8,
    day: i32,
    min_frame: usize,
    decode: impl Fn(&[u8]) -> Option<(T, usize)>,
    damage: &mut Vec<Damage>,
) -> Result<Vec<T>, JournalError> {
    let data = fs::read(path).map_err(io_error("reading", path))?;
    let expected = header(kind, day);
    if data.len() < HEADER_LEN {
        // A crash while the file was being created: nothing acknowledged can be in it.
        if data[..] != expected[..data.len()] && data.iter().any(|&b| b != 0) {
            return Err(JournalError::BadHeader {
                path: path.to_path_buf(),
                offset: 0,
                reason: "shorter than a header and not a torn one",
            });
        }
        tracing::warn!(
            file = %path.display(),
            offset = 0,
            bytes = data.len(),
            "journal: file ends inside its header (crash while creating it); header rewritten"
        );
        let mut file = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io_error("repairing", path))?;
        file.write_all(&expected)
            .map_err(io_error("repairing", path))?;
        sync_file(&file, path)?;
        damage.push(Damage::TornTail {
            path: path.to_path_buf(),
            offset: 0,
            bytes: data.len() as u64,
        });
        return Ok(Vec::new());
    }
    check_header(&data[..HEADER_LEN], path, kind, day)?;
    let scanned = scan_frames(&data, min_frame, decode);
    for &(offset, bytes) in &scanned.skipped {
        tracing::warn!(
            file = %path.display(),
            offset,
            bytes,
            resumed_at = offset + bytes,
            "journal: corrupt bytes in the middle of the file skipped, the records after \
             them were read; the file is left as it is for inspection"
        );
        damage.push(Damage::Skipped {
            path: path.to_path_buf(),
            offset: offset as u64,
            bytes: bytes as u64,
        });
    }
    if let Some(offset) = scanned.tail {
        let bytes = data.len() - offset;
        tracing::warn!(
            file = %path.display(),
            offset,
            bytes,
            kept_records = scanned.records.len(),
            "journal: torn or corrupt tail truncated (a partial or bad record, e.g. after a \
             crash mid-write); every record before it is kept"
        );
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_error("truncating", path))?;
        file.set_len(offset as u64)
            .map_err(io_error("truncating", path))?;
        sync_file(&file, path)?;
        damage.push(Damage::TornTail {
            path: path.to_path_buf(),
            offset: offset as u64,
            bytes: bytes as u64,
        });
    }
    Ok(scanned.records)
}

#[cfg(test)]
mod tests {
    use super::super::JournalError;
    use super::super::format::{VERSION, encode_grant};
    use super::super::tests::{BAKU, THREE_HOURS, append_each, grant, morning, open, today_file};
    use super::*;
    use std::fs::OpenOptions;

    #[tokio::test]
    async fn torn_tail_is_truncated_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..10).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            append_each(&journal, &grants).await;
        }
        let file = today_file(dir.path());
        let full = fs::metadata(&file).unwrap().len();
        let cut = full - 7;
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let good = (HEADER_LEN + 9 * GRANT_FRAME) as u64;
        let (journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants[..9]);
        assert_eq!(
            replayed.damage,
            vec![Damage::TornTail {
                path: file.clone(),
                offset: good,
                bytes: cut - good,
            }]
        );
        assert_eq!(fs::metadata(&file).unwrap().len(), good);

        journal.append(&grants[9..]).await.unwrap();
        drop(journal);
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants);
        assert!(replayed.damage.is_empty());
    }

    #[tokio::test]
    async fn garbage_tail_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..5).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            journal.append(&grants).await.unwrap();
        }
        let file = today_file(dir.path());
        let good = fs::metadata(&file).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&[0xde, 0xad, 0xbe, 0xef].repeat(25)).unwrap();
        f.write_all(&[0; 4096]).unwrap();
        drop(f);

        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants);
        assert!(matches!(
            replayed.damage[..],
            [Damage::TornTail { offset, bytes: 4196, .. }] if offset == good
        ));
        assert_eq!(fs::metadata(&file).unwrap().len(), good);
    }

    #[tokio::test]
    async fn flipped_byte_in_last_record_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..5).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            journal.append(&grants).await.unwrap();
        }
        let file = today_file(dir.path());
        let mut bytes = fs::read(&file).unwrap();
        let last = HEADER_LEN + 4 * GRANT_FRAME;
        bytes[last + 12] ^= 0x01; // a bit of `from`
        fs::write(&file, &bytes).unwrap();

        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants[..4]);
        assert_eq!(
            replayed.damage,
            vec![Damage::TornTail {
                path: file.clone(),
                offset: last as u64,
                bytes: GRANT_FRAME as u64,
            }]
        );
    }

    #[tokio::test]
    async fn corruption_in_the_middle_keeps_the_records_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..10).map(|n| grant(n, morning())).collect();
        {
            let (journal, _) = open(dir.path(), morning());
            journal.append(&grants).await.unwrap();
        }
        let file = today_file(dir.path());
        let mut bytes = fs::read(&file).unwrap();
        let fifth = HEADER_LEN + 4 * GRANT_FRAME;
        bytes[fifth + 3] ^= 0xff;
        bytes[fifth + GRANT_FRAME + 20] ^= 0x10; // and the sixth
        fs::write(&file, &bytes).unwrap();

        let (journal, replayed) = open(dir.path(), morning());
        let expected: Vec<_> = grants[..4].iter().chain(&grants[6..]).copied().collect();
        assert_eq!(replayed.grants, expected);
        assert_eq!(
            replayed.damage,
            vec![Damage::Skipped {
                path: file.clone(),
                offset: fifth as u64,
                bytes: 2 * GRANT_FRAME as u64,
            }]
        );
        // Left in place for inspection; appends go after it and are read back.
        assert_eq!(fs::read(&file).unwrap(), bytes);
        journal.append(&[grant(99, morning())]).await.unwrap();
        drop(journal);
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants.len(), 9);
        assert_eq!(replayed.grants[8], grant(99, morning()));
    }

    #[tokio::test]
    async fn crash_without_clean_shutdown_keeps_acknowledged_grants() {
        let dir = tempfile::tempdir().unwrap();
        let grants: Vec<_> = (0..50).map(|n| grant(n, morning())).collect();
        let (journal, _) = open(dir.path(), morning());
        append_each(&journal, &grants).await;
        // The crash hits while the next round is half written: a partial record.
        let file = today_file(dir.path());
        let mut torn = Vec::new();
        encode_grant(&mut torn, &grant(777, morning()));
        let mut f = OpenOptions::new().append(true).open(&file).unwrap();
        f.write_all(&torn[..GRANT_FRAME / 2]).unwrap();
        drop(f);
        drop(journal); // no close()

        let (journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, grants);
        assert_eq!(replayed.damage.len(), 1);
        journal.append(&[grant(51, morning())]).await.unwrap();
    }

    #[tokio::test]
    async fn torn_header_is_repaired_and_foreign_files_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = today_file(dir.path());
        fs::write(
            &file,
            &header(KIND_GRANTS, Calendar::new(BAKU).moment(morning()).day)[..5],
        )
        .unwrap();
        {
            let (journal, replayed) = open(dir.path(), morning());
            assert!(replayed.grants.is_empty());
            assert_eq!(replayed.damage.len(), 1);
            journal.append(&[grant(1, morning())]).await.unwrap();
        }
        let (_journal, replayed) = open(dir.path(), morning());
        assert_eq!(replayed.grants, vec![grant(1, morning())]);
        drop(_journal);

        fs::write(&file, b"not a journal, but someone's notes").unwrap();
        let err = Journal::open(dir.path(), BAKU, morning(), THREE_HOURS).unwrap_err();
        assert!(matches!(&err, JournalError::BadHeader { path, .. } if *path == file));
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("grants-2020-04-06.log"));

        let mut future = header(KIND_GRANTS, 0);
        future[4] = VERSION + 1;
        fs::write(&file, future).unwrap();
        let err = Journal::open(dir.path(), BAKU, morning(), THREE_HOURS).unwrap_err();
        assert!(matches!(
            err,
            JournalError::UnsupportedVersion { found: 2, .. }
        ));
    }

    proptest::proptest! {
        /// Cutting a file anywhere keeps exactly the whole records before the cut.
        #[test]
        fn any_cut_keeps_the_records_before_it(n in 1usize..40, cut in 0usize..2000) {
            let grants: Vec<_> = (0..n as u64).map(|i| grant(i, 1_586_152_800 + i as i64)).collect();
            let mut data = header(KIND_GRANTS, 0).to_vec();
            for g in &grants {
                encode_grant(&mut data, g);
            }
            let cut = HEADER_LEN + cut % (data.len() - HEADER_LEN + 1);
            let scanned = scan(&data[..cut], GRANT_FRAME, super::super::format::decode_grant);
            let whole = (cut - HEADER_LEN) / GRANT_FRAME;
            proptest::prop_assert_eq!(&scanned.records[..], &grants[..whole]);
            proptest::prop_assert!(scanned.skipped.is_empty());
            let torn = !(cut - HEADER_LEN).is_multiple_of(GRANT_FRAME);
            proptest::prop_assert_eq!(scanned.tail, torn.then_some(HEADER_LEN + whole * GRANT_FRAME));
        }

        /// A damaged byte loses only the record it is in.
        #[test]
        fn a_damaged_byte_loses_only_its_record(
            n in 1usize..40,
            at in 0usize..10_000,
            xor in 1u8..=255,
        ) {
            let grants: Vec<_> = (0..n as u64).map(|i| grant(i, 1_586_152_800 + i as i64)).collect();
            let mut data = header(KIND_GRANTS, 0).to_vec();
            for g in &grants {
                encode_grant(&mut data, g);
            }
            let at = HEADER_LEN + at % (data.len() - HEADER_LEN);
            data[at] ^= xor;
            let hit = (at - HEADER_LEN) / GRANT_FRAME;
            let scanned = scan(&data, GRANT_FRAME, super::super::format::decode_grant);
            let mut expected = grants.clone();
            expected.remove(hit);
            proptest::prop_assert_eq!(scanned.records, expected);
            let start = HEADER_LEN + hit * GRANT_FRAME;
            if hit + 1 == n {
                proptest::prop_assert_eq!(scanned.tail, Some(start));
            } else {
                proptest::prop_assert_eq!(scanned.skipped, vec![(start, GRANT_FRAME)]);
            }
        }
    }
}
