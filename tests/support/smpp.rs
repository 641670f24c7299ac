//! A small SMPP client written from the spec for tests, byte by byte, sharing no code with
//! icaze's codec: what it sends and reads is checked independently of what icaze believes.

#![allow(dead_code)]

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const BIND_RECEIVER: u32 = 0x0000_0001;
pub const BIND_TRANSMITTER: u32 = 0x0000_0002;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const DELIVER_SM: u32 = 0x0000_0005;
pub const UNBIND: u32 = 0x0000_0006;
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
pub const DATA_SM: u32 = 0x0000_0103;
pub const GENERIC_NACK: u32 = 0x8000_0000;
pub const RESP: u32 = 0x8000_0000;

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
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    out.extend_from_slice(&command_id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

/// A bind body, interface version 0x34.
pub fn bind_body(system_id: &str, password: &str) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, system_id);
    cstr(&mut b, password);
    cstr(&mut b, "");
    b.extend_from_slice(&[0x34, 0, 0]);
    cstr(&mut b, "");
    b
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
    let mut b = Vec::new();
    cstr(&mut b, "");
    b.extend_from_slice(&[1, 1]);
    cstr(&mut b, source);
    b.extend_from_slice(&[0, 0]);
    cstr(&mut b, dest);
    b.extend_from_slice(&[esm_class, 0, 0]);
    cstr(&mut b, "");
    cstr(&mut b, "");
    b.extend_from_slice(&[0, 0, data_coding, 0, short_message.len() as u8]);
    b.extend_from_slice(short_message);
    for (tag, value) in tlvs {
        b.extend_from_slice(&tag.to_be_bytes());
        b.extend_from_slice(&(value.len() as u16).to_be_bytes());
        b.extend_from_slice(value);
    }
    b
}

/// A data_sm body: like submit_sm up to data_coding, no short_message, TLVs after.
pub fn data_sm_body(source: &str, dest: &str, data_coding: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    cstr(&mut b, "");
    b.extend_from_slice(&[1, 1]);
    cstr(&mut b, source);
    b.extend_from_slice(&[0, 0]);
    cstr(&mut b, dest);
    b.extend_from_slice(&[0, 0, data_coding]);
    b.extend_from_slice(&0x0424u16.to_be_bytes());
    b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn read_cstr(body: &[u8], at: &mut usize) -> String {
    let end = body[*at..]
        .iter()
        .position(|&c| c == 0)
        .expect("C string ends")
        + *at;
    let s = String::from_utf8_lossy(&body[*at..end]).into_owned();
    *at = end + 1;
    s
}

/// Parses a submit_sm / deliver_sm body; the message_payload TLV stands in for an empty
/// short_message.
pub fn parse_sm(body: &[u8]) -> Sm {
    let mut at = 0;
    let _service_type = read_cstr(body, &mut at);
    let (source_ton, source_npi) = (body[at], body[at + 1]);
    at += 2;
    let source = read_cstr(body, &mut at);
    at += 2;
    let dest = read_cstr(body, &mut at);
    let esm_class = body[at];
    at += 3;
    read_cstr(body, &mut at);
    read_cstr(body, &mut at);
    at += 2;
    let data_coding = body[at];
    at += 2;
    let len = body[at] as usize;
    at += 1;
    let mut short_message = body[at..at + len].to_vec();
    at += len;
    while at + 4 <= body.len() {
        let tag = u16::from_be_bytes([body[at], body[at + 1]]);
        let l = u16::from_be_bytes([body[at + 2], body[at + 3]]) as usize;
        if tag == 0x0424 && short_message.is_empty() {
            short_message = body[at + 4..at + 4 + l].to_vec();
        }
        at += 4 + l;
    }
    Sm {
        source_ton,
        source_npi,
        source,
        dest,
        esm_class,
        data_coding,
        short_message,
    }
}

/// Decodes UCS-2 (UTF-16BE) text.
pub fn ucs2(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

/// Encodes UTF-16BE.
pub fn to_ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// The text of an MT: UCS-2 or GSM 7-bit unpacked (ASCII-range letters only are checked),
/// with a UDH stripped when esm_class says there is one.
pub fn sm_text(sm: &Sm) -> String {
    let mut data = &sm.short_message[..];
    if sm.esm_class & 0x40 != 0 && !data.is_empty() {
        let udhl = data[0] as usize;
        data = &data[1 + udhl..];
    }
    match sm.data_coding {
        8 => ucs2(data),
        _ => data.iter().map(|&b| gsm_char(b)).collect(),
    }
}

/// GSM 03.38 default alphabet for the characters replies use.
fn gsm_char(b: u8) -> char {
    match b {
        0x00 => '@',
        0x02 => '$',
        0x11 => '_',
        b'0'..=b'9'
        | b'A'..=b'Z'
        | b'a'..=b'z'
        | b' '
        | b'.'
        | b','
        | b':'
        | b'-'
        | b'('
        | b')'
        | b'/'
        | b'!'
        | b'?'
        | b'\''
        | b'+'
        | b'='
        | b'%'
        | b'&'
        | b'*'
        | b'"'
        | b';'
        | b'<'
        | b'>'
        | b'#' => b as char,
        b'\n' => '\n',
        _ => '�',
    }
}

/// A test's SMPP connection.
pub struct Client {
    pub stream: TcpStream,
    seq: u32,
    buf: Vec<u8>,
    /// Parts of concatenated deliver_sm, by (destination, reference).
    partial: std::collections::HashMap<(String, u8), Vec<Option<Sm>>>,
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
        Client {
            stream,
            seq: 0,
            buf: Vec::new(),
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
            if self.buf.len() >= 16 {
                let len = u32::from_be_bytes(self.buf[0..4].try_into().unwrap()) as usize;
                if self.buf.len() >= len {
                    let frame: Vec<u8> = self.buf.drain(..len).collect();
                    let word = |i: usize| u32::from_be_bytes(frame[i..i + 4].try_into().unwrap());
                    return Some(RawPdu {
                        command_id: word(4),
                        status: word(8),
                        seq: word(12),
                        body: frame[16..].to_vec(),
                    });
                }
            }
            let mut chunk = [0u8; 4096];
            let n = match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Ok(Ok(n)) => n,
                _ => return None,
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
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
        let data = &sm.short_message;
        if sm.esm_class & 0x40 == 0 || data.len() < 6 || data[1] != 0 {
            return Some(sm);
        }
        let (reference, total, seq) = (data[3], data[4] as usize, data[5] as usize);
        let key = (sm.dest.clone(), reference);
        let parts = self
            .partial
            .entry(key.clone())
            .or_insert_with(|| vec![None; total]);
        parts[seq - 1] = Some(sm);
        if parts.iter().any(Option::is_none) {
            return None;
        }
        let parts = self.partial.remove(&key).unwrap();
        let mut whole = parts[0].clone().unwrap();
        whole.esm_class &= !0x40;
        whole.short_message = parts
            .iter()
            .flat_map(|p| p.as_ref().unwrap().short_message[6..].to_vec())
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
