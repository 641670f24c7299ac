//! What the admin API asks of Redis besides grants: a permit by id (the index `icaze_grant`
//! writes), revocations (a key per permit and a stream every node follows), one command at
//! a time, off the hot path.

use super::RedisStore;
use super::backend::Backend;
use super::error::RedisError;
use super::pipeline::{KEY_PREFIX, abbreviate, permit_key, revoked_key};
use crate::permit::document::Document;
use crate::permit::engine::blocks::{Block, from_words, words};
use crate::permit::id::PermitId;
use crate::store::GrantRecord;
use redis::Value;
use redis::aio::ConnectionLike;
use std::sync::Arc;

/// Revocations the stream keeps (older ones are trimmed; their permits have long ended).
const STREAM_MAX: u64 = 100_000;
/// How long a revoked key outlives its permit, seconds.
const REVOKED_KEEP: i64 = 2 * 86_400;

/// A revocation as Redis keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisRevocation {
    /// The revoked permit's id.
    pub id: PermitId,
    /// The permit.
    pub grant: GrantRecord,
    /// When, Unix seconds.
    pub at: i64,
    /// Why.
    pub reason: String,
}

fn blocks_key() -> String {
    format!("{KEY_PREFIX}blocks")
}

/// A block as `icaze:blocks` keeps it: `W0 W1 W2 W3 AT UNTIL REASON` (code bitset words in
/// hex, `UNTIL` 0 for never).
fn block_value(b: &Block) -> String {
    let w = words(b.codes);
    format!(
        "{:x} {:x} {:x} {:x} {} {} {}",
        w[0],
        w[1],
        w[2],
        w[3],
        b.at,
        b.until.unwrap_or(0),
        b.reason
    )
}

fn parse_block(value: &str) -> Option<Block> {
    let mut f = value.splitn(7, ' ');
    let mut w = [0u64; 4];
    for word in &mut w {
        *word = u64::from_str_radix(f.next()?, 16).ok()?;
    }
    let at = f.next()?.parse().ok()?;
    let until: i64 = f.next()?.parse().ok()?;
    Some(Block {
        codes: from_words(w),
        at,
        until: (until != 0).then_some(until),
        reason: f.next().unwrap_or_default().to_string(),
    })
}

fn rules_key() -> String {
    format!("{KEY_PREFIX}rules")
}

fn stream_key() -> String {
    format!("{KEY_PREFIX}revocations")
}

/// Days the stats keys live.
const STATS_KEEP_SECS: i64 = 8 * 86_400;

impl Backend {
    /// Runs a pipeline whose keys share one slot (a cluster routes it by its first key).
    pub(super) async fn pipeline(
        &self,
        action: &'static str,
        pipe: redis::Pipeline,
    ) -> Result<(), RedisError> {
        let n = pipe.len();
        let (node, result) = match self {
            Backend::Single(b) => (
                b.node.clone(),
                b.conn().req_packed_commands(&pipe, 0, n).await,
            ),
            Backend::Cluster(b) => b.pipeline(&pipe).await,
        };
        let replies = result.map_err(|source| RedisError::Command {
            action,
            node: node.clone(),
            source: Arc::new(source),
        })?;
        for reply in replies {
            reply
                .extract_error()
                .map_err(|source| RedisError::Command {
                    action,
                    node: node.clone(),
                    source: Arc::new(source),
                })?;
        }
        Ok(())
    }

