//! `GET /v1/stats?date=YYYY-MM-DD`: a Baku day's figures on this node (see
//! [`crate::gateway::stats`]): MOs by code and outcome, invalid texts by reason and their
//! share, distinct documents and phones, permits revoked, decision time p50/p90/p99, per
//! operator.

use super::auth::{Role, authorize, read_allowed};
use super::error::ApiError;
use super::{AdminState, Peer};
use crate::gateway::stats::Day;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use chrono::TimeZone;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// `?date=`.
#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    date: Option<String>,
}

fn quantile_ms(day: &Day, q: f64) -> Value {
    match day.decide_quantile_us(q) {
        None => Value::Null,
        Some(u64::MAX) => json!("over 5000"),
        Some(us) => json!(us as f64 / 1000.0),
    }
}

/// The figures of one day as JSON (empty figures for a day with no MOs).
fn figures(day: &Day) -> Map<String, Value> {
    let mut by_code: Map<String, Value> = Map::new();
    for (&(code, outcome, reason), &n) in &day.by_code {
        let entry = by_code
            .entry(code.to_string())
            .or_insert_with(|| json!({"granted": 0, "active": 0, "denied": {}}));
        match outcome {
            "denied" => entry["denied"][reason] = json!(n),
            other => entry[other] = json!(n),
        }
    }
    let invalid: u64 = day.invalid.values().sum();
    let by_operator: Map<String, Value> = day
        .by_operator
        .iter()
        .map(|(op, outcomes)| {
            let mut m: Map<String, Value> = outcomes
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            m.insert("mos".into(), json!(outcomes.values().sum::<u64>()));
            (op.clone(), Value::Object(m))
        })
        .collect();
    let mut out = Map::new();
    out.insert("mos".into(), json!(day.mos));
    out.insert("by_code".into(), Value::Object(by_code));
    out.insert(
        "invalid".into(),
        json!({
            "total": invalid,
            "share": if day.mos == 0 { 0.0 } else { invalid as f64 / day.mos as f64 },
            "by_reason": day.invalid,
        }),
    );
    out.insert("distinct_documents".into(), json!(day.distinct_documents()));
    out.insert("distinct_phones".into(), json!(day.distinct_phones()));
    out.insert(
        "decision_ms".into(),
        json!({"p50": quantile_ms(day, 0.5), "p90": quantile_ms(day, 0.9), "p99": quantile_ms(day, 0.99)}),
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
    let moment = calendar.moment(start);
    let next = calendar.moment(moment.day_start + 26 * 3600).day_start;
    let day = gateway.stats.day(moment.day).unwrap_or_default();
    let mut body = figures(&day);
    let revoked = gateway
        .engine
        .permits()
        .map_or(0, |p| p.revoked_between(moment.day_start, next));
    body.insert("date".into(), json!(calendar.date(moment.day_start)));
    body.insert("revoked".into(), json!(revoked));
    body.insert("scope".into(), json!("this node"));
    Ok(Json(Value::Object(body)))
}
