//! A test's SMPP client on top of the load simulator's wire (`icaze_sim::wire`, written
//! from the spec) and text decoder (`icaze_sim::text`): they share no code with icaze's
//! codec, so what the tests send and read is checked independently of what icaze believes.
//! This file adds only what a test needs on top: raw PDUs by the byte, reading with a
//! time limit, answering enquire_link and deliver_sm, reassembling concatenated replies.

#![allow(dead_code)]

use bytes::BytesMut;
use icaze_sim::{text, wire};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

// Each test crate uses some of these; the rest would warn as unused in it.
#[allow(unused_imports)]
pub use icaze_sim::wire::{
    BIND_RECEIVER, BIND_TRANSCEIVER, BIND_TRANSMITTER, DATA_SM, DELIVER_SM, ENQUIRE_LINK,
    GENERIC_NACK, RESP, SUBMIT_SM, UNBIND,
};

pub const ESME_ROK: u32 = 0x00;
pub const ESME_RINVCMDLEN: u32 = 0x02;
pub const ESME_RINVCMDID: u32 = 0x03;
pub const ESME_RINVBNDSTS: u32 = 0x04;
pub const ESME_RALYBND: u32 = 0x05;
pub const ESME_RINVDSTADR: u32 = 0x0B;
pub const ESME_RBINDFAIL: u32 = 0x0D;
pub const ESME_RINVPASWD: u32 = 0x0E;
pub const ESME_RINVSYSID: u32 = 0x0F;
pub const ESME_RTHROTTLED: u32 = 0x58;

/// One PDU as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPdu {
    pub command_id: u32,
    pub status: u32,
    pub seq: u32,
    pub body: Vec<u8>,
}

/// The fields of a deliver_sm (or submit_sm) body a test looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sm {
    pub source_ton: u8,
    pub source_npi: u8,
    pub source: String,
    pub dest: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub short_message: Vec<u8>,
}

pub fn pdu(command_id: u32, status: u32, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    wire::put_pdu(&mut out, command_id, status, seq, body);
    out.to_vec()
}

/// The body of the PDU `build` writes (its header dropped).
fn body_of(build: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut out = BytesMut::new();
    build(&mut out);
    out[wire::HEADER..].to_vec()
}

/// A bind body, interface version 0x34.
pub fn bind_body(system_id: &str, password: &str) -> Vec<u8> {
    body_of(|out| wire::put_bind(out, BIND_TRANSCEIVER, 0, system_id, password))
}

/// A submit_sm (or deliver_sm / data_sm-like) body.
pub fn sm_body(
    source: &str,
    dest: &str,
    esm_class: u8,
    data_coding: u8,
    short_message: &[u8],
    tlvs: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let tlvs: Vec<(u16, &[u8])> = tlvs.iter().map(|(t, v)| (*t, &v[..])).collect();
    let sm = wire::OutgoingSm {
        source,
        destination: dest,
        esm_class,
        data_coding,
        short_message,
        tlvs: &tlvs,
    };
    body_of(|out| wire::put_sm(out, SUBMIT_SM, 0, &sm))
}

/// A data_sm body: like submit_sm up to data_coding, no short_message, TLVs after.
pub fn data_sm_body(source: &str, dest: &str, data_coding: u8, payload: &[u8]) -> Vec<u8> {
    body_of(|out| wire::put_data_sm(out, 0, source, dest, data_coding, payload))
}

/// Parses a submit_sm / deliver_sm body; the message_payload TLV stands in for
/// short_message.
pub fn parse_sm(body: &[u8]) -> Sm {
    let sm = wire::read_deliver_sm(body).expect("a well-formed deliver_sm / submit_sm body");
    let string = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Sm {
        source_ton: sm.source_ton,
        source_npi: sm.source_npi,
        source: string(sm.source),
        dest: string(sm.destination),
        esm_class: sm.esm_class,
        data_coding: sm.data_coding,
        short_message: sm.message.to_vec(),
    }
}

