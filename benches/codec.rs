//! SMPP codec: PDUs per second for decode and encode of submit_sm and deliver_sm, the way a
//! connection does it (many PDUs in one read buffer, many responses appended to one write
//! buffer). Target: at least 2 million submit_sm decodes per second on one core.
//!
//! Run: `cargo bench --bench codec`.

use bytes::{Bytes, BytesMut};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use icaze::smpp::codec::{
    self, Address, DEFAULT_MAX_PDU_LEN, IncomingSm, MtPart, Status, encode_message_id_resp,
};
use icaze::smpp::text;
use rusmpp::{CommandId, Pdu};
use std::hint::black_box;

/// PDUs per measured batch: one large read buffer's worth.
const BATCH: usize = 4096;

fn mo_part() -> MtPart {
    MtPart {
        source: Address::new(1, 1, "994501234567").expect("valid"),
        destination: Address::new(0, 0, "8103").expect("valid"),
        data_coding: 0,
        udh: false,
        short_message: Bytes::from_static(b"2 AZE 11111111"),
    }
}

fn reply_part() -> MtPart {
    let reply = "İcazə verildi: 2 AZE 11111111, 10:00–12:00";
    let enc = text::encode_mt(reply, 1).expect("fits");
    MtPart {
        source: Address::new(0, 0, "8103").expect("valid"),
        destination: Address::new(1, 1, "994501234567").expect("valid"),
        data_coding: enc.data_coding,
        udh: enc.udh,
        short_message: enc.parts[0].clone(),
    }
}

/// `BATCH` copies of `pdu` back to back, as one read would deliver them.
fn stream(pdu: &Pdu) -> BytesMut {
    let mut buf = BytesMut::new();
    for seq in 0..BATCH as u32 {
        codec::encode(&mut buf, seq, Status::ESME_ROK, pdu);
    }
    buf
}

fn decode_all(mut buf: BytesMut) -> usize {
    let mut n = 0;
    while let Ok(Some(frame)) = codec::decode(&mut buf, DEFAULT_MAX_PDU_LEN) {
        black_box(&frame);
        n += 1;
    }
    n
}

fn bench_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(BATCH as u64));
    for (name, pdu) in [
        ("submit_sm", mo_part().submit_sm()),
        ("deliver_sm", reply_part().deliver_sm()),
    ] {
        let buf = stream(&pdu);
        g.bench_function(name, |b| {
            b.iter_batched(|| buf.clone(), decode_all, BatchSize::LargeInput)
        });
    }
    // Decode plus what the gateway does next: take the MO fields and decode the text.
    let buf = stream(&mo_part().submit_sm());
    g.bench_function("submit_sm+mo_text", |b| {
        b.iter_batched(
            || buf.clone(),
            |mut buf| {
                while let Ok(Some(frame)) = codec::decode(&mut buf, DEFAULT_MAX_PDU_LEN) {
                    if let Ok(mo) = IncomingSm::from_pdu(frame.pdu) {
                        black_box(mo.text().ok());
                    }
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut out = BytesMut::with_capacity(BATCH * 256);
    for (name, pdu) in [
        ("submit_sm", mo_part().submit_sm()),
        ("deliver_sm", reply_part().deliver_sm()),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                for seq in 0..BATCH as u32 {
                    codec::encode(&mut out, seq, Status::ESME_ROK, black_box(&pdu));
                }
                black_box(out.len())
            })
        });
    }
    // Building the deliver_sm from its parts as well as encoding it (the MT path).
    let part = reply_part();
    g.bench_function("deliver_sm+build", |b| {
        b.iter(|| {
            out.clear();
            for seq in 0..BATCH as u32 {
                let pdu = black_box(&part).deliver_sm();
                codec::encode(&mut out, seq, Status::ESME_ROK, &pdu);
            }
            black_box(out.len())
        })
    });
    g.bench_function("submit_sm_resp", |b| {
        b.iter(|| {
            out.clear();
            for seq in 0..BATCH as u32 {
                encode_message_id_resp(
                    &mut out,
                    CommandId::SubmitSmResp,
                    seq,
                    Status::ESME_ROK,
                    black_box("1a2b3c4d"),
                );
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