    /// Runs one command (a cluster routes it by its first key, and follows one `MOVED`: a
    /// cluster that has just formed or failed over may still send a command to a node whose
    /// slot map is older).
    pub(super) async fn command(
        &self,
        action: &'static str,
        cmd: redis::Cmd,
    ) -> Result<Value, RedisError> {
        let (node, result) = match self {
            Backend::Single(b) => (b.node.clone(), b.command(&cmd).await),
            Backend::Cluster(b) => b.command(&cmd).await,
        };
        result.map_err(|source| RedisError::Command {
            action,
            node,
            source: Arc::new(source),
        })
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// `DOCUMENT CODE FROM UNTIL` as the grant function writes it (the phone is not in the
/// index: status lists keep it, see `citizens.rs`).
fn parse_permit(value: &str) -> Option<GrantRecord> {
    let mut f = value.split(' ');
    let grant = GrantRecord {
        document: Document::parse_canonical(f.next()?).ok()?,
        code: f.next()?.parse().ok()?,
        from: f.next()?.parse().ok()?,
        until: f.next()?.parse().ok()?,
        phone: crate::permit::id::PhoneTag::NONE,
    };
    f.next().is_none().then_some(grant)
}

impl RedisStore {
    pub(super) fn unexpected(&self, action: &'static str, reply: &Value) -> RedisError {
        RedisError::UnexpectedReply {
            action,
            node: self.inner.backend.label(),
            reply: abbreviate(reply),
        }
    }

    /// The permit with this id, if any node granted it (standalone Redis with the index
    /// on), and its revocation `(at, reason)` if it was revoked.
    pub async fn permit(
        &self,
        id: PermitId,
    ) -> Result<Option<(GrantRecord, Option<(i64, String)>)>, RedisError> {
        let backend = &self.inner.backend;
        let mut get = redis::cmd("GET");
        get.arg(permit_key(id));
        let value = backend.command("GET of a permit", get).await?;
        let grant = match &value {
            Value::Nil => return Ok(None),
            v => text(v)
                .and_then(|t| parse_permit(&t))
                .ok_or_else(|| self.unexpected("GET of a permit", v))?,
        };
        Ok(Some((grant, self.revocation(id).await?)))
    }

    /// The revocation `(at, reason)` of `id`, if it was revoked on any node.
    pub async fn revocation(&self, id: PermitId) -> Result<Option<(i64, String)>, RedisError> {
        let mut get = redis::cmd("GET");
        get.arg(revoked_key(id));
        let value = self
            .inner
            .backend
            .command("GET of a revocation", get)
            .await?;
        match &value {
            Value::Nil => Ok(None),
            v => text(v)
                .and_then(|t| {
                    let (at, reason) = t.split_once(' ')?;
                    Some((at.parse().ok()?, reason.to_string()))
                })
                .map(Some)
                .ok_or_else(|| self.unexpected("GET of a revocation", v)),
        }
    }

    /// Revokes a permit for every node: its revoked key (what verification reads), then an
    /// entry on the revocations stream (what each node's engine follows). Durable as far as
    /// Redis's own persistence goes (`appendfsync always`).
    pub async fn revoke(&self, r: &RedisRevocation) -> Result<(), RedisError> {
        let backend = &self.inner.backend;
        let mut set = redis::cmd("SET");
        set.arg(revoked_key(r.id))
            .arg(format!("{} {}", r.at, r.reason))
            .arg("EXAT")
            .arg(r.grant.until.max(r.at) + REVOKED_KEEP);
        backend.command("SET of a revocation", set).await?;
        let mut add = redis::cmd("XADD");
        add.arg(stream_key())
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAX)
            .arg("*")
            .arg("id")
            .arg(r.id.to_string())
            .arg("permit")
            .arg(format!(
                "{} {} {} {}",
                r.grant.document, r.grant.code, r.grant.from, r.grant.until
            ))
            .arg("at")
            .arg(r.at)
            .arg("reason")
            .arg(&r.reason);
        backend.command("XADD of a revocation", add).await?;
        Ok(())
    }

    /// Sets (`Some`) or lifts (`None`) the run-time block of `document` for every node.
    pub async fn block(&self, document: Document, block: Option<&Block>) -> Result<(), RedisError> {
        let cmd = match block {
            Some(b) => {
                let mut c = redis::cmd("HSET");
                c.arg(blocks_key())
                    .arg(document.to_string())
                    .arg(block_value(b));
                c
            }
            None => {
                let mut c = redis::cmd("HDEL");
                c.arg(blocks_key()).arg(document.to_string());
                c
            }
        };
        self.inner
            .backend
            .command("a blocklist change", cmd)
            .await?;
        Ok(())
    }

    /// Every run-time block, as every node shares them.
    pub async fn blocks(&self) -> Result<Vec<(Document, Block)>, RedisError> {
        let mut all = redis::cmd("HGETALL");
        all.arg(blocks_key());
        let reply = self.inner.backend.command("HGETALL of blocks", all).await?;
        let pairs: Vec<(&Value, &Value)> = match &reply {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| Some((kv.first()?, kv.get(1)?)))
                .collect(),
            Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
            other => return Err(self.unexpected("HGETALL of blocks", other)),
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let parsed = text(k)
                .and_then(|d| Document::parse_canonical(&d).ok())
                .zip(text(v).and_then(|t| parse_block(&t)));
            match parsed {
                Some(entry) => out.push(entry),
                None => return Err(self.unexpected("HGETALL of blocks", v)),
            }
        }
        Ok(out)
    }

