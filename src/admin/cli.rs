//! The `icaze verify`, `revoke` and `block` commands: one admin API call each, a line a
//! person can read (or the JSON with `--json`), and an exit code a script can test.
//!
//! Exit codes: 0 done (verify: valid, and the document's when one was given); 2 unknown
//! permit; 3 expired or not yet valid; 4 revoked; 5 not that document's; 65 the API
//! refused the input (422, 400); 69 the API did not answer or failed (5xx); 77 the token
//! was refused (401, 403).

use super::client::{AdminClient, ClientError, Reply, encode};
use serde_json::{Value, json};
use std::io::Write;

/// Done.
pub const EXIT_OK: u8 = 0;
/// No such permit.
pub const EXIT_UNKNOWN: u8 = 2;
/// Expired or not yet valid.
pub const EXIT_NOT_NOW: u8 = 3;
/// Revoked.
pub const EXIT_REVOKED: u8 = 4;
/// Valid, but another document's.
pub const EXIT_OTHER_DOCUMENT: u8 = 5;
/// The API refused the input (EX_DATAERR).
pub const EXIT_BAD_INPUT: u8 = 65;
/// The API did not answer or failed (EX_UNAVAILABLE).
pub const EXIT_UNAVAILABLE: u8 = 69;
/// The token was refused (EX_NOPERM).
pub const EXIT_REFUSED: u8 = 77;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// The exit code and message of an answer that is an error, `None` for a success.
fn failure(reply: &Reply) -> Option<(u8, String)> {
    let code = match reply.status {
        200..=299 => return None,
        401 | 403 => EXIT_REFUSED,
        404 => EXIT_UNKNOWN,
        400 | 409 | 413 | 422 => EXIT_BAD_INPUT,
        _ => EXIT_UNAVAILABLE,
    };
    let message = format!(
        "{} ({}): {}",
        reply.status,
        s(&reply.json["key"]),
        s(&reply.json["error"])
    );
    Some((code, message))
}

fn finish(out: &mut dyn Write, json: bool, reply: &Reply, line: String) -> std::io::Result<()> {
    if json {
        writeln!(out, "{}", reply.json)
    } else {
        writeln!(out, "{line}")
    }
}

/// Prints the error of a failed call and gives its exit code.
fn report(out: &mut dyn Write, json: bool, reply: &Reply, code: u8, message: &str) -> u8 {
    let _ = if json {
        writeln!(out, "{}", reply.json)
    } else {
        writeln!(out, "error: {message}")
    };
    code
}

/// A permit's one-line summary.
fn summary(p: &Value) -> String {
    let mut line = format!(
        "{} {}: code {}, {}, {}",
        s(&p["permit_id"]),
        s(&p["status"]).to_uppercase(),
        p["code"],
        s(&p["window"]),
        s(&p["document"])
    );
    if let Some(reason) = p["revocation_reason"].as_str() {
        line.push_str(&format!(" (revoked {}: {reason})", s(&p["revoked_at"])));
    }
    line
}

/// `icaze verify PERMIT_ID [--document D]`.
pub async fn verify(
    client: &AdminClient,
    permit_id: &str,
    document: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let mut path = format!("/v1/permits/{}", encode(permit_id));
    if let Some(d) = document {
        path.push_str(&format!("?document={}", encode(d)));
    }
    let reply = client.call("GET", &path, None).await?;
    if let Some((code, message)) = failure(&reply) {
        return Ok(report(out, json, &reply, code, &message));
    }
    let p = &reply.json;
    let mut line = summary(p);
    let code = match s(&p["status"]) {
        "unknown" => EXIT_UNKNOWN,
        "expired" | "not_yet_valid" => EXIT_NOT_NOW,
        "revoked" => EXIT_REVOKED,
        _ if p["document_matches"] == false => EXIT_OTHER_DOCUMENT,
        _ => EXIT_OK,
    };
    if p["status"] == "unknown" {
        line = format!("{} UNKNOWN: no such permit", s(&p["permit_id"]));
    } else if p["document_matches"] == false {
        line.push_str(", NOT this document's");
    }
    let _ = finish(out, json, &reply, line);
    Ok(code)
}

