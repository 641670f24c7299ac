//! Journal: grants made durable (written and `fdatasync`ed) per second with group commit,
//! for N tokio tasks (one per SMPP connection) each appending batches of grants and waiting
//! for each batch to be durable before the next; and what one `fdatasync` costs on this disk,
//! bare and as one lone append (a commit round of one grant).
//!
//! Run: `cargo bench --bench journal`. The journal lives in a temp dir on the target's disk
//! (`CARGO_TARGET_TMPDIR`), so the figures are this disk's, not tmpfs's.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use icaze::permit::document::Document;
use icaze::store::GrantRecord;
use icaze::store::journal::Journal;
use std::io::Write;
use std::time::{Duration, Instant};

/// 10:00 on 2020-04-06 in Baku.
const NOW: i64 = 1_586_152_800;
const THREE_HOURS: u32 = 3 * 3600;

/// (tasks, grants per append) pairs measured.
const SHAPES: &[(usize, usize)] = &[(1, 1), (64, 1), (256, 1), (16, 64), (64, 64), (256, 64)];

fn batch(task: usize, size: usize) -> Vec<GrantRecord> {
    (0..size)
        .map(|i| GrantRecord {
            document: Document::new(b"AZE", format!("{:08}", task * 1000 + i).as_bytes())
                .expect("valid"),
            code: 2,
            from: NOW,
            until: NOW + i64::from(THREE_HOURS),
            // Every grant the gateway makes carries its phone (the longer record).
            phone: icaze::permit::id::PhoneTag(i as u64 + 1),
        })
        .collect()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn group_commit(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("journal/group_commit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for &(tasks, size) in SHAPES {
        let dir = temp_dir();
        let (journal, _) =
            Journal::open(dir.path(), chrono_tz::Asia::Baku, NOW, THREE_HOURS).expect("open");
        group.throughput(Throughput::Elements((tasks * size) as u64));
        let id = BenchmarkId::new("tasks_x_grants_per_append", format!("{tasks}x{size}"));
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    let handles: Vec<_> = (0..tasks)
                        .map(|t| {
                            let journal = journal.clone();
                            let grants = batch(t, size);
                            tokio::spawn(async move {
                                for _ in 0..iters {
                                    journal.append(&grants).await.expect("append");
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.expect("task");
                    }
                    start.elapsed()
                })
            })
        });
        let stats = journal.stats();
        eprintln!(
            "  {tasks}x{size}: {} grants in {} commits, {:.0} grants per fsync round",
            stats.grants,
            stats.commits,
            stats.grants as f64 / stats.commits.max(1) as f64
        );
        rt.block_on(journal.close());
    }
    group.finish();
}

fn fsync_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal/fsync");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    let dir = temp_dir();
    let path = dir.path().join("probe.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .expect("probe file");
    let record = [0x5au8; 31];
    group.bench_function("write_31_bytes_and_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&record).expect("write");
            file.sync_data().expect("fdatasync");
        })
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let jdir = temp_dir();
    let (journal, _) =
        Journal::open(jdir.path(), chrono_tz::Asia::Baku, NOW, THREE_HOURS).expect("open");
    let one = batch(0, 1);
    group.bench_function("one_lone_append", |b| {
        b.iter(|| rt.block_on(journal.append(&one)).expect("append"))
    });
    group.finish();
}

criterion_group!(benches, fsync_cost, group_commit);
criterion_main!(benches);
