//! A store that fails or is slow never leads to an acknowledged permit that is not durable.
//!
//! The gateway runs in this process on a real TCP port with the real journal; the failures
//! are real (a tmpfs that fills up; a read-only remount is refused while the journal
//! holds its files open, so "read-only" cannot happen under a running gateway) or injected into the journal's writer
//! (a failed write, a slow fsync).

mod support;

use icaze::gateway::Gateway;
use icaze::permit::clock::FakeClock;
use icaze::store::Store;
use icaze::store::journal::{FaultHook, Journal, JournalOptions, Step};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::smpp::*;
use support::{MONDAY_10AM, TestGateway, at};
use tokio_util::sync::CancellationToken;

const ESME_RSYSERR: u32 = 0x08;
const GRANTED: &str = "İCAZƏ VERİLDİ";
const ACTIVE: &str = "İcazəniz artıq var";

/// Faults a test switches on and off while the gateway runs.
#[derive(Debug, Default)]
struct Faults {
    /// Fail every write with "no space left on device".
    fail_writes: AtomicBool,
    /// Sleep this many milliseconds before each fsync.
    sync_delay_ms: AtomicU32,
    /// Fsyncs started while delayed.
    syncs_started: AtomicU32,
    /// When the last delayed fsync was let through.
    synced_at: Mutex<Option<Instant>>,
}

impl FaultHook for Faults {
    fn before(&self, step: Step) -> std::io::Result<()> {
        match step {
            Step::Write if self.fail_writes.load(Ordering::SeqCst) => Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "injected: no space left on device",
            )),
            Step::Sync => {
                let delay = self.sync_delay_ms.load(Ordering::SeqCst);
                if delay > 0 {
                    self.syncs_started.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(u64::from(delay)));
                    *self.synced_at.lock().unwrap() = Some(Instant::now());
                }
                Ok(())
            }
            Step::Write => Ok(()),
        }
    }
}

const TWO_OPERATORS: &str = "[[operators]]\nsystem_id = \"demo\"\npassword = \"demo\"\n\
    [[operators]]\nsystem_id = \"other\"\npassword = \"other\"\n";

/// Starts a gateway whose journal lives in `data` (inside `dir`), with `faults` injected.
async fn start(dir: tempfile::TempDir, data: &Path, faults: Option<Arc<Faults>>) -> TestGateway {
    let mut config = support::config(dir.path(), "", TWO_OPERATORS);
    config.data_dir = data.to_path_buf();
    let clock = Arc::new(FakeClock::new(at(MONDAY_10AM)));
    let now = at(MONDAY_10AM).timestamp();
    let options = JournalOptions {
        faults: faults.map(|f| f as Arc<dyn FaultHook>),
        ..JournalOptions::default()
    };
    // A gateway stopped a moment ago may still hold the journal's lock while its last
    // tasks wind down.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (journal, replayed) = loop {
        match Journal::open_with(
            data,
            config.rules.calendar.tz(),
            now,
            config.rules.longest_validity_secs,
            options.clone(),
        ) {
            Ok(opened) => break opened,
            Err(e) if Instant::now() < deadline => {
                eprintln!("journal not yet free: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("journal opens: {e}"),
        }
    };
    let engine = icaze::permit::engine::QuotaEngine::new();
    for g in &replayed.grants {
        engine.record_grant(
            &config.rules,
            g.code,
            g.document,
            icaze::permit::engine::Validity {
                from: g.from,
                until: g.until,
            },
        );
    }
    let gateway = Arc::new(Gateway::new(
        config,
        engine,
        Store::Journal(journal),
        clock.clone(),
    ));
    TestGateway::serve(gateway, clock, CancellationToken::new(), dir, None).await
}

/// Stops `gw` and gives back its directory, its journal closed.
async fn stop(gw: TestGateway) -> tempfile::TempDir {
    gw.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), gw.done)
        .await
        .expect("the gateway stops")
        .expect("the listener task ends cleanly");
    drop(gw.gateway);
    gw.dir
}

async fn bound(gw: &TestGateway, operator: &str) -> Client {
    let mut c = Client::connect(gw.addr).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, operator, operator).await, ESME_ROK);
    c
}

