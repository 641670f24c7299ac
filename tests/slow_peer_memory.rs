//! The gateway's memory under stuck peers, measured on the real binary (VmRSS of the `icaze
//! serve` process, from /proc): a receiver that reads deliver_sm and never answers one while
//! its transmitter pipelines 40,000 MOs, and a client that stops reading while it floods
//! 16 MB of enquire_link. What is held is bounded by the reply queue and the socket
//! buffers, not by what the peers send; the figures are printed (`-- --nocapture`) and
//! recorded in benches/README.md.

mod support;

use std::time::{Duration, Instant};
use support::process::Icaze;
use support::smpp::*;
use tokio::io::AsyncWriteExt;

/// Resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc status")
}

const QUEUE: usize = 2_000;
const WINDOW: usize = 8;
const MOS: u32 = 40_000;

/// `mute` (its receiver never answers) and `stuck` (stops reading), each with a reply queue
/// of QUEUE; `demo` (from the spawn) is the good operator.
fn operators() -> String {
    format!(
        "[[operators]]\nsystem_id = \"mute\"\npassword = \"mute\"\nqueue = {QUEUE}\nwindow = {WINDOW}\n\
         [[operators]]\nsystem_id = \"stuck\"\npassword = \"stuck\"\nmax_binds = 1\nqueue = {QUEUE}\n\
         [smpp]\nwrite_timeout = \"2s\"\nresponse_timeout = \"60s\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_peers_keep_the_gateways_memory_bounded_and_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Icaze::spawn(dir.path(), "icaze", "", &operators());
    let addr = gw.addr();
    let pid = gw.pid();
    assert!(
        sms(addr, "994507770000", "2 AZE 11111111")
            .await
            .contains("PERMIT GRANTED")
    );
    let start_kib = rss_kib(pid);

    // A receiver that takes deliver_sm and answers none.
    let mut mute_rx = Client::connect(addr).await;
    assert_eq!(mute_rx.bind(BIND_RECEIVER, "mute", "mute").await, ESME_ROK);
    let mute_reader = tokio::spawn(async move {
        let mut ignored = 0usize;
        while let Some(p) = mute_rx.read_within(Duration::from_secs(10)).await {
            ignored += usize::from(p.command_id == DELIVER_SM);
        }
        ignored
    });
    // Its transmitter pipelines 40,000 different citizens' requests, in chunks of 1,000.
    let mut tx = Client::connect(addr).await;
    assert_eq!(tx.bind(BIND_TRANSMITTER, "mute", "mute").await, ESME_ROK);
    let mut peak_kib = start_kib;
    let (mut accepted, mut refused) = (0usize, 0usize);
    let mut at_10k_kib = 0;
    for chunk in 0..MOS / 1_000 {
        let mut bytes = Vec::new();
        for i in 0..1_000 {
            let n = chunk * 1_000 + i;
            let seq = tx.next_seq();
            let body = sm_body(
                &format!("99450{n:07}"),
                "8103",
                0,
                0,
                format!("2 AA {n:07}").as_bytes(),
                &[],
            );
            bytes.extend_from_slice(&pdu(SUBMIT_SM, 0, seq, &body));
        }
        tx.send_raw(&bytes).await;
        let mut answered = 0;
        while answered < 1_000 {
            let p = tx.read().await.expect("every MO answered");
            if p.command_id == SUBMIT_SM | RESP {
                answered += 1;
                if p.status == ESME_ROK {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        peak_kib = peak_kib.max(rss_kib(pid));
        if chunk == 9 {
            at_10k_kib = rss_kib(pid);
        }
    }
    let mute_kib = rss_kib(pid);
    eprintln!(
        "mute receiver: {MOS} MOs, {accepted} acknowledged, {refused} refused; RSS {start_kib} KiB at start, \
         {at_10k_kib} KiB after 10,000, peak {peak_kib} KiB, {mute_kib} KiB after"
    );
    // The queue limit holds: what is acknowledged is what the queue and the window hold.
    assert!(
        accepted <= QUEUE + WINDOW,
        "{accepted} acknowledged with a queue of {QUEUE}"
    );
    assert!(accepted >= QUEUE / 2, "the queue took only {accepted}");
    assert_eq!(accepted + refused, MOS as usize);
    // The queue filled within the first 10,000; the 30,000 refused after it cost nothing.
    assert!(
        peak_kib < at_10k_kib + 8 * 1024,
        "RSS went on growing with MOs refused: {at_10k_kib} KiB after 10,000, {peak_kib} KiB peak"
    );

    // The good operator is served meanwhile.
    assert!(
        sms(addr, "994507770001", "2 AZE 22222222")
            .await
            .contains("PERMIT GRANTED")
    );

    // A client that stops reading: a small receive buffer, 16 MB of enquire_link sent.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stuck = Client::from_stream(socket.connect(addr).await.unwrap());
    assert_eq!(
        stuck.bind(BIND_TRANSCEIVER, "stuck", "stuck").await,
        ESME_ROK
    );
    let Client { stream, .. } = stuck;
    let (_unread, mut write) = stream.into_split();
    let flood = tokio::spawn(async move {
        let chunk: Vec<u8> = (1..=4096u32)
            .flat_map(|seq| pdu(ENQUIRE_LINK, 0, seq, &[]))
            .collect();
        let mut sent = 0usize;
        for _ in 0..256 {
            if write.write_all(&chunk).await.is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let mut stuck_peak_kib = 0;
    let dropped_by = Instant::now() + Duration::from_secs(30);
    let mut dropped = false;
    while Instant::now() < dropped_by {
        stuck_peak_kib = stuck_peak_kib.max(rss_kib(pid));
        let mut again = Client::connect(addr).await;
        if again.bind(BIND_TRANSCEIVER, "stuck", "stuck").await == ESME_ROK {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        dropped,
        "the client that stopped reading still holds its bind"
    );
    flood.abort();
    let end_kib = rss_kib(pid);
    eprintln!(
        "stopped reading: RSS peak {stuck_peak_kib} KiB while flooding, {end_kib} KiB once dropped"
    );
    assert!(
        sms(addr, "994507770002", "2 AZE 33333333")
            .await
            .contains("PERMIT GRANTED")
    );
    let ignored = mute_reader.await.unwrap();
    assert!(
        (1..=WINDOW).contains(&ignored),
        "the mute receiver got at most its window: {ignored}"
    );
    // Bounded: a few MB for 2,000 queued replies and the socket buffers, not the 40,000 MOs
    // and 16 MB the peers sent.
    let grown = peak_kib.max(stuck_peak_kib).saturating_sub(start_kib);
    assert!(grown < 48 * 1024, "RSS grew by {grown} KiB");
}