    /// Adds one node's figures for `date` (YYYY-MM-DD) to the sums every node shares:
    /// `icaze:stats:{date}` (a hash of counters) and two HyperLogLogs of the documents and
    /// phones seen, kept 8 days.
    pub async fn add_stats(
        &self,
        date: &str,
        delta: &crate::gateway::stats::Delta,
    ) -> Result<(), RedisError> {
        let key = format!("{KEY_PREFIX}stats:{{{date}}}");
        let mut pipe = redis::pipe();
        for (field, n) in &delta.fields {
            pipe.cmd("HINCRBY").arg(&key).arg(field).arg(*n);
        }
        for (suffix, items) in [("d", &delta.documents), ("p", &delta.phones)] {
            for chunk in items.chunks(10_000) {
                let add = pipe.cmd("PFADD").arg(format!("{key}:{suffix}"));
                for item in chunk {
                    add.arg(format!("{item:x}"));
                }
            }
        }
        for suffix in ["", ":d", ":p"] {
            pipe.cmd("EXPIRE")
                .arg(format!("{key}{suffix}"))
                .arg(STATS_KEEP_SECS);
        }
        self.inner.backend.pipeline("adding stats", pipe).await
    }

    /// Every node's figures for `date`: the counters, distinct documents, distinct phones.
    pub async fn stats(
        &self,
        date: &str,
    ) -> Result<(std::collections::BTreeMap<String, u64>, u64, u64), RedisError> {
        let key = format!("{KEY_PREFIX}stats:{{{date}}}");
        let mut all = redis::cmd("HGETALL");
        all.arg(&key);
        let reply = self.inner.backend.command("HGETALL of stats", all).await?;
        let pairs: Vec<(&Value, &Value)> = match &reply {
            Value::Array(items) => items
                .chunks(2)
                .filter_map(|kv| Some((kv.first()?, kv.get(1)?)))
                .collect(),
            Value::Map(items) => items.iter().map(|(k, v)| (k, v)).collect(),
            other => return Err(self.unexpected("HGETALL of stats", other)),
        };
        let mut fields = std::collections::BTreeMap::new();
        for (k, v) in pairs {
            let n = text(v).and_then(|t| t.parse().ok());
            match (text(k), n) {
                (Some(k), Some(n)) => {
                    fields.insert(k, n);
                }
                _ => return Err(self.unexpected("HGETALL of stats", v)),
            }
        }
        let mut counts = [0u64; 2];
        for (i, suffix) in ["d", "p"].iter().enumerate() {
            let mut count = redis::cmd("PFCOUNT");
            count.arg(format!("{key}:{suffix}"));
            let reply = self
                .inner
                .backend
                .command("PFCOUNT of stats", count)
                .await?;
            counts[i] = match reply {
                Value::Int(n) => n.max(0) as u64,
                other => return Err(self.unexpected("PFCOUNT of stats", &other)),
            };
        }
        Ok((fields, counts[0], counts[1]))
    }

