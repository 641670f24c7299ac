//! Tests of the whole journal, and the helpers the tests of its parts share.

use super::format::{GRANT_FRAME, HEADER_LEN};
use super::*;
use chrono::DateTime;
use chrono_tz::Tz;
use std::fs;

pub(super) const BAKU: Tz = chrono_tz::Asia::Baku;
pub(super) const THREE_HOURS: u32 = 3 * 3600;

pub(super) fn unix(s: &str) -> i64 {
    DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

pub(super) fn doc(n: u64) -> Document {
    Document::new(b"AZE", format!("{n:08}").as_bytes()).unwrap()
}

pub(super) fn grant(n: u64, from: i64) -> GrantRecord {
    GrantRecord {
        document: doc(n),
        code: (n % 3) as u8 + 1,
        from,
        until: from + i64::from(THREE_HOURS),
        phone: crate::permit::id::PhoneTag::NONE,
    }
}

/// 10:00 in Baku on 2020-04-06.
pub(super) fn morning() -> i64 {
    unix("2020-04-06T10:00:00+04:00")
}

pub(super) fn open(dir: &Path, now: i64) -> (Journal, Replayed) {
    Journal::open(dir, BAKU, now, THREE_HOURS).unwrap()
}

pub(super) fn today_file(dir: &Path) -> PathBuf {
    dir.join("grants-2020-04-06.log")
}

pub(super) async fn append_each(journal: &Journal, grants: &[GrantRecord]) {
    for g in grants {
        journal.append(std::slice::from_ref(g)).await.unwrap();
    }
}

/// The blocked state per (document, code), applying changes one by one.
pub(super) fn model(changes: &[BlockChange]) -> BTreeMap<(Document, u8), bool> {
    let mut state = BTreeMap::new();
    for c in changes {
        for code in 0..=255u8 {
            if c.codes[usize::from(code / 64)] & (1 << (code % 64)) != 0 {
                state.insert((c.document, code), c.blocked);
            }
        }
    }
    state
}

pub(super) fn change(n: u64, codes: &[u8], blocked: bool, at: i64) -> BlockChange {
    let mut set = [0u64; 4];
    for &c in codes {
        set[usize::from(c / 64)] |= 1 << (c % 64);
    }
    BlockChange {
        document: doc(n),
        codes: if codes.is_empty() { ALL_CODES } else { set },
        blocked,
        at,
    }
}

#[test]
fn journal_is_cheap_to_share() {
    fn shared<T: Send + Sync + Clone + 'static>() {}
    fn sendable<T: Send + 'static>(_: &T) {}
    shared::<Journal>();
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), morning());
    let future = journal.append(&[grant(1, morning())]);
    sendable(&future);
}

#[tokio::test]
async fn append_and_reopen_replays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (journal, replayed) = open(&data, morning());
    assert!(replayed.grants.is_empty() && replayed.damage.is_empty());
    let grants: Vec<_> = (0..100).map(|n| grant(n, morning() + n as i64)).collect();
    journal.append(&grants[..40]).await.unwrap();
    append_each(&journal, &grants[40..]).await;
    journal.append(&[]).await.unwrap();
    assert_eq!(journal.stats().grants, 100);
    journal.close().await;

    let (_journal, replayed) = open(&data, morning() + 60);
    assert_eq!(replayed.grants, grants);
    assert!(replayed.damage.is_empty());
    let len = fs::metadata(today_file(&data)).unwrap().len();
    assert_eq!(len, (HEADER_LEN + 100 * GRANT_FRAME) as u64);
}

#[tokio::test]
async fn grants_keep_their_phone_beside_old_records_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), morning());
    let old = grant(1, morning());
    let with_phone = GrantRecord {
        phone: crate::permit::id::PhoneTag(0xabcdef),
        ..grant(2, morning() + 1)
    };
    journal.append(&[old, with_phone]).await.unwrap();
    journal.close().await;
    let (_journal, replayed) = open(dir.path(), morning() + 60);
    assert_eq!(replayed.grants, vec![old, with_phone]);
    assert!(replayed.damage.is_empty(), "{:?}", replayed.damage);
}

