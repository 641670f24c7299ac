//! Diagnosis of a body rusmpp refused: which field is wrong and the `command_status` the spec
//! prescribes for it, found by walking a copy of the body's front the way rusmpp parses it.

use rusmpp::CommandId;

use super::Status;

/// Octets of a body we keep aside for diagnosis: the mandatory fields before short_message
/// of a submit_sm/deliver_sm take at most 95, a bind at most 82.
pub(super) const DIAGNOSIS_PREFIX: usize = 128;

/// Whether a failed body of `id` is answered with a field-specific status (so its front is
/// worth copying before rusmpp consumes it).
pub(super) fn needs_diagnosis(id: CommandId) -> bool {
    matches!(
        id,
        CommandId::BindTransmitter
            | CommandId::BindReceiver
            | CommandId::BindTransceiver
            | CommandId::SubmitSm
            | CommandId::DeliverSm
            | CommandId::DataSm
    )
}

/// A cursor over the copied front of a body that checks SMPP field syntax the way rusmpp
/// does. `total` is the real body length, so fields past the copy can still be measured.
struct Walk<'a> {
    buf: &'a [u8],
    pos: usize,
    total: usize,
}

/// Why a walk step failed.
enum Stop {
    /// The field is wrong (too long, not terminated, not ASCII, or the body ends inside it).
    Bad,
    /// The field's content lies beyond our copy; the body itself may be fine here.
    OutOfCopy,
}

impl Walk<'_> {
    fn skip(&mut self, n: usize) -> Result<(), Stop> {
        if self.pos + n > self.total {
            return Err(Stop::Bad);
        }
        self.pos += n;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        if self.pos >= self.total {
            return Err(Stop::Bad);
        }
        let b = *self.buf.get(self.pos).ok_or(Stop::OutOfCopy)?;
        self.pos += 1;
        Ok(b)
    }

    /// A time field: empty, or exactly `max - 1` characters (rusmpp's
    /// `EmptyOrFullCOctetString`, as SMPP's absolute/relative time formats require).
    fn time(&mut self, max: usize) -> Result<(), Stop> {
        let start = self.pos;
        self.cstr(max)?;
        match self.pos - start {
            1 => Ok(()),
            n if n == max => Ok(()),
            _ => Err(Stop::Bad),
        }
    }

    /// A C-Octet String of at most `max` octets including the NUL.
    fn cstr(&mut self, max: usize) -> Result<(), Stop> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let window = &rest[..rest.len().min(max)];
        match window.iter().position(|&b| b == 0) {
            Some(i) if window[..i].is_ascii() => {
                self.pos += i + 1;
                Ok(())
            }
            Some(_) => Err(Stop::Bad),
            None if !window.is_ascii() => Err(Stop::Bad),
            None if window.len() >= max || self.pos + window.len() >= self.total => Err(Stop::Bad),
            None => Err(Stop::OutOfCopy),
        }
    }
}

/// Finds the first field of a failed body and the status the spec prescribes for it.
pub(super) fn diagnose(id: CommandId, prefix: &[u8], total: usize) -> (&'static str, Status) {
    let mut w = Walk {
        buf: prefix,
        pos: 0,
        total,
    };
    let fallback = ("body", Status::ESME_RSYSERR);
    let step = |r: Result<(), Stop>, field: &'static str, status: Status| match r {
        Ok(()) => None,
        Err(Stop::Bad) => Some((field, status)),
        Err(Stop::OutOfCopy) => Some(fallback),
    };
    macro_rules! check {
        ($r:expr, $field:literal, $status:ident) => {
            if let Some(found) = step($r, $field, Status::$status) {
                return found;
            }
        };
    }
    match id {
        CommandId::BindTransmitter | CommandId::BindReceiver | CommandId::BindTransceiver => {
            check!(w.cstr(16), "system_id", ESME_RINVSYSID);
            check!(w.cstr(9), "password", ESME_RINVPASWD);
            check!(w.cstr(13), "system_type", ESME_RINVSYSTYP);
            check!(w.skip(3), "interface_version", ESME_RBINDFAIL);
            check!(w.cstr(41), "address_range", ESME_RBINDFAIL);
            ("body", Status::ESME_RBINDFAIL)
        }
        CommandId::SubmitSm | CommandId::DeliverSm | CommandId::DataSm => {
            check!(w.cstr(6), "service_type", ESME_RINVSERTYP);
            check!(w.skip(2), "source_addr_ton", ESME_RINVSRCADR);
            check!(w.cstr(21), "source_addr", ESME_RINVSRCADR);
            check!(w.skip(2), "dest_addr_ton", ESME_RINVDSTADR);
            check!(w.cstr(21), "destination_addr", ESME_RINVDSTADR);
            if id == CommandId::DataSm {
                check!(w.skip(3), "esm_class", ESME_RINVMSGLEN);
            } else {
                check!(w.skip(3), "esm_class", ESME_RINVMSGLEN);
                check!(w.time(17), "schedule_delivery_time", ESME_RINVSCHED);
                check!(w.time(17), "validity_period", ESME_RINVEXPIRY);
                check!(w.skip(4), "data_coding", ESME_RINVMSGLEN);
                let sm_length = match w.u8() {
                    Ok(n) => usize::from(n),
                    Err(Stop::Bad) => return ("sm_length", Status::ESME_RINVMSGLEN),
                    Err(Stop::OutOfCopy) => return fallback,
                };
                check!(w.skip(sm_length), "short_message", ESME_RINVMSGLEN);
            }
            diagnose_tlvs(&mut w)
        }
        _ => fallback,
    }
}