/// Decodes UCS-2 (UTF-16BE) text.
pub fn ucs2(bytes: &[u8]) -> String {
    text::decode(8, bytes).unwrap_or_else(|e| panic!("{e}"))
}

/// Encodes UTF-16BE.
pub fn to_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

/// The text of an MT in its data_coding, with a UDH stripped when esm_class says there is
/// one. Panics on a text the simulator's decoder refuses: a reply must be readable.
pub fn sm_text(sm: &Sm) -> String {
    let data = if sm.esm_class & wire::UDHI != 0 {
        text::split_udh(&sm.short_message)
            .expect("the UDH fits in the message")
            .1
    } else {
        &sm.short_message[..]
    };
    text::decode(sm.data_coding, data).unwrap_or_else(|e| panic!("reply text: {e}"))
}

/// A test's SMPP connection, over TCP or anything else that carries bytes (TLS).
pub struct Client<S = TcpStream> {
    pub stream: S,
    seq: u32,
    buf: BytesMut,
    /// Parts of concatenated deliver_sm, by (destination, reference).
    partial: std::collections::HashMap<(String, u16), Vec<Option<Sm>>>,
    /// Responses read while waiting for another.
    stashed: Vec<RawPdu>,
}

impl Client {
    pub async fn connect(addr: std::net::SocketAddr) -> Client {
        Client::from_stream(TcpStream::connect(addr).await.expect("connect"))
    }