/// `icaze revoke PERMIT_ID --reason R`.
pub async fn revoke(
    client: &AdminClient,
    permit_id: &str,
    reason: &str,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let path = format!("/v1/permits/{}/revoke", encode(permit_id));
    let reply = client
        .call("POST", &path, Some(&json!({"reason": reason})))
        .await?;
    if let Some((code, message)) = failure(&reply) {
        return Ok(report(out, json, &reply, code, &message));
    }
    let _ = finish(out, json, &reply, summary(&reply.json));
    Ok(EXIT_OK)
}

/// `icaze block DOCUMENT --reason R [--codes 3] [--until T]`, or with `unblock` the block
/// lifted.
pub async fn block(
    client: &AdminClient,
    document: &str,
    change: Option<(&str, &[u8], Option<&str>)>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let path = format!("/v1/blocklist/{}", encode(document));
    let reply = match change {
        Some((reason, codes, until)) => {
            let mut body = json!({"reason": reason});
            if !codes.is_empty() {
                body["codes"] = json!(codes);
            }
            if let Some(u) = until {
                body["until"] = json!(u);
            }
            client.call("PUT", &path, Some(&body)).await?
        }
        None => client.call("DELETE", &path, None).await?,
    };
    if let Some((code, message)) = failure(&reply) {
        return Ok(report(out, json, &reply, code, &message));
    }
    let b = &reply.json;
    let line = if change.is_some() {
        format!(
            "{} blocked for codes {} until {}: {}",
            s(&b["document"]),
            b["codes"],
            b["until"].as_str().unwrap_or("further notice"),
            s(&b["reason"])
        )
    } else {
        format!("{} unblocked", s(&b["document"]))
    };
    let _ = finish(out, json, &reply, line);
    Ok(EXIT_OK)
}

/// `icaze stats [--date D]`: the day's figures as a table.
pub async fn stats(
    client: &AdminClient,
    date: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> Result<u8, ClientError> {
    let path = match date {
        Some(d) => format!("/v1/stats?date={}", encode(d)),
        None => "/v1/stats".to_string(),
    };
    let reply = client.call("GET", &path, None).await?;
    if let Some((code, message)) = failure(&reply) {
        return Ok(report(out, json, &reply, code, &message));
    }
    if json {
        let _ = writeln!(out, "{}", reply.json);
        return Ok(EXIT_OK);
    }
    let st = &reply.json;
    let mut lines = vec![
        format!("{} ({})", s(&st["date"]), s(&st["scope"])),
        format!(
            "  MOs {}   distinct documents {}   distinct phones {}   revoked {}",
            st["mos"], st["distinct_documents"], st["distinct_phones"], st["revoked"]
        ),
        format!(
            "  invalid {} ({:.1}%)   reply ms p50 {} p90 {} p99 {}   decision ms p50 {} p90 {} p99 {}",
            st["invalid"]["total"],
            st["invalid"]["share"].as_f64().unwrap_or(0.0) * 100.0,
            st["reply_ms"]["p50"],
            st["reply_ms"]["p90"],
            st["reply_ms"]["p99"],
            st["decision_ms"]["p50"],
            st["decision_ms"]["p90"],
            st["decision_ms"]["p99"]
        ),
        format!("  {:<6} {:>9} {:>9}  denied", "code", "granted", "active"),
    ];
    if let Some(codes) = st["by_code"].as_object() {
        for (code, c) in codes {
            lines.push(format!(
                "  {:<6} {:>9} {:>9}  {}",
                code, c["granted"], c["active"], c["denied"]
            ));
        }
    }
    if let Some(reasons) = st["invalid"]["by_reason"].as_object() {
        for (reason, n) in reasons {
            lines.push(format!("  invalid {reason:<18} {n:>9}"));
        }
    }
    if let Some(ops) = st["by_operator"].as_object() {
        for (op, o) in ops {
            lines.push(format!("  operator {op:<15} {o}"));
        }
    }
    let _ = writeln!(out, "{}", lines.join("\n"));
    Ok(EXIT_OK)
}
