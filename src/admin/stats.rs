//! `GET /v1/stats?date=YYYY-MM-DD`: a Baku day's figures on this node (see
//! [`crate::gateway::stats`]): MOs by code and outcome, invalid texts by reason and their
//! share, distinct documents and phones, permits revoked, reply time (MO read to its reply
//! delivered) and decision time p50/p90/p99, per operator.

use super::auth::{Role, authorize, read_allowed};
use super::error::ApiError;
use super::{AdminState, Peer};
use crate::gateway::stats::{BUCKETS_US, REPLY_BUCKETS_MS};
use crate::store::Store;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::TimeZone;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `?date=`.
#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    date: Option<String>,
}

/// The upper bound, ms, of the bucket holding the `q` quantile of `buckets` (counts per
/// bucket whose upper bounds are `bounds_ms`, then the open one, shown as `over`).
fn quantile_ms(buckets: &[u64], bounds_ms: &[f64], over: &str, q: f64) -> Value {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return Value::Null;
    }
    let want = (q * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= want {
            return match bounds_ms.get(i) {
                Some(ms) => json!(*ms),
                None => json!(over),
            };
        }
    }
    json!(over)
}

/// How many, and p50, p90 and p99 of `buckets` (see [`quantile_ms`]).
fn quantiles(buckets: &[u64], bounds_ms: &[f64], over: &str) -> Value {
    json!({
        "count": buckets.iter().sum::<u64>(),
        "p50": quantile_ms(buckets, bounds_ms, over, 0.5),
        "p90": quantile_ms(buckets, bounds_ms, over, 0.9),
        "p99": quantile_ms(buckets, bounds_ms, over, 0.99),
    })
}

/// The figures of one day as JSON, from its flat fields (see
/// [`crate::gateway::stats::Day::fields`]) and distinct counts.
fn figures(fields: &BTreeMap<String, u64>, documents: u64, phones: u64) -> Map<String, Value> {
    let mut by_code: Map<String, Value> = Map::new();
    let mut invalid: Map<String, Value> = Map::new();
    let mut by_operator: Map<String, Value> = Map::new();
    let mut buckets = vec![0u64; BUCKETS_US.len() + 1];
    let mut reply_buckets = vec![0u64; REPLY_BUCKETS_MS.len() + 1];
    let mut invalid_total = 0;
    for (field, &n) in fields {
        let parts: Vec<&str> = field.split('|').collect();
        match parts.as_slice() {
            ["c", code, outcome, reason] => {
                let entry = by_code
                    .entry(code.to_string())
                    .or_insert_with(|| json!({"granted": 0, "active": 0, "denied": {}}));
                if *outcome == "denied" {
                    entry["denied"][*reason] = json!(n);
                } else {
                    entry[*outcome] = json!(n);
                }
            }
            ["i", reason] => {
                invalid_total += n;
                invalid.insert(reason.to_string(), json!(n));
            }
            ["o", op, outcome] => {
                let entry = by_operator
                    .entry(op.to_string())
                    .or_insert_with(|| json!({"mos": 0}));
                entry[*outcome] = json!(n);
                entry["mos"] = json!(entry["mos"].as_u64().unwrap_or(0) + n);
            }
            ["b", i] => {
                if let Some(slot) = i.parse::<usize>().ok().and_then(|i| buckets.get_mut(i)) {
                    *slot += n;
                }
            }
            ["r", i] => {
                if let Some(slot) = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| reply_buckets.get_mut(i))
                {
                    *slot += n;
                }
            }
            _ => {}
        }
    }
    let mos = fields.get("mos").copied().unwrap_or(0);
    let mut out = Map::new();
    out.insert("mos".into(), json!(mos));
    out.insert("by_code".into(), Value::Object(by_code));
    out.insert(
        "invalid".into(),
        json!({
            "total": invalid_total,
            "share": if mos == 0 { 0.0 } else { invalid_total as f64 / mos as f64 },
            "by_reason": invalid,
        }),
    );
    out.insert("distinct_documents".into(), json!(documents));
    out.insert("distinct_phones".into(), json!(phones));
    let decision_bounds: Vec<f64> = BUCKETS_US.iter().map(|&us| us as f64 / 1000.0).collect();
    out.insert(
        "decision_ms".into(),
        quantiles(&buckets, &decision_bounds, "over 5000"),
    );
    let reply_bounds: Vec<f64> = REPLY_BUCKETS_MS.iter().map(|&ms| ms as f64).collect();
    out.insert(
        "reply_ms".into(),
        quantiles(&reply_buckets, &reply_bounds, "over 3600000"),
    );
    out.insert("by_operator".into(), Value::Object(by_operator));
    out
}

/// A day's figures (today by default).
pub async fn get(
    State(state): State<Arc<AdminState>>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Query(query): Query<StatsQuery>,
) -> Result<Json<Value>, ApiError> {
    read_allowed(&state, peer)?;
    authorize(&state, &headers, peer, Role::Official)?;
    let gateway = &state.gateway;
    let rules = gateway.rules();
    let calendar = &rules.calendar;
    let now = gateway.clock.now().timestamp();
    let start = match &query.date {
        None => calendar.moment(now).day_start,
        Some(text) => {
            let date =
                chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
                    ApiError::bad_request("date", format!("{text:?} is not a date like 2020-04-06"))
                })?;
            let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
            calendar
                .tz()
                .from_local_datetime(&midnight)
                .earliest()
                .map(|t| t.timestamp())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "date",
                        format!("{text} has no midnight in {}", calendar.tz()),
                    )
                })?
        }
    };
    Ok(Json(Value::Object(day(&state, start).await?)))
}

/// The figures of the Baku day that starts at `start` (Unix seconds): this node's, or with
/// Redis every node's.
pub async fn day(state: &AdminState, start: i64) -> Result<Map<String, Value>, ApiError> {
    let gateway = &state.gateway;
    let rules = gateway.rules();
    let calendar = &rules.calendar;
    let moment = calendar.moment(start);
    let next = calendar.moment(moment.day_start + 26 * 3600).day_start;
    let date = calendar.date(moment.day_start);
    let (mut body, scope) = match &gateway.store {
        Store::Redis(redis) => {
            let (fields, documents, phones) = redis.stats(&date).await.map_err(|e| {
                ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "store",
                    format!("the figures of every node are in Redis, which did not answer: {e}"),
                )
            })?;
            (figures(&fields, documents, phones), "all nodes")
        }
        _ => {
            let day = gateway.stats.day(moment.day).unwrap_or_default();
            (
                figures(
                    &day.fields(),
                    day.distinct_documents() as u64,
                    day.distinct_phones() as u64,
                ),
                "this node",
            )
        }
    };
    let revoked = gateway
        .engine
        .permits()
        .map_or(0, |p| p.revoked_between(moment.day_start, next));
    body.insert("date".into(), json!(date));
    body.insert("revoked".into(), json!(revoked));
    body.insert("scope".into(), json!(scope));
    Ok(body)
}
