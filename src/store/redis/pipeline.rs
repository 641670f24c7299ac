//! One attempt's pipeline: which asks go in which `FCALL`, their keys and arguments, and
//! what each reply means for each ask (a verdict, a fault worth retrying, or a final error).

use super::GrantAsk;
use super::RedisVerdict;
use super::batch::{AskOutcome, Fault, Pending, Repairs};
use super::error::RedisError;
use super::options::WaitAof;
use crate::permit::engine::Validity;
use redis::{ErrorKind, ServerErrorKind, Value};
use std::fmt::Write as _;
use std::sync::Arc;

/// The function that decides asks.
pub(super) const FUNCTION: &str = "icaze_grant";
/// Most asks in one `FCALL`. A call's fixed cost (parsing, function set-up, propagation to
/// the AOF) is shared by its asks, which is most of a standalone Redis's throughput; a call
/// of 64 asks holds the server for a few hundred microseconds at most.
pub(super) const ASKS_PER_CALL: usize = 64;
/// Prefix of every key the store writes.
pub(super) const KEY_PREFIX: &str = "icaze:";

/// Which asks go in which `FCALL` of a pipeline.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Plan {
    /// Indices into the pending asks, call after call, each call's in the order asked.
    pub(super) asks: Vec<usize>,
    /// Where each call's asks end in `asks`.
    pub(super) ends: Vec<usize>,
}

impl Plan {
    /// For a standalone Redis: any asks can share a call, [`ASKS_PER_CALL`] at most.
    pub(super) fn chunked(todo: &[usize]) -> Plan {
        let ends = (1..=todo.len().div_ceil(ASKS_PER_CALL))
            .map(|n| (n * ASKS_PER_CALL).min(todo.len()))
            .collect();
        Plan {
            asks: todo.to_vec(),
            ends,
        }
    }

    /// For a cluster node: a call's keys must all be in one slot, so one call per slot (a
    /// document's asks together, in the order asked), [`ASKS_PER_CALL`] at most.
    pub(super) fn by_slot(mut asks: Vec<(u16, usize)>) -> Plan {
        // Stable: within a slot the order asked is kept.
        asks.sort_by_key(|&(slot, _)| slot);
        let mut plan = Plan::default();
        let mut start = 0;
        for (n, &(slot, i)) in asks.iter().enumerate() {
            if n > start && (slot != asks[start].0 || n - start == ASKS_PER_CALL) {
                plan.ends.push(n);
                start = n;
            }
            plan.asks.push(i);
        }
        if !asks.is_empty() {
            plan.ends.push(asks.len());
        }
        plan
    }

    /// Each call's asks.
    fn calls(&self) -> impl Iterator<Item = &[usize]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(start, end)| &self.asks[start..end])
    }
}

/// The pipeline of a plan: one `FCALL icaze_grant` per call, then `WAITAOF` if configured.
pub(super) fn pipeline(
    pending: &[Pending],
    plan: &Plan,
    waitaof: Option<WaitAof>,
) -> redis::Pipeline {
    let mut pipe = redis::Pipeline::with_capacity(plan.ends.len() + 1);
    let mut group = String::with_capacity(40);
    let mut grant = String::with_capacity(40);
    let mut id = [0u8; 16];
    for call in plan.calls() {
        // Every ask of one store has a permit id or none does.
        let indexed = call.iter().all(|&i| pending[i].permit.is_some());
        let per_ask = if indexed { 3 } else { 2 };
        let fcall = pipe.cmd("FCALL").arg(FUNCTION).arg(per_ask * call.len());
        for &i in call {
            keys(&pending[i].ask, &mut group, &mut grant);
            fcall.arg(group.as_str()).arg(grant.as_str());
            if let (true, Some(permit)) = (indexed, pending[i].permit) {
                fcall.arg(permit_key(permit));
            }
        }
        for &i in call {
            let p = &pending[i];
            fcall
                .arg(p.ask.now)
                .arg(p.ask.until())
                .arg(p.ask.limit.map_or(-1, i64::from))
                .arg(p.ask.day_start)
                .arg(p.expire_at)
                .arg(hex(p.id, &mut id));
            if indexed {
                fcall.arg(format!(
                    "{} {} {} {}",
                    p.ask.document,
                    p.ask.code,
                    p.ask.now,
                    p.ask.until()
                ));
            }
        }
    }
    if let Some(w) = waitaof {
        let timeout = w.timeout.as_millis().max(1) as u64;
        if w.received_only {
            pipe.cmd("WAIT").arg(w.replicas).arg(timeout);
        } else {
            pipe.cmd("WAITAOF")
                .arg(w.local)
                .arg(w.replicas)
                .arg(timeout);
        }
    }
    pipe
}