    /// Publishes a rules file for every node: its version and text in `icaze:rules`.
    pub async fn publish_rules(&self, version: &str, text: &str) -> Result<(), RedisError> {
        let mut set = redis::cmd("HSET");
        set.arg(rules_key())
            .arg("version")
            .arg(version)
            .arg("text")
            .arg(text);
        self.inner.backend.command("HSET of the rules", set).await?;
        Ok(())
    }

    /// The version of the rules last published, if any.
    pub async fn rules_version(&self) -> Result<Option<String>, RedisError> {
        let mut get = redis::cmd("HGET");
        get.arg(rules_key()).arg("version");
        let reply = self.inner.backend.command("HGET of the rules", get).await?;
        Ok(text(&reply))
    }

    /// The rules last published: version and text.
    pub async fn rules(&self) -> Result<Option<(String, String)>, RedisError> {
        let mut get = redis::cmd("HMGET");
        get.arg(rules_key()).arg("version").arg("text");
        let reply = self
            .inner
            .backend
            .command("HMGET of the rules", get)
            .await?;
        match &reply {
            Value::Array(v) if v.len() == 2 => Ok(text(&v[0]).zip(text(&v[1]))),
            other => Err(self.unexpected("HMGET of the rules", other)),
        }
    }

    /// The revocations after stream entry `cursor` (`"0"` for all), at most 1000, and the
    /// cursor to ask from next time.
    pub async fn revocations_after(
        &self,
        cursor: &str,
    ) -> Result<(String, Vec<RedisRevocation>), RedisError> {
        let mut range = redis::cmd("XRANGE");
        range
            .arg(stream_key())
            .arg(format!("({cursor}"))
            .arg("+")
            .arg("COUNT")
            .arg(1000);
        let reply = self
            .inner
            .backend
            .command("XRANGE of revocations", range)
            .await?;
        let Value::Array(entries) = &reply else {
            return Err(self.unexpected("XRANGE of revocations", &reply));
        };
        let mut next = cursor.to_string();
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let parsed = (|| {
                let Value::Array(pair) = entry else {
                    return None;
                };
                let id = text(pair.first()?)?;
                let Value::Array(fields) = pair.get(1)? else {
                    return None;
                };
                let field = |name: &str| {
                    fields
                        .chunks(2)
                        .find(|kv| text(&kv[0]).as_deref() == Some(name))
                        .and_then(|kv| kv.get(1).and_then(text))
                };
                let permit = PermitId::parse(&field("id")?)?;
                let grant = parse_permit(&field("permit")?)?;
                let at = field("at")?.parse().ok()?;
                Some((id, permit, grant, at, field("reason").unwrap_or_default()))
            })();
            let Some((entry_id, id, grant, at, reason)) = parsed else {
                return Err(self.unexpected("XRANGE of revocations", entry));
            };
            next = entry_id;
            out.push(RedisRevocation {
                id,
                grant,
                at,
                reason,
            });
        }
        Ok((next, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permit_values_parse() {
        let g = parse_permit("AZE11111111 2 1586152800 1586163600").unwrap();
        assert_eq!(g.code, 2);
        assert_eq!(g.until - g.from, 10_800);
        assert_eq!(parse_permit("AZE11111111 2 1586152800"), None);
        assert_eq!(parse_permit("AZE11111111 2 1 2 3"), None);
        let mut codes = crate::permit::rules::CodeSet::default();
        codes.insert(3);
        let b = Block {
            codes,
            reason: "abuse of code 3".into(),
            at: 5,
            until: None,
        };
        assert_eq!(parse_block(&block_value(&b)), Some(b));
    }
}
