//! The limit of this design on this machine (issue 15 point 1): a bare tokio SMPP server
//! that does only what every MO needs and nothing icaze adds. It accepts any bind, frames
//! and decodes each PDU with icaze's codec (our framing, rusmpp bodies), counts each MO by
//! its sender in a map, answers submit_sm_resp and sends one deliver_sm per MO back to the
//! sender, every answer of one read coalesced into one write. No parser, no rules, no
//! store, no reply queue, no metrics.
//!
//! `cargo bench --bench reference_server -- --listen 127.0.0.1:2777` (runs until killed);
//! `benches/limit.sh` runs the load generator against it and against `icaze serve` in one
//! go and prints both throughputs and CPU per MO.

use bytes::BytesMut;
use icaze::smpp::IncomingSm;
use icaze::smpp::codec::{self, Frame};
use icaze_sim::wire::{self, OutgoingSm};
use rusmpp::CommandId;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The reply every MO gets: the size of a short English grant.
const REPLY: &[u8] = b"PERMIT GRANTED: code 2, AZE 11111111, 10:00-13:00. Permit no. K7QM-4RTX";

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut listen = "127.0.0.1:2777".to_string();
    while let Some(a) = args.next() {
        if a == "--listen" {
            listen = args.next().expect("--listen ADDR");
        }
        // `cargo bench` passes `--bench`; anything else is ignored.
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("reference server listening on {}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(session(stream));
        }
    })
}

/// One connection: read, answer everything of the read, write once.
async fn session(mut stream: TcpStream) {
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut output = BytesMut::with_capacity(64 * 1024);
    let mut count: HashMap<Vec<u8>, u32> = HashMap::new();
    let mut next_id: u64 = 1;
    let mut next_seq: u32 = 1;
    loop {
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            let frame: Frame = match codec::decode(&mut input, 64 * 1024) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) if e.is_fatal() => return,
                Err(_) => continue,
            };
            let seq = frame.sequence_number;
            match frame.command_id {
                CommandId::BindTransceiver
                | CommandId::BindTransmitter
                | CommandId::BindReceiver => {
                    wire::put_bind_resp(
                        &mut output,
                        u32::from(frame.command_id),
                        seq,
                        0,
                        "reference",
                        0x34,
                    );
                }
                CommandId::EnquireLink => {
                    wire::put_plain(&mut output, wire::ENQUIRE_LINK | wire::RESP, seq)
                }
                CommandId::Unbind => {
                    wire::put_plain(&mut output, wire::UNBIND | wire::RESP, seq);
                    let _ = stream.write_all(&output).await;
                    return;
                }
                CommandId::SubmitSm => {
                    let Ok(mo) = IncomingSm::from_pdu(frame.pdu) else {
                        continue;
                    };
                    *count.entry(mo.source.as_bytes().to_vec()).or_default() += 1;
                    wire::put_resp_with_id(&mut output, wire::SUBMIT_SM, seq, next_id);
                    next_id += 1;
                    let sm = OutgoingSm {
                        source: mo.destination.as_str(),
                        destination: mo.source.as_str(),
                        esm_class: 0,
                        data_coding: 0,
                        short_message: REPLY,
                        tlvs: &[],
                    };
                    wire::put_sm(&mut output, wire::DELIVER_SM, next_seq, &sm);
                    next_seq = next_seq.wrapping_add(1).max(1);
                }
                // deliver_sm_resp and anything else: nothing to answer.
                _ => {}
            }
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
    }
}