/// The key of the permit index entry of `id`.
pub(super) fn permit_key(id: crate::permit::id::PermitId) -> String {
    format!("{KEY_PREFIX}permit:{{{id}}}")
}

/// The key that marks `id` revoked.
pub(super) fn revoked_key(id: crate::permit::id::PermitId) -> String {
    format!("{KEY_PREFIX}revoked:{{{id}}}")
}

/// `n` in lower-case hex without leading zeros, in `buf`.
pub(super) fn hex(n: u64, buf: &mut [u8; 16]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = DIGITS[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Writes the ask's group key and grant key (the same key unless the group is shared).
pub(super) fn keys(ask: &GrantAsk, group: &mut String, grant: &mut String) {
    group.clear();
    grant.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        group,
        "{KEY_PREFIX}{{{}}}:g:{}",
        ask.document, ask.group_tag
    );
    if ask.shared {
        let _ = write!(grant, "{KEY_PREFIX}{{{}}}:c:{}", ask.document, ask.code);
    } else {
        grant.push_str(group);
    }
}

/// The outcomes of a plan's asks from its pipeline's result, as (index, outcome).
pub(super) fn outcomes(
    pending: &[Pending],
    plan: &Plan,
    node: &str,
    result: redis::RedisResult<Vec<Value>>,
    waitaof: Option<WaitAof>,
    repairs: &mut Repairs,
) -> Vec<(usize, AskOutcome)> {
    let calls = plan.ends.len();
    let values = match result {
        Ok(values) if values.len() == calls + usize::from(waitaof.is_some()) => values,
        Ok(values) => {
            let error = RedisError::UnexpectedReply {
                action: "a pipeline of FCALLs",
                node: node.to_string(),
                reply: format!("{} replies to {} commands", values.len(), calls),
            };
            return plan
                .asks
                .iter()
                .map(|&i| (i, AskOutcome::Failed(error.clone())))
                .collect();
        }
        Err(error) => {
            // The whole pipeline failed (connection lost, timed out, or redirected): some
            // calls may have run, and a retry finds their grants.
            note_repairs(&error, repairs);
            let error = Arc::new(error);
            return plan
                .asks
                .iter()
                .map(|&i| (i, call_failed(node, &error)))
                .collect();
        }
    };
    let mut values = values.into_iter();
    let mut outs = Vec::with_capacity(plan.asks.len());
    for (call, value) in plan.calls().zip(values.by_ref()) {
        call_outcomes(pending, call, node, value, repairs, &mut outs);
    }
    if let (Some(wait), Some(reply)) = (waitaof, values.next())
        && let Some(fault) = check_waitaof(wait, node, reply)
    {
        // Nothing of this pipeline is confirmed durable: none of it may be acknowledged.
        for (_, out) in &mut outs {
            if matches!(out, AskOutcome::Done(_)) {
                *out = AskOutcome::Retry(fault.clone());
            }
        }
    }
    outs
}

/// The outcome of an ask whose call failed with `error`: retry if Redis can recover.
fn call_failed(node: &str, error: &Arc<redis::RedisError>) -> AskOutcome {
    if recoverable(error) {
        AskOutcome::Retry(Fault::Redis {
            node: node.to_string(),
            error: error.clone(),
        })
    } else {
        AskOutcome::Failed(RedisError::Command {
            action: "FCALL icaze_grant",
            node: node.to_string(),
            source: error.clone(),
        })
    }
}

/// The outcomes of one call's asks from its reply: an array with one verdict per ask, or an
/// error for all of them.
fn call_outcomes(
    pending: &[Pending],
    call: &[usize],
    node: &str,
    value: Value,
    repairs: &mut Repairs,
    outs: &mut Vec<(usize, AskOutcome)>,
) {
    match value {
        Value::Array(items) if items.len() == 3 * call.len() => {
            for (&i, item) in call.iter().zip(items.chunks_exact(3)) {
                let outcome = match parse_verdict(item) {
                    Some(Ok(verdict)) => AskOutcome::Done(verdict),
                    Some(Err(Unreadable)) => AskOutcome::Failed(RedisError::CorruptState {
                        document: pending[i].ask.document.masked(),
                    }),
                    None => AskOutcome::Failed(RedisError::UnexpectedReply {
                        action: "FCALL icaze_grant",
                        node: node.to_string(),
                        reply: format!("{item:?}"),
                    }),
                };
                outs.push((i, outcome));
            }
        }
        Value::ServerError(server) => {
            let error = redis::RedisError::from(server);
            note_repairs(&error, repairs);
            let error = Arc::new(error);
            outs.extend(call.iter().map(|&i| (i, call_failed(node, &error))));
        }
        other => {
            let error = RedisError::UnexpectedReply {
                action: "FCALL icaze_grant",
                node: node.to_string(),
                reply: abbreviate(&other),
            };
            outs.extend(call.iter().map(|&i| (i, AskOutcome::Failed(error.clone()))));
        }
    }
}

/// Whether a retry can help with `error` (after the repairs [`note_repairs`] asks for).
pub(super) fn recoverable(error: &redis::RedisError) -> bool {
    if missing_function(error) {
        return true;
    }
    match error.kind() {
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound | ErrorKind::Parse => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::Moved
                | ServerErrorKind::Ask
        ),
        _ => false,
    }
}