/// Submits `text` from `phone`; returns the response status and, if accepted, the reply.
async fn ask(c: &mut Client, phone: &str, text: &str) -> (u32, Option<String>) {
    let seq = c.submit(phone, "8103", 0, text.as_bytes()).await;
    let mut delivered = Vec::new();
    let resp = c.expect_resp(seq, &mut delivered).await;
    if resp.status != ESME_ROK {
        return (resp.status, None);
    }
    let reply = match delivered.pop() {
        Some(sm) => sm,
        None => c.expect_deliver().await,
    };
    (resp.status, Some(sm_text(&reply)))
}

fn permit_id(reply: &str) -> &str {
    reply.rsplit("№ ").next().expect("a permit id in the reply")
}

/// Whether this test may mount filesystems (root in a container that allows it). Under
/// `CI=true` it must.
fn can_mount(at: &Path) -> bool {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(at)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        support::needs::missing(
            "a_full_disk_refuses_and_the_retry_once_space_returns_survives_a_restart",
            "cannot mount a tmpfs here (run as root)",
        );
    }
    ok
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

/// Fills the filesystem at `dir` to the last byte with a file it returns the path of.
fn fill(dir: &Path) -> std::path::PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.write_all(&[0u8]);
    while f.write_all(&[0u8]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_and_the_retry_once_space_returns_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    if !can_mount(&mnt) {
        return;
    }
    let _mounted = Mounted(&mnt);
    let data = mnt.join("data");
    let gw = start(dir, &data, None).await;
    let mut c = bound(&gw, "demo").await;

    // Someone is granted while there is space.
    let (status, reply) = ask(&mut c, "994500000001", "2 AZE 22222222").await;
    assert_eq!(status, ESME_ROK);
    assert!(reply.unwrap().contains(GRANTED));

    // The disk fills up. The journal's last page may still have room for a few grants;
    // once it has none, the MO is refused with a status that says "retry", again and again.
    let filler = fill(&mnt);
    let mut refused = None;
    for n in 0..5_000u32 {
        let text = format!("2 AZE {:08}", 30_000_000 + n);
        let (status, reply) = ask(&mut c, "994500000002", &text).await;
        if status == ESME_RSYSERR {
            assert_eq!(reply, None, "no reply for a refused MO");
            refused = Some(text);
            break;
        }
        assert_eq!(status, ESME_ROK, "{text}");
    }
    let text = refused.expect("a full disk refuses an MO");
    for attempt in 0..3 {
        let (status, reply) = ask(&mut c, "994500000002", &text).await;
        assert_eq!(status, ESME_RSYSERR, "retry {attempt} on a full disk");
        assert_eq!(reply, None, "no reply for a refused MO");
    }
    // Space comes back.
    std::fs::remove_file(&filler).unwrap();

    // The disk recovers: the retry is decided afresh (a new grant, not "already active").
    let (status, reply) = ask(&mut c, "994500000002", &text).await;
    assert_eq!(status, ESME_ROK);
    let reply = reply.unwrap();
    assert!(reply.contains(GRANTED), "the retry is granted: {reply}");
    let id = permit_id(&reply).to_string();
    drop(c);

    // After a restart the permit is still there, under the same id.
    let dir = stop(gw).await;
    let gw = start(dir, &data, None).await;
    let mut c = bound(&gw, "demo").await;
    let (status, reply) = ask(&mut c, "994500000002", &text).await;
    assert_eq!(status, ESME_ROK);
    let reply = reply.unwrap();
    assert!(reply.contains(ACTIVE), "after the restart: {reply}");
    assert_eq!(permit_id(&reply), id);
    drop(c);
    stop(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_write_failure_refuses_and_the_retry_is_granted_once_it_clears() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let faults = Arc::new(Faults::default());
    let gw = start(dir, &data, Some(faults.clone())).await;
    let mut c = bound(&gw, "demo").await;

    faults.fail_writes.store(true, Ordering::SeqCst);
    for attempt in 0..3 {
        let (status, reply) = ask(&mut c, "994500000003", "2 AZE 33333333").await;
        assert_eq!(status, ESME_RSYSERR, "attempt {attempt}");
        assert_eq!(reply, None);
    }
    // Even a refusal's reply is owed, so it cannot be promised while nothing can be made
    // durable: the operator resends it once the disk works.
    let (status, reply) = ask(&mut c, "994500000004", "hello").await;
    assert_eq!(
        status, ESME_RSYSERR,
        "an invalid text's reply cannot be kept while the disk fails"
    );
    assert_eq!(reply, None);

    faults.fail_writes.store(false, Ordering::SeqCst);
    let (status, reply) = ask(&mut c, "994500000004", "hello").await;
    assert_eq!(status, ESME_ROK, "answered once the disk works");
    assert!(reply.is_some());
    let (status, reply) = ask(&mut c, "994500000003", "2 AZE 33333333").await;
    assert_eq!(status, ESME_ROK);
    let reply = reply.unwrap();
    assert!(
        reply.contains(GRANTED),
        "the retry is a first grant: {reply}"
    );
    let id = permit_id(&reply).to_string();
    drop(c);

    let dir = stop(gw).await;
    let gw = start(dir, &data, None).await;
    let mut c = bound(&gw, "demo").await;
    let (_, reply) = ask(&mut c, "994500000003", "2 AZE 33333333").await;
    let reply = reply.unwrap();
    assert!(reply.contains(ACTIVE), "after the restart: {reply}");
    assert_eq!(permit_id(&reply), id);
    drop(c);
    stop(gw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_answer_on_another_bind_is_acknowledged_only_once_the_grant_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let faults = Arc::new(Faults::default());
    let gw = start(dir, &data, Some(faults.clone())).await;
    let mut first = bound(&gw, "demo").await;
    let mut second = bound(&gw, "other").await;

    // Every fsync now takes 2 s.
    faults.sync_delay_ms.store(2_000, Ordering::SeqCst);
    let seq = first
        .submit("994500000005", "8103", 0, b"2 AZE 55555555")
        .await;
    // Wait until the first bind's grant is in its fsync...
    let waiting = Instant::now();
    while faults.syncs_started.load(Ordering::SeqCst) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "no fsync started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // ...and ask for the same document on the second bind meanwhile.
    let (status, reply) = ask(&mut second, "994500000006", "2 AZE 55555555").await;
    let answered = Instant::now();
    let synced = faults
        .synced_at
        .lock()
        .unwrap()
        .expect("the first grant's fsync finished before the second answer");
    assert!(
        answered >= synced,
        "the second bind was answered before the grant it reports was durable"
    );
    assert_eq!(status, ESME_ROK);
    let second_reply = reply.unwrap();
    assert!(second_reply.contains(ACTIVE), "{second_reply}");

    let mut delivered = Vec::new();
    let resp = first.expect_resp(seq, &mut delivered).await;
    assert_eq!(resp.status, ESME_ROK);
    let first_reply = match delivered.pop() {
        Some(sm) => sm,
        None => first.expect_deliver().await,
    };
    let first_reply = sm_text(&first_reply);
    assert!(first_reply.contains(GRANTED), "{first_reply}");
    assert_eq!(permit_id(&first_reply), permit_id(&second_reply));
    faults.sync_delay_ms.store(0, Ordering::SeqCst);
    drop((first, second));
    stop(gw).await;
}

/// Runs `cmd` with `args`, failing the test with its output if it fails (exit codes in
/// `ok` count as success).
fn run(cmd: &str, args: &[&std::ffi::OsStr], ok: &[i32]) {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    let code = out.status.code().unwrap_or(-1);
    assert!(
        ok.contains(&code),
        "{cmd} {args:?} exited {code}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ext4 filesystem in a 64 MiB image that lives on a 6 MiB tmpfs: ext4 believes it has
/// room, so writes succeed into the page cache, and once the tmpfs is full the loop device
/// cannot store the blocks and `fdatasync` fails with ENOSPC (as on a thin-provisioned or
/// over-committed volume).
struct Ext4OnSmallBacking {
    backing: std::path::PathBuf,
    image: std::path::PathBuf,
    mnt: std::path::PathBuf,
}

impl Ext4OnSmallBacking {
    fn mount(&self) {
        run(
            "mount",
            &[
                "-o".as_ref(),
                "loop".as_ref(),
                self.image.as_os_str(),
                self.mnt.as_os_str(),
            ],
            &[0],
        );
    }

    fn unmount(&self) {
        run("umount", &[self.mnt.as_os_str()], &[0]);
    }
}

impl Drop for Ext4OnSmallBacking {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
        let _ = Command::new("umount").arg("-l").arg(&self.backing).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ext4_fsync_failing_with_enospc_stops_acknowledging_and_loses_no_acknowledged_grant() {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("backing");
    let mnt = dir.path().join("disk");
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let tmpfs = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "tmpfs"])
        .arg(&backing)
        .status()
        .is_ok_and(|s| s.success());
    let tools = ["mkfs.ext4", "e2fsck", "losetup"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t} >/dev/null")])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !(tmpfs && tools) {
        support::needs::missing(
            "an_ext4_fsync_failing_with_enospc_stops_acknowledging_and_loses_no_acknowledged_grant",
            "cannot mount a tmpfs and a loop ext4 image here (run as root with e2fsprogs)",
        );
        return;
    }
    let disk = Ext4OnSmallBacking {
        image: backing.join("ext4.img"),
        backing,
        mnt,
    };
    run(
        "truncate",
        &["-s".as_ref(), "64M".as_ref(), disk.image.as_os_str()],
        &[0],
    );
    run(
        "mkfs.ext4",
        &[
            "-q".as_ref(),
            "-m".as_ref(),
            "0".as_ref(),
            "-E".as_ref(),
            "nodiscard,lazy_itable_init=1,lazy_journal_init=1".as_ref(),
            disk.image.as_os_str(),
        ],
        &[0],
    );
    disk.mount();
    let data = disk.mnt.join("data");
    let gw = start(dir, &data, None).await;
    let mut c = bound(&gw, "demo").await;
    // Granted while the volume has room.
    let mut acknowledged = Vec::new();
    for n in 0..20u32 {
        let text = format!("2 AZE {:08}", 30_000_000 + n);
        let (status, reply) = ask(&mut c, "994500000001", &text).await;
        assert_eq!(status, ESME_ROK, "{text}");
        acknowledged.push((text, permit_id(&reply.unwrap()).to_string()));
    }

    // The volume behind ext4 fills up: ext4 still takes the writes, the syncs fail.
    let filler = fill(&disk.backing);
    let mut refused = None;
    for n in 0..20_000u32 {
        let text = format!("2 AZE {:08}", 40_000_000 + n);
        let (status, reply) = ask(&mut c, "994500000002", &text).await;
        if status == ESME_RSYSERR {
            assert_eq!(reply, None, "no reply for a refused MO");
            refused = Some(text);
            break;
        }
        assert_eq!(status, ESME_ROK, "{text}");
        acknowledged.push((text, permit_id(&reply.unwrap()).to_string()));
    }
    let refused = refused.expect("an fsync that fails refuses the MO");
    // The journal stops: every later MO is refused too, and readiness says why.
    for attempt in 0..3 {
        let (status, _) = ask(&mut c, "994500000003", &format!("2 AZE 5000000{attempt}")).await;
        assert_eq!(status, ESME_RSYSERR, "refused after the failed fsync");
    }
    let ready = gw.gateway.store.check().await;
    assert!(
        ready
            .as_ref()
            .is_err_and(|e| e.to_string().contains("fsync")),
        "not ready: {ready:?}"
    );
    drop(c);

    // The person on call frees space, checks the filesystem and restarts the gateway.
    let dir = stop(gw).await;
    std::fs::remove_file(&filler).unwrap();
    disk.unmount();
    run("e2fsck", &["-fy".as_ref(), disk.image.as_os_str()], &[0, 1]);
    disk.mount();
    let gw = start(dir, &data, None).await;
    let mut c = bound(&gw, "demo").await;
    // The last reply delivered before the failure was settled in the round that failed:
    // still owed on disk, it comes once more (at least once, never lost).
    let mut again = Vec::new();
    while let Some(p) = c.read_within(Duration::from_millis(500)).await {
        if p.command_id == DELIVER_SM {
            c.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
            again.extend(c.assemble(&p.body).map(|sm| sm_text(&sm)));
        }
    }
    assert!(
        again.len() <= 1,
        "only the reply settled in the failed round: {again:?}"
    );
    for text in &again {
        let (_, last_id) = acknowledged.last().unwrap();
        assert!(
            text.contains(GRANTED) && text.ends_with(last_id.as_str()),
            "{text}"
        );
    }
    // Every permit acknowledged before the failure is still there, under the same id.
    for (text, id) in &acknowledged {
        let (status, reply) = ask(&mut c, "994500000002", text).await;
        assert_eq!(status, ESME_ROK);
        let reply = reply.unwrap();
        assert!(reply.contains(ACTIVE), "{text} after the restart: {reply}");
        assert_eq!(permit_id(&reply), id, "{text}");
    }
    // The refused MO is decided now: granted (or, if its round reached the disk after
    // all, active), and answered either way.
    let (status, reply) = ask(&mut c, "994500000002", &refused).await;
    assert_eq!(status, ESME_ROK);
    let reply = reply.unwrap();
    assert!(reply.contains(GRANTED) || reply.contains(ACTIVE), "{reply}");
    drop(c);
    stop(gw).await;
}
