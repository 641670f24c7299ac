//! SMPP `command_status`: names, codes, and whether a retry can help. A leaf that imports
//! nothing, so every layer (codec, text, session, gateway, simulators) can use it without an
//! import circle.

use std::fmt;

/// SMPP `command_status`. A newtype rather than rusmpp's enum so unknown codes from peers
/// survive unchanged, the constants read like the spec, and a status knows whether a retry
/// can help.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Status(pub u32);

macro_rules! statuses {
    ($($name:ident = $code:expr, $doc:literal;)*) => {
        impl Status {
            $(
                #[doc = $doc]
                pub const $name: Status = Status($code);
            )*

            /// The spec's name for a known status, for logs and metrics labels.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($code => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

statuses! {
    ESME_ROK = 0x0000_0000, "No error.";
    ESME_RINVMSGLEN = 0x0000_0001, "Message length is invalid.";
    ESME_RINVCMDLEN = 0x0000_0002, "Command length is invalid.";
    ESME_RINVCMDID = 0x0000_0003, "Invalid command ID.";
    ESME_RINVBNDSTS = 0x0000_0004, "Incorrect bind status for the given command.";
    ESME_RALYBND = 0x0000_0005, "ESME already in bound state.";
    ESME_RINVPRTFLG = 0x0000_0006, "Invalid priority flag.";
    ESME_RINVREGDLVFLG = 0x0000_0007, "Invalid registered_delivery flag.";
    ESME_RSYSERR = 0x0000_0008, "System error: ours, not the peer's; a retry may succeed.";
    ESME_RINVSRCADR = 0x0000_000A, "Invalid source address.";
    ESME_RINVDSTADR = 0x0000_000B, "Invalid destination address.";
    ESME_RINVMSGID = 0x0000_000C, "Message ID is invalid.";
    ESME_RBINDFAIL = 0x0000_000D, "Bind failed.";
    ESME_RINVPASWD = 0x0000_000E, "Invalid password.";
    ESME_RINVSYSID = 0x0000_000F, "Invalid system_id.";
    ESME_RMSGQFUL = 0x0000_0014, "Message queue full: back off and retry.";
    ESME_RINVSERTYP = 0x0000_0015, "Invalid service_type.";
    ESME_RINVESMCLASS = 0x0000_0043, "Invalid esm_class.";
    ESME_RSUBMITFAIL = 0x0000_0045, "submit_sm or submit_multi failed.";
    ESME_RINVSRCTON = 0x0000_0048, "Invalid source address TON.";
    ESME_RINVSRCNPI = 0x0000_0049, "Invalid source address NPI.";
    ESME_RINVDSTTON = 0x0000_0050, "Invalid destination address TON.";
    ESME_RINVDSTNPI = 0x0000_0051, "Invalid destination address NPI.";
    ESME_RINVSYSTYP = 0x0000_0053, "Invalid system_type.";
    ESME_RTHROTTLED = 0x0000_0058, "Throttling error: the peer exceeded its allowed rate.";
    ESME_RINVSCHED = 0x0000_0061, "Invalid scheduled delivery time.";
    ESME_RINVEXPIRY = 0x0000_0062, "Invalid validity period.";
    ESME_RX_T_APPN = 0x0000_0064, "ESME receiver temporary application error.";
    ESME_RX_P_APPN = 0x0000_0065, "ESME receiver permanent application error.";
    ESME_RX_R_APPN = 0x0000_0066, "ESME receiver reject message error.";
    ESME_RINVTLVSTREAM = 0x0000_00C0, "Error in the optional part of the PDU body.";
    ESME_RTLVNOTALLWD = 0x0000_00C1, "TLV not allowed.";
    ESME_RINVTLVLEN = 0x0000_00C2, "Invalid parameter length.";
    ESME_RMISSINGTLV = 0x0000_00C3, "Expected TLV missing.";
    ESME_RINVTLVVAL = 0x0000_00C4, "Invalid TLV value.";
    ESME_RDELIVERYFAILURE = 0x0000_00FE, "Transaction delivery failure.";
    ESME_RUNKNOWNERR = 0x0000_00FF, "Unknown error.";
    ESME_RINVDCS = 0x0000_0104, "Invalid data coding scheme (SMPP 5.0).";
}

impl Status {
    /// The raw code on the wire.
    pub const fn code(self) -> u32 {
        self.0
    }

    /// `ESME_ROK`: the request succeeded.
    pub const fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// Whether resending the same PDU later can succeed: congestion and temporary failures,
    /// as opposed to a malformed or refused request. Outbound queues retry exactly these.
    pub const fn is_transient(self) -> bool {
        matches!(
            self,
            Status::ESME_RSYSERR
                | Status::ESME_RMSGQFUL
                | Status::ESME_RTHROTTLED
                | Status::ESME_RX_T_APPN
        )
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}({:#x})", self.0),
            None => write!(f, "command_status({:#x})", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_and_retry() {
        assert_eq!(Status::ESME_RTHROTTLED.to_string(), "ESME_RTHROTTLED(0x58)");
        assert_eq!(format!("{:?}", Status::ESME_ROK), "ESME_ROK(0x0)");
        assert_eq!(Status(0x1234).to_string(), "command_status(0x1234)");
        assert_eq!(Status::ESME_RINVDCS.code(), 0x104);
        assert_eq!(Status::ESME_RINVDCS.name(), Some("ESME_RINVDCS"));
        assert!(Status::ESME_ROK.is_ok() && !Status::ESME_RSYSERR.is_ok());
        assert!(Status::ESME_RTHROTTLED.is_transient());
        assert!(!Status::ESME_RINVSRCADR.is_transient());
    }
}