/// Whether Redis said the function is not loaded (a server restarted without its data, a
/// new primary, a `FUNCTION FLUSH`).
fn missing_function(error: &redis::RedisError) -> bool {
    error
        .detail()
        .is_some_and(|d| d.contains("Function not found"))
}

/// Records what `error` says needs repairing.
fn note_repairs(error: &redis::RedisError, repairs: &mut Repairs) {
    if missing_function(error) {
        repairs.reload_library = true;
    }
    // A node that cannot be reached may have been replaced (a failover): the slot map says.
    if matches!(
        error.kind(),
        ErrorKind::Io
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::Moved
                    | ServerErrorKind::Ask
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
            )
    ) {
        repairs.refresh_slots = true;
    }
}

/// An ask's keys hold values icaze did not write.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Unreadable;

/// The verdict in one ask's three numbers: `0 from until`, `1 from until`, `2 limit 0`, or
/// `3 0 0` for [`Unreadable`]; `None` for anything else.
pub(super) fn parse_verdict(item: &[Value]) -> Option<Result<RedisVerdict, Unreadable>> {
    let [Value::Int(kind), Value::Int(a), Value::Int(b)] = item else {
        return None;
    };
    let verdict = match kind {
        0 => RedisVerdict::Granted(Validity {
            from: *a,
            until: *b,
        }),
        1 => RedisVerdict::Active(Validity {
            from: *a,
            until: *b,
        }),
        2 => RedisVerdict::DailyLimit {
            limit: u32::try_from(*a).ok()?,
        },
        3 => return Some(Err(Unreadable)),
        _ => return None,
    };
    Some(Ok(verdict))
}

/// `None` if `WAITAOF` confirmed enough; else why not, as a fault to retry.
pub(super) fn check_waitaof(wait: WaitAof, node: &str, reply: Value) -> Option<Fault> {
    let counts = match &reply {
        // `WAIT`: how many replicas have the writes.
        Value::Int(replicas) if wait.received_only => Some((0, *replicas)),
        Value::Array(items) => match items.as_slice() {
            [Value::Int(local), Value::Int(replicas)] => Some((*local, *replicas)),
            _ => None,
        },
        _ => None,
    };
    match counts {
        Some((local, replicas))
            if local >= i64::from(wait.local) && replicas >= i64::from(wait.replicas) =>
        {
            None
        }
        Some((local, replicas)) => Some(Fault::NotDurable(RedisError::NotDurable {
            node: node.to_string(),
            local: u32::try_from(local).unwrap_or(0),
            replicas: u32::try_from(replicas).unwrap_or(0),
            wanted_local: wait.local,
            wanted_replicas: wait.replicas,
        })),
        None => {
            let error = match reply {
                Value::ServerError(server) => redis::RedisError::from(server),
                other => redis::RedisError::from((
                    ErrorKind::UnexpectedReturnType,
                    "unexpected WAITAOF reply",
                    abbreviate(&other),
                )),
            };
            // Unconfirmed either way; the asks ran, so a retry finds them.
            Some(Fault::Redis {
                node: node.to_string(),
                error: Arc::new(error),
            })
        }
    }
}