/// Appends arriving one every 5 ms for 200 ms: with a round at most every 50 ms they share
/// about four rounds (each written and synced once), not forty; each is still durable
/// before its append returns, and none waits much past a round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_arriving_within_round_every_share_one_round() {
    let dir = tempfile::tempdir().unwrap();
    let options = JournalOptions {
        round_every: std::time::Duration::from_millis(50),
        ..JournalOptions::default()
    };
    let (journal, _) =
        Journal::open_with(dir.path(), BAKU, morning(), THREE_HOURS, options).unwrap();
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for n in 0..40u64 {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let asked = std::time::Instant::now();
            journal.append(&[grant(n + 1, morning())]).await.unwrap();
            asked.elapsed()
        }));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut longest = std::time::Duration::ZERO;
    for t in tasks {
        longest = longest.max(t.await.unwrap());
    }
    let spread = started.elapsed();
    let stats = journal.stats();
    assert_eq!(stats.grants, 40);
    // A round starts at most every 50 ms over the ~200 ms the appends arrived in.
    let most = spread.as_millis() as u64 / 50 + 1;
    assert!(
        stats.commits <= most,
        "{} rounds in {spread:?}: {stats:?}",
        stats.commits
    );
    assert!(stats.commits >= 2, "{stats:?}");
    assert!(
        longest < std::time::Duration::from_secs(2),
        "waited {longest:?}"
    );
    drop(journal);
    let (_journal, replayed) = open(dir.path(), morning());
    assert_eq!(replayed.grants.len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_share_commits() {
    const TASKS: u64 = 8;
    const EACH: u64 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), morning());
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let journal = journal.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let n = t * 1_000_000 + i;
                    journal
                        .append(&[grant(n, morning() + i as i64)])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = journal.stats();
    assert_eq!(stats.grants, TASKS * EACH);
    assert!(
        stats.commits < TASKS * EACH,
        "group commit should share fsyncs: {stats:?}"
    );
    drop(journal);

    let (_journal, replayed) = open(dir.path(), morning());
    assert_eq!(replayed.grants.len() as u64, TASKS * EACH);
    // Each task's grants come back in the order it appended them.
    for t in 0..TASKS {
        let mine: Vec<u64> = replayed
            .grants
            .iter()
            .map(|g| g.document.number())
            .filter(|n| n / 1_000_000 == t)
            .collect();
        let expected: Vec<u64> = (0..EACH).map(|i| t * 1_000_000 + i).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test]
async fn a_second_journal_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), morning());
    let err = Journal::open(dir.path(), BAKU, morning(), THREE_HOURS).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }));
    assert!(err.is_retryable());
    drop(journal);
    let _ = open(dir.path(), morning());
}

#[tokio::test]
async fn appends_after_close_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), morning());
    let other = journal.clone();
    journal.close().await;
    let err = other.append(&[grant(1, morning())]).await.unwrap_err();
    assert!(matches!(err, JournalError::Closed));
    assert!(!err.is_retryable());
    assert!(matches!(
        other.compact(morning()).await,
        Err(JournalError::Closed)
    ));
}

#[tokio::test]
async fn a_pending_append_outlives_the_last_handle() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = open(dir.path(), morning());
    let pending = journal.append(&[grant(1, morning())]);
    drop(journal);
    pending.await.unwrap();
    // Its end released the writer and the lock.
    let (_journal, replayed) = open(dir.path(), morning());
    assert_eq!(replayed.grants, vec![grant(1, morning())]);
}

#[test]
fn log_lines_never_hold_a_whole_document() {
    let c = change(12_345_678, &[3], true, 0);
    let shown = format!("{c:?} {:?}", grant(12_345_678, 0));
    assert!(!shown.contains("12345678"), "{shown}");
}

#[tokio::test]
async fn revocations_survive_a_reopen_beside_the_grants() {
    let dir = tempfile::tempdir().unwrap();
    let g = grant(1, morning());
    let revocation = RevocationRecord {
        grant: g,
        at: morning() + 60,
        reason: "forged screenshot".into(),
    };
    {
        let (journal, replayed) = open(dir.path(), morning());
        assert!(replayed.revocations.is_empty(), "a fresh journal has none");
        journal.append(&[g]).await.unwrap();
        journal.append_revocation(revocation.clone()).await.unwrap();
        journal.check().await.unwrap();
    }
    let (_journal, replayed) = open(dir.path(), morning() + 120);
    assert_eq!(replayed.grants, vec![g]);
    assert_eq!(replayed.revocations, vec![revocation]);
    assert!(replayed.damage.is_empty());
    assert!(
        !dir.path().join("ready.probe").exists(),
        "the probe file is gone"
    );
}

#[tokio::test]
async fn revocations_and_blocks_that_no_longer_matter_are_dropped_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let old = grant(1, morning());
    let block = |blocked: bool, until: Option<i64>| BlockRecord {
        document: doc(7),
        codes: ALL_CODES,
        blocked,
        at: morning(),
        until,
        reason: "quarantine".into(),
    };
    {
        let (journal, _) = open(dir.path(), morning());
        journal
            .append_revocation(RevocationRecord {
                grant: old,
                at: morning(),
                reason: "old".into(),
            })
            .await
            .unwrap();
        journal.append_block_entry(block(true, None)).await.unwrap();
        journal
            .append_block_entry(block(false, None))
            .await
            .unwrap();
        let mut lasting = block(true, Some(morning() + 86_400));
        lasting.document = doc(8);
        journal.append_block_entry(lasting).await.unwrap();
    }
    // The next morning: yesterday's revocation still matters; doc 7 was unblocked.
    let next = morning() + 86_400 - 3600;
    let (journal, replayed) = open(dir.path(), next);
    assert_eq!(replayed.revocations.len(), 1);
    assert_eq!(replayed.blocks.len(), 1);
    assert_eq!(replayed.blocks[0].document, doc(8));
    drop(journal);
    // Three days on, nothing is left, and the files are rewritten to match.
    let (_journal, replayed) = open(dir.path(), morning() + 3 * 86_400);
    assert!(replayed.revocations.is_empty() && replayed.blocks.is_empty());
    assert_eq!(
        fs::metadata(dir.path().join("blocks.log")).unwrap().len(),
        HEADER_LEN as u64
    );
    assert_eq!(
        fs::metadata(dir.path().join("revocations.log"))
            .unwrap()
            .len(),
        HEADER_LEN as u64
    );
}