/// Walks a TLV stream: every TLV needs a 4-octet header and its value inside the body, and
/// the fixed-size TLVs we read (sar_*) must have their spec length.
fn diagnose_tlvs(w: &mut Walk<'_>) -> (&'static str, Status) {
    loop {
        let left = w.total - w.pos;
        if left == 0 {
            // Every TLV is well formed; rusmpp refused one of the values.
            return ("tlvs", Status::ESME_RINVTLVVAL);
        }
        if left < 4 {
            return ("tlvs", Status::ESME_RINVTLVSTREAM);
        }
        let Some(head) = w.buf.get(w.pos..w.pos + 4) else {
            return ("body", Status::ESME_RSYSERR);
        };
        let tag = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let expected = match tag {
            TAG_SAR_MSG_REF_NUM => Some(2),
            TAG_SAR_TOTAL_SEGMENTS | TAG_SAR_SEGMENT_SEQNUM => Some(1),
            _ => None,
        };
        if expected.is_some_and(|n| n != len) {
            return ("tlvs", Status::ESME_RINVTLVLEN);
        }
        w.pos += 4;
        if w.skip(len).is_err() {
            return ("tlvs", Status::ESME_RINVTLVSTREAM);
        }
    }
}

const TAG_SAR_MSG_REF_NUM: u16 = 0x020C;
const TAG_SAR_TOTAL_SEGMENTS: u16 = 0x020E;
const TAG_SAR_SEGMENT_SEQNUM: u16 = 0x020F;

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::smpp::codec::{DEFAULT_MAX_PDU_LEN, decode, tests::raw_pdu};

    fn submit_body(
        service_type: &[u8],
        source: &[u8],
        dest: &[u8],
        sm: &[u8],
        tlvs: &[u8],
    ) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(service_type);
        b.extend_from_slice(&[1, 1]);
        b.extend_from_slice(source);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(dest);
        b.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority_flag
        b.extend_from_slice(&[0, 0]); // schedule, validity
        b.extend_from_slice(&[0, 0, 0, 0]); // registered_delivery .. sm_default_msg_id
        b.push(sm.len() as u8);
        b.extend_from_slice(sm);
        b.extend_from_slice(tlvs);
        b
    }

    fn status_of(id: u32, body: &[u8]) -> (Status, CommandId) {
        let mut buf = BytesMut::from(&raw_pdu(id, 1, body)[..]);
        let err = decode(&mut buf, DEFAULT_MAX_PDU_LEN).unwrap_err();
        assert!(buf.is_empty());
        let resp = err.response().unwrap();
        (resp.status, resp.pdu.command_id())
    }

    #[test]
    fn malformed_fields_get_precise_statuses() {
        let long = [b'9'; 30];
        let mut long_src = long.to_vec();
        long_src.push(0);
        assert_eq!(
            status_of(0x04, &submit_body(b"\0", &long_src, b"8103\0", b"x", &[])),
            (Status::ESME_RINVSRCADR, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(0x05, &submit_body(b"\0", b"1\0", &long_src, b"x", &[])),
            (Status::ESME_RINVDSTADR, CommandId::DeliverSmResp)
        );
        assert_eq!(
            status_of(
                0x04,
                &submit_body(b"TOOLONGTYPE\0", b"1\0", b"2\0", b"x", &[])
            ),
            (Status::ESME_RINVSERTYP, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(
                0x04,
                &submit_body(b"\0", b"1\0", b"2\0", b"x", &[0x04, 0x24, 0, 9, 1])
            ),
            (Status::ESME_RINVTLVSTREAM, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(
                0x04,
                &submit_body(b"\0", b"1\0", b"2\0", b"x", &[0x02, 0x0C, 0, 1, 7])
            ),
            (Status::ESME_RINVTLVLEN, CommandId::SubmitSmResp)
        );
        assert_eq!(
            status_of(0x04, &submit_body(b"\0", b"1\xC3\0", b"2\0", b"x", &[])),
            (Status::ESME_RINVSRCADR, CommandId::SubmitSmResp)
        );
        // validity_period must be empty or a full 16-character SMPP time.
        let mut body = submit_body(b"\0", b"1\0", b"2\0", b"x", &[]);
        let at = 1 + 2 + 2 + 2 + 2 + 3 + 1;
        body.splice(at..at + 1, b"2405011200\0".iter().copied());
        assert_eq!(
            status_of(0x04, &body),
            (Status::ESME_RINVEXPIRY, CommandId::SubmitSmResp)
        );
        // A long short_message cut short, past the diagnosis copy.
        let mut body = submit_body(b"\0", b"1\0", b"2\0", &[b'x'; 150], &[]);
        let at = body.len() - 151;
        body[at] = 200;
        assert_eq!(
            status_of(0x04, &body),
            (Status::ESME_RINVMSGLEN, CommandId::SubmitSmResp)
        );
        // bind_transceiver with a 20-character system_id.
        let mut bind = b"abcdefghijabcdefghij\0pw\0\0".to_vec();
        bind.extend_from_slice(&[0x34, 0, 0, 0]);
        assert_eq!(
            status_of(0x09, &bind),
            (Status::ESME_RINVSYSID, CommandId::BindTransceiverResp)
        );
        let mut bind = b"sys\0password-too-long\0\0".to_vec();
        bind.extend_from_slice(&[0x34, 0, 0, 0]);
        assert_eq!(
            status_of(0x02, &bind),
            (Status::ESME_RINVPASWD, CommandId::BindTransmitterResp)
        );
    }
}