/// A reply, shortened for an error message.
pub(super) fn abbreviate(value: &Value) -> String {
    let mut s = format!("{value:?}");
    if s.len() > 120 {
        let mut end = 120;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::super::cluster::key_slot;
    use super::super::tests::ask;
    use super::*;
    use std::time::Duration;

    #[test]
    fn keys_carry_the_document_as_hash_tag() {
        let (mut g, mut c) = (String::new(), String::new());
        keys(&ask(false), &mut g, &mut c);
        assert_eq!(g, "icaze:{AZE11111111}:g:2");
        assert_eq!(
            c, g,
            "a code with its own group keeps its permit in the group key"
        );
        keys(&ask(true), &mut g, &mut c);
        assert_eq!(g, "icaze:{AZE11111111}:g:1");
        assert_eq!(c, "icaze:{AZE11111111}:c:2");
        assert_eq!(key_slot(g.as_bytes()), key_slot(c.as_bytes()));
    }

    #[test]
    fn replies_parse() {
        let v = |items: [i64; 3]| items.map(Value::Int);
        assert_eq!(
            parse_verdict(&v([0, 10, 20])),
            Some(Ok(RedisVerdict::Granted(Validity {
                from: 10,
                until: 20
            })))
        );
        assert_eq!(
            parse_verdict(&v([1, 10, 20])),
            Some(Ok(RedisVerdict::Active(Validity {
                from: 10,
                until: 20
            })))
        );
        assert_eq!(
            parse_verdict(&v([2, 1, 0])),
            Some(Ok(RedisVerdict::DailyLimit { limit: 1 }))
        );
        assert_eq!(parse_verdict(&v([3, 0, 0])), Some(Err(Unreadable)));
        assert_eq!(parse_verdict(&v([4, 1, 0])), None);
        assert_eq!(parse_verdict(&v([2, -1, 0])), None);
        assert_eq!(
            parse_verdict(&[Value::Nil, Value::Int(1), Value::Int(2)]),
            None
        );
    }

    /// One ask in flight, as the pipeline tests send it.
    fn one_pending() -> Pending {
        Pending {
            ask: ask(true),
            expire_at: 1,
            id: 0xabc,
            job: 0,
            permit: None,
            give_up_at: tokio::time::Instant::now(),
        }
    }

    #[test]
    fn pipeline_ends_with_waitaof_when_asked() {
        let p = one_pending();
        let wait = WaitAof {
            local: 1,
            replicas: 1,
            timeout: Duration::from_millis(250),
            received_only: false,
        };
        let plan = Plan::chunked(&[0]);
        let pipe = pipeline(std::slice::from_ref(&p), &plan, Some(wait));
        assert_eq!(pipe.len(), 2);
        let packed = String::from_utf8_lossy(&pipe.get_packed_pipeline()).into_owned();
        assert!(packed.contains("FCALL") && packed.contains("icaze_grant"));
        assert!(packed.ends_with("$7\r\nWAITAOF\r\n$1\r\n1\r\n$1\r\n1\r\n$3\r\n250\r\n"));
        assert_eq!(pipeline(std::slice::from_ref(&p), &plan, None).len(), 1);
    }

    #[test]
    fn plans_split_calls() {
        let todo: Vec<usize> = (0..150).collect();
        let plan = Plan::chunked(&todo);
        assert_eq!(plan.ends, [64, 128, 150]);
        assert_eq!(plan.asks, todo);
        assert_eq!(Plan::chunked(&[]), Plan::default());
        let lens: Vec<usize> = plan.calls().map(<[usize]>::len).collect();
        assert_eq!(lens, [64, 64, 22]);

        // Per slot, in the order asked within a slot; a long slot is split too.
        let mut asks = vec![(7, 0), (3, 1), (7, 2), (3, 3)];
        asks.extend((4..70).map(|i| (9, i)));
        let plan = Plan::by_slot(asks);
        let calls: Vec<&[usize]> = plan.calls().collect();
        assert_eq!(calls[0], [1, 3]);
        assert_eq!(calls[1], [0, 2]);
        assert_eq!(calls[2].len(), 64);
        assert_eq!(calls[3], [68, 69]);
        assert_eq!(Plan::by_slot(Vec::new()), Plan::default());
    }

    #[test]
    fn waitaof_replies_are_checked() {
        let wait = WaitAof {
            local: 1,
            replicas: 1,
            timeout: Duration::from_millis(10),
            received_only: false,
        };
        let reply = |l, r| Value::Array(vec![Value::Int(l), Value::Int(r)]);
        assert!(check_waitaof(wait, "n", reply(1, 1)).is_none());
        assert!(check_waitaof(wait, "n", reply(1, 2)).is_none());
        assert!(matches!(
            check_waitaof(wait, "n", reply(1, 0)),
            Some(Fault::NotDurable(RedisError::NotDurable {
                replicas: 0,
                ..
            }))
        ));
        assert!(matches!(
            check_waitaof(wait, "n", Value::Nil),
            Some(Fault::Redis { .. })
        ));
    }

    #[test]
    fn wait_for_replicas_is_sent_and_its_count_checked() {
        let wait = WaitAof {
            local: 0,
            replicas: 1,
            timeout: Duration::from_millis(500),
            received_only: true,
        };
        let p = one_pending();
        let pipe = pipeline(std::slice::from_ref(&p), &Plan::chunked(&[0]), Some(wait));
        let packed = String::from_utf8_lossy(&pipe.get_packed_pipeline()).into_owned();
        assert!(
            packed.ends_with("$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n500\r\n"),
            "{packed}"
        );
        assert!(check_waitaof(wait, "n", Value::Int(1)).is_none());
        assert!(check_waitaof(wait, "n", Value::Int(2)).is_none());
        assert!(matches!(
            check_waitaof(wait, "n", Value::Int(0)),
            Some(Fault::NotDurable(RedisError::NotDurable {
                replicas: 0,
                wanted_replicas: 1,
                ..
            }))
        ));
    }
}