    /// Wraps a connection the test accepted (playing an SMSC that icaze binds to).
    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).ok();
        Client::over(stream)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// A client over `stream` (a TLS stream whose handshake is done).
    pub fn over(stream: S) -> Client<S> {
        Client {
            stream,
            seq: 0,
            buf: BytesMut::new(),
            partial: Default::default(),
            stashed: Vec::new(),
        }
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends a request and returns its sequence number.
    pub async fn send(&mut self, command_id: u32, body: &[u8]) -> u32 {
        let seq = self.next_seq();
        self.send_raw(&pdu(command_id, 0, seq, body)).await;
        seq
    }

    /// Reads one PDU, or `None` if the server closed the connection (or 10 s passed).
    pub async fn read(&mut self) -> Option<RawPdu> {
        self.read_within(Duration::from_secs(10)).await
    }

    pub async fn read_within(&mut self, limit: Duration) -> Option<RawPdu> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match wire::next_pdu(&mut self.buf) {
                Ok(Some((header, body))) => {
                    return Some(RawPdu {
                        command_id: header.command_id,
                        status: header.status,
                        seq: header.sequence,
                        body: body.to_vec(),
                    });
                }
                Ok(None) => {}
                Err(e) => panic!("the peer's byte stream cannot be read: {e}"),
            }
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Whether the server closes the connection within `limit` (end of stream or reset),
    /// with nothing more sent first. A connection still open at `limit` is not closed.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        match tokio::time::timeout(limit, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => true,
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    /// Reads until a PDU that is not an enquire_link (which it answers) arrives.
    pub async fn read_skipping_enquire(&mut self) -> Option<RawPdu> {
        loop {
            let p = self.read().await?;
            if p.command_id == ENQUIRE_LINK {
                self.send_raw(&pdu(ENQUIRE_LINK | RESP, 0, p.seq, &[]))
                    .await;
                continue;
            }
            return Some(p);
        }
    }

    /// Binds and returns the response's status.
    pub async fn bind(&mut self, kind: u32, system_id: &str, password: &str) -> u32 {
        self.send(kind, &bind_body(system_id, password)).await;
        let resp = self.read_skipping_enquire().await.expect("bind response");
        assert_eq!(resp.command_id, kind | RESP, "bind answered with {resp:?}");
        resp.status
    }

    /// Binds as demo/demo and asks for a permit for `document` (e.g. "AZE 11111111"): the
    /// answer must be an acknowledged MO and a reply granting it. Returns the reply's text.
    pub async fn gets_its_permit(&mut self, document: &str) -> String {
        assert_eq!(
            self.bind(BIND_TRANSCEIVER, "demo", "demo").await,
            ESME_ROK,
            "good client bound"
        );
        let text = format!("2 {document}");
        let seq = self
            .submit("994501234567", "8103", 0, text.as_bytes())
            .await;
        let mut delivered = Vec::new();
        let resp = self.expect_resp(seq, &mut delivered).await;
        assert_eq!((resp.command_id, resp.status), (SUBMIT_SM | RESP, ESME_ROK));
        let reply = match delivered.pop() {
            Some(sm) => sm,
            None => self.expect_deliver().await,
        };
        let reply = sm_text(&reply);
        assert!(reply.contains("İCAZƏ VERİLDİ"), "{reply}");
        assert!(reply.contains(document), "{reply}");
        reply
    }

    /// Submits one text to `dest` from `source` (data_coding 0 means our test's ASCII).
    pub async fn submit(
        &mut self,
        source: &str,
        dest: &str,
        data_coding: u8,
        short_message: &[u8],
    ) -> u32 {
        self.send(
            SUBMIT_SM,
            &sm_body(source, dest, 0, data_coding, short_message, &[]),
        )
        .await
    }

    /// Takes one deliver_sm body; returns the whole message once every part is in
    /// (the UDH stripped, esm_class without UDHI, user data joined).
    pub fn assemble(&mut self, body: &[u8]) -> Option<Sm> {
        let sm = parse_sm(body);
        if sm.esm_class & wire::UDHI == 0 {
            return Some(sm);
        }
        let Some((Some((reference, total, seq)), _)) = text::split_udh(&sm.short_message) else {
            return Some(sm);
        };
        let (total, seq) = (usize::from(total), usize::from(seq));
        assert!(
            (1..=total).contains(&seq),
            "part {seq} of {total} in {sm:?}"
        );
        let key = (sm.dest.clone(), reference);
        let parts = self
            .partial
            .entry(key.clone())
            .or_insert_with(|| vec![None; total]);
        parts[seq - 1] = Some(sm);
        if parts.iter().any(Option::is_none) {
            return None;
        }
        let parts: Vec<Sm> = self.partial.remove(&key)?.into_iter().flatten().collect();
        let mut whole = parts[0].clone();
        whole.esm_class &= !wire::UDHI;
        whole.short_message = parts
            .iter()
            .flat_map(|p| {
                text::split_udh(&p.short_message)
                    .map(|(_, user_data)| user_data.to_vec())
                    .unwrap_or_default()
            })
            .collect();
        Some(whole)
    }

    /// Waits for the next whole deliver_sm message, acknowledging every part, and returns it.
    pub async fn expect_deliver(&mut self) -> Sm {
        loop {
            let p = self.read_skipping_enquire().await.expect("a deliver_sm");
            if p.command_id == DELIVER_SM {
                self.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                if let Some(sm) = self.assemble(&p.body) {
                    return sm;
                }
                continue;
            }
            assert!(p.command_id & RESP != 0, "unexpected request {p:?}");
        }
    }

    /// Waits for the response to `seq`, answering and collecting deliver_sm meanwhile.
    pub async fn expect_resp(&mut self, seq: u32, delivered: &mut Vec<Sm>) -> RawPdu {
        if let Some(i) = self.stashed.iter().position(|p| p.seq == seq) {
            return self.stashed.remove(i);
        }
        loop {
            let p = self.read_skipping_enquire().await.expect("a response");
            if p.command_id == DELIVER_SM {
                self.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                if let Some(sm) = self.assemble(&p.body) {
                    delivered.push(sm);
                }
                continue;
            }
            if p.seq == seq {
                return p;
            }
            self.stashed.push(p);
        }
    }

    /// Sends every `(source, text)` to 8103 in one write, then reads until each has its
    /// response and every accepted one its reply. Returns, per MO in order, the response
    /// status and the texts of the replies sent to its source (whole, reassembled).
    pub async fn converse(&mut self, mos: &[(String, String)]) -> Vec<(u32, Vec<String>)> {
        self.converse_chunked(mos, mos.len().max(1), Duration::ZERO)
            .await
    }

    /// [`Client::converse`], writing `chunk` MOs at a time with `pause` between writes.
    pub async fn converse_chunked(
        &mut self,
        mos: &[(String, String)],
        chunk: usize,
        pause: Duration,
    ) -> Vec<(u32, Vec<String>)> {
        let mut seqs = std::collections::HashMap::new();
        for (n, part) in mos.chunks(chunk).enumerate() {
            let mut batch = Vec::new();
            for (k, (source, text)) in part.iter().enumerate() {
                let seq = self.next_seq();
                seqs.insert(seq, n * chunk + k);
                batch.extend(pdu(
                    SUBMIT_SM,
                    0,
                    seq,
                    &sm_body(source, "8103", 0, 0, text.as_bytes(), &[]),
                ));
            }
            self.send_raw(&batch).await;
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        let mut status = vec![None; mos.len()];
        let mut replies: std::collections::HashMap<String, Vec<String>> = Default::default();
        let (mut answered, mut accepted, mut delivered) = (0, 0, 0);
        while answered < mos.len() || delivered < accepted {
            let Some(p) = self.read_skipping_enquire().await else {
                panic!(
                    "the gateway went quiet with {answered}/{} responses and {delivered}/{accepted} replies",
                    mos.len()
                );
            };
            if p.command_id == DELIVER_SM {
                self.send_raw(&pdu(DELIVER_SM | RESP, 0, p.seq, &[0])).await;
                if let Some(sm) = self.assemble(&p.body) {
                    replies
                        .entry(sm.dest.clone())
                        .or_default()
                        .push(sm_text(&sm));
                    delivered += 1;
                }
            } else if p.command_id == SUBMIT_SM | RESP
                && let Some(&i) = seqs.get(&p.seq)
                && status[i].is_none()
            {
                status[i] = Some(p.status);
                answered += 1;
                accepted += usize::from(p.status == ESME_ROK);
            }
        }
        mos.iter()
            .zip(status)
            .map(|((source, _), s)| (s.unwrap(), replies.get(source).cloned().unwrap_or_default()))
            .collect()
    }
}

/// Texts `text` from `msisdn` and returns the reply.
pub async fn sms(smpp: std::net::SocketAddr, msisdn: &str, text: &str) -> String {
    let mut c = Client::connect(smpp).await;
    assert_eq!(c.bind(BIND_TRANSCEIVER, "demo", "demo").await, ESME_ROK);
    let seq = c.submit(msisdn, "8103", 0, text.as_bytes()).await;
    let mut replies = Vec::new();
    assert_eq!(c.expect_resp(seq, &mut replies).await.status, ESME_ROK);
    let reply = match replies.pop() {
        Some(r) => r,
        None => c.expect_deliver().await,
    };
    sm_text(&reply)
}

/// The permit id a reply prints (`Permit no. K7QM-4RTX`).
pub fn permit_id(reply: &str) -> String {
    reply
        .rsplit(' ')
        .next()
        .filter(|id| id.len() == 9 && id.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no permit id in {reply:?}"))
        .to_string()
}

/// Plays the SMSC a connector dials: accepts icaze's next connection (within 10 s) and
/// reads its bind request.
pub async fn accept_bind(smsc: &tokio::net::TcpListener) -> (Client, RawPdu) {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), smsc.accept())
        .await
        .expect("icaze connects to the SMSC")
        .unwrap();
    let mut c = Client::from_stream(stream);
    let bind = c.read().await.expect("a bind request");
    (c, bind)
}

/// Answers `bind` with `status` (system_id `SMSC`, sc_interface_version 3.4).
pub async fn answer_bind(
    c: &mut Client<impl AsyncRead + AsyncWrite + Unpin>,
    bind: &RawPdu,
    status: u32,
) {
    let mut body = b"SMSC\0".to_vec();
    body.extend_from_slice(&[0x02, 0x10, 0x00, 0x01, 0x34]);
    c.send_raw(&pdu(bind.command_id | RESP, status, bind.seq, &body))
        .await;
}
