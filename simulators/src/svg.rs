//! A picture of a run, written by hand as SVG: throughput per second (sent, acknowledged,
//! answered) above, MO→MT latency per second (p50 and p99) below, on one time axis.
//!
//! Two line charts need no plotting crate: a viewBox, polylines, a few gridlines and labels.

use crate::report::Report;
use std::fmt::Write;

const WIDTH: f64 = 960.0;
const PANEL: f64 = 300.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 40.0;
const GAP: f64 = 70.0;

/// A "nice" upper bound for an axis (1, 2 or 5 times a power of ten) at or above `max`.
fn nice(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * p)
}

/// A number for an axis label: 12k, 1.5M, 0.25.
fn label(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One panel: series of (name, colour, values per second; `None` where there is no value).
#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    top: f64,
    title: &str,
    unit: &str,
    seconds: usize,
    sending_end: f64,
    series: &[(&str, &str, Vec<Option<f64>>)],
) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().flatten())
        .fold(0.0f64, |a, &b| a.max(b));
    let ymax = nice(max);
    let x = |t: usize| LEFT + plot_w * t as f64 / seconds.max(1) as f64;
    let y = |v: f64| top + PANEL - PANEL * (v / ymax).clamp(0.0, 1.0);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-size="15" font-weight="bold">{}</text>"#,
        top - 12.0,
        escape(title)
    );
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + plot_w,
            y(v),
            y(v),
            LEFT - 6.0,
            y(v) + 4.0,
            label(v)
        );
    }
    let step = (seconds / 10).max(1);
    for t in (0..=seconds).step_by(step) {
        let _ = writeln!(
            out,
            r##"<line x1="{:.1}" x2="{:.1}" y1="{top:.1}" y2="{:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{t}s</text>"##,
            x(t),
            x(t),
            top + PANEL,
            x(t),
            top + PANEL + 15.0
        );
    }
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top:.1}" width="{plot_w:.1}" height="{PANEL}" fill="none" stroke="#333"/>"##
    );
    let _ = writeln!(
        out,
        r#"<text x="18" y="{:.1}" font-size="12" transform="rotate(-90 18 {:.1})" text-anchor="middle">{}</text>"#,
        top + PANEL / 2.0,
        top + PANEL / 2.0,
        escape(unit)
    );
    // Sending stops here; the seconds after it are the drain, and the last second of
    // sending is only partly in the run.
    let end = LEFT + plot_w * (sending_end / seconds.max(1) as f64).min(1.0);
    let _ = writeln!(
        out,
        r##"<line x1="{end:.1}" x2="{end:.1}" y1="{top:.1}" y2="{:.1}" stroke="#888" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#888">sending ends</text>"##,
        top + PANEL,
        end - 70.0,
        top + 12.0
    );
    for (i, (name, colour, values)) in series.iter().enumerate() {
        // Break the line where a second has no value (no replies in that second).
        let mut runs: Vec<Vec<String>> = vec![Vec::new()];
        for (t, v) in values.iter().enumerate() {
            match v {
                Some(v) => {
                    // A value for second t is drawn in the middle of that second.
                    let px = (x(t) + x(t + 1)) / 2.0;
                    if let Some(run) = runs.last_mut() {
                        run.push(format!("{px:.1},{:.1}", y(*v)));
                    }
                }
                None => runs.push(Vec::new()),
            }
        }
        for run in runs.iter().filter(|r| !r.is_empty()) {
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{}"/>"#,
                run.join(" ")
            );
        }
        let ly = top + 16.0 + 20.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" x2="{:.1}" y1="{ly:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="3"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            WIDTH - RIGHT + 12.0,
            WIDTH - RIGHT + 32.0,
            WIDTH - RIGHT + 38.0,
            ly + 4.0,
            escape(name)
        );
    }
}

/// The SVG document for a report.
pub fn render(report: &Report) -> String {
    let rows = &report.seconds;
    let seconds = rows.len().max(1);
    let height = TOP + PANEL + GAP + PANEL + 50.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let rate = report
        .config
        .rate
        .map_or_else(|| "max".into(), |r| format!("{r}/s"));
    let verdict = if report.passed { "passed" } else { "FAILED" };
    let title = format!(
        "icaze-sim {}: {} binds ({}), rate {rate}, p99 {:.2} ms, {} mismatches, {} missing: {verdict}",
        report.config.mode,
        report.config.binds,
        report.config.bind_kind,
        report.latency_ms.p99,
        report.totals.mismatches,
        report.totals.missing
    );
    let _ = writeln!(
        out,
        r##"<text x="{LEFT}" y="16" font-size="13" fill="#555">{}</text>"##,
        escape(&title)
    );
    let per = |f: fn(&crate::report::SecondRow) -> u64| -> Vec<Option<f64>> {
        rows.iter().map(|r| Some(f(r) as f64)).collect()
    };
    panel(
        &mut out,
        TOP + 20.0,
        "Throughput per second",
        "messages / s",
        seconds,
        report.config.duration_s,
        &[
            ("sent", "#1f77b4", per(|r| r.sent)),
            ("acknowledged", "#2ca02c", per(|r| r.acknowledged)),
            ("answered", "#d62728", per(|r| r.answered)),
        ],
    );
    panel(
        &mut out,
        TOP + 20.0 + PANEL + GAP,
        "MO→MT latency per second",
        "ms",
        seconds,
        report.config.duration_s,
        &[
            ("p99", "#9467bd", rows.iter().map(|r| r.p99_ms).collect()),
            ("p50", "#ff7f0e", rows.iter().map(|r| r.p50_ms).collect()),
        ],
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_are_nice() {
        assert_eq!(nice(0.0), 1.0);
        assert_eq!(nice(7.0), 10.0);
        assert_eq!(nice(120.0), 200.0);
        assert_eq!(nice(48_000.0), 50_000.0);
        assert_eq!(label(50_000.0), "50k");
        assert_eq!(label(1_500_000.0), "1.5M");
        assert_eq!(label(0.25), "0.25");
    }
}
