//! Replay of a corrupted `outbox.log` (the replies owed across a crash): the input becomes
//! the file in a scratch data directory, after a valid header when the first byte is even,
//! and `icaze::store::journal::Journal::open` replays it.
//!
//! Checked: open never panics and fails only with an error or replays; the replies owed
//! come back oldest first, each id once; a second open finds no damage and gives the same
//! replies (the first open repaired or rewrote the file).
#![no_main]

use chrono_tz::Asia::Baku;
use icaze::store::journal::Journal;
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::LazyLock;

/// 2020-04-06 12:00 in Baku.
const NOW: i64 = 1_586_160_000;

static SCRATCH: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("scratch folder")
    } else {
        tempfile::tempdir().expect("scratch folder")
    }
});

fn header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[..4].copy_from_slice(b"ICZJ");
    h[4] = 1;
    h[5] = b'O';
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let dir = SCRATCH.path().join("outbox");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch data dir");
    let mut file = Vec::new();
    if flags % 2 == 0 {
        file.extend_from_slice(&header());
    }
    file.extend_from_slice(rest);
    std::fs::write(dir.join("outbox.log"), &file).expect("outbox.log written");

    let owed = match Journal::open(&dir, Baku, NOW, 3 * 3600) {
        Ok((journal, _)) => journal.take_owed(),
        Err(_) => return,
    };
    let ids: Vec<u64> = owed.iter().map(|r| r.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first, once each: {ids:?}"
    );
    let (journal, replayed) =
        Journal::open(&dir, Baku, NOW, 3 * 3600).expect("a replayed journal opens again");
    assert!(
        replayed.damage.is_empty(),
        "repaired at the first open: {:?}",
        replayed.damage
    );
    assert_eq!(journal.take_owed(), owed, "the same replies owed");
});
