//! What every node must share about citizens beyond quotas: each phone's documents of the
//! day (`max_documents_per_phone`) and each document's permits of the day with the phone
//! that asked (status requests), so a phone that moves between nodes meets the same limit
//! and the same list.
//!
//! # Keys
//! - `icaze:phone:{TAG}`: a set of the documents (canonical form) phone `TAG` (hex of its
//!   keyed tag, never the number) was let have today, changed only by `icaze_phone`, which
//!   checks and adds in one step; it expires with the day's other keys.
//! - `icaze:{AZE11111111}:status`: a list of `CODE FROM UNTIL PHONE` (phone in hex), one
//!   per permit granted today, appended by `icaze_note` once its grant is decided and before
//!   the MO is acknowledged; in the document's slot, so a cluster keeps it beside its quota.
//!
//! A document is counted against a phone when it is sent to Redis as a possible grant, so a
//! document another node granted first (the answer is then "already active") counts too. A
//! status entry is written right after its grant, not in the same call: a node stopping in
//! between leaves that permit out of status answers (the permit itself is durable).

use super::RedisStore;
use super::error::RedisError;
use crate::permit::decision::Validity;
use crate::permit::document::Document;
use crate::permit::id::PhoneTag;
use redis::Value;

/// One possible grant's question for `icaze_phone`.
#[derive(Debug, Clone, Copy)]
pub struct PhoneAsk {
    /// The asking phone.
    pub phone: PhoneTag,
    /// The document it asks for.
    pub document: Document,
    /// `max_documents_per_phone`.
    pub max: u32,
    /// When the phone's set may go (the day's end plus the longest validity), Unix seconds.
    pub expire_at: i64,
}

/// One permit of a document, as a status request reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusEntry {
    /// The permit's code.
    pub code: u8,
    /// Its window.
    pub validity: Validity,
    /// The phone that asked.
    pub phone: PhoneTag,
}

fn phone_key(phone: PhoneTag) -> String {
    format!("icaze:phone:{{{:x}}}", phone.0)
}

fn status_key(document: Document) -> String {
    format!("icaze:{{{document}}}:status")
}

impl RedisStore {
    /// For each ask, whether its phone may have its document today, the document counted
    /// for the phone when it may (all asks at once, each its own command: a phone's key is
    /// in its own slot).
    pub async fn phone_admits(&self, asks: &[PhoneAsk]) -> Result<Vec<bool>, RedisError> {
        let backend = &self.inner.backend;
        let calls = asks.iter().map(|a| {
            let mut call = redis::cmd("FCALL");
            call.arg("icaze_phone")
                .arg(1)
                .arg(phone_key(a.phone))
                .arg(a.document.to_string())
                .arg(a.max)
                .arg(a.expire_at);
            async move { backend.command("FCALL icaze_phone", call).await }
        });
        let mut out = Vec::with_capacity(asks.len());
        for answer in futures_util::future::join_all(calls).await {
            match answer? {
                Value::Int(n) => out.push(n == 1),
                other => return Err(self.unexpected("FCALL icaze_phone", &other)),
            }
        }
        Ok(out)
    }

    /// Adds each granted permit to its document's status list (see the module docs).
    pub async fn note_grants(
        &self,
        grants: &[(Document, u8, Validity, PhoneTag, i64)],
    ) -> Result<(), RedisError> {
        let backend = &self.inner.backend;
        let calls = grants.iter().map(|&(document, code, v, phone, expire_at)| {
            let mut call = redis::cmd("FCALL");
            call.arg("icaze_note")
                .arg(1)
                .arg(status_key(document))
                .arg(format!("{code} {} {} {:x}", v.from, v.until, phone.0))
                .arg(expire_at.max(v.until));
            async move { backend.command("FCALL icaze_note", call).await }
        });
        for written in futures_util::future::join_all(calls).await {
            written?;
        }
        Ok(())
    }

    /// The permits of `document` every node noted today (see [`RedisStore::note_grants`]).
    pub async fn status_of(&self, document: Document) -> Result<Vec<StatusEntry>, RedisError> {
        let mut range = redis::cmd("LRANGE");
        range.arg(status_key(document)).arg(0).arg(-1);
        let reply = self
            .inner
            .backend
            .command("LRANGE of a status list", range)
            .await?;
        let Value::Array(items) = &reply else {
            return Err(self.unexpected("LRANGE of a status list", &reply));
        };
        Ok(items.iter().filter_map(parse_entry).collect())
    }
}

/// `CODE FROM UNTIL PHONE` as `icaze_note` keeps it.
fn parse_entry(value: &Value) -> Option<StatusEntry> {
    let text = match value {
        Value::BulkString(b) => std::str::from_utf8(b).ok()?,
        Value::SimpleString(s) => s.as_str(),
        _ => return None,
    };
    let mut f = text.split(' ');
    let entry = StatusEntry {
        code: f.next()?.parse().ok()?,
        validity: Validity {
            from: f.next()?.parse().ok()?,
            until: f.next()?.parse().ok()?,
        },
        phone: PhoneTag(u64::from_str_radix(f.next()?, 16).ok()?),
    };
    f.next().is_none().then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_entries() {
        let doc = Document::parse_canonical("AZE11111111").unwrap();
        assert_eq!(status_key(doc), "icaze:{AZE11111111}:status");
        assert_eq!(phone_key(PhoneTag(0xbeef)), "icaze:phone:{beef}");
        let entry = Value::BulkString(b"2 100 200 beef".to_vec());
        assert_eq!(
            parse_entry(&entry),
            Some(StatusEntry {
                code: 2,
                validity: Validity {
                    from: 100,
                    until: 200
                },
                phone: PhoneTag(0xbeef)
            })
        );
        assert_eq!(parse_entry(&Value::BulkString(b"2 100".to_vec())), None);
    }
}
