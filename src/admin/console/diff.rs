//! The difference between the rules in force and a new rules file, line by line, as the
//! console shows it before the official confirms (`POST /v1/rules/check`).

use serde::Serialize;

/// Lines of unchanged context kept around each change.
pub const CONTEXT: usize = 2;
/// Above this many cells (changed lines of one side times the other's) the middle is
/// shown as all removed and all added instead of aligned.
const MAX_CELLS: usize = 4_000_000;

/// One line of the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    /// `" "` unchanged, `"-"` only in the rules in force, `"+"` only in the new file,
    /// `"…"` unchanged lines left out.
    pub op: &'static str,
    /// Its number in the new file (in the old one for a removed line); none for `"…"`.
    pub line: Option<usize>,
    /// The line's text.
    pub text: String,
}

/// The lines of `old` and `new` aligned on a longest common subsequence, each change with
/// [`CONTEXT`] lines around it; empty when they are the same.
pub fn lines(old: &str, new: &str) -> Vec<Line> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    // (op, index in a, index in b) for the whole of both files.
    let mut all: Vec<(&'static str, usize, usize)> = (0..prefix).map(|i| (" ", i, i)).collect();
    if am.len() * bm.len() <= MAX_CELLS {
        // lcs[i][j]: the longest common subsequence of am[i..] and bm[j..].
        let w = bm.len() + 1;
        let mut lcs = vec![0u32; (am.len() + 1) * w];
        for i in (0..am.len()).rev() {
            for j in (0..bm.len()).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < am.len() || j < bm.len() {
            if i < am.len() && j < bm.len() && am[i] == bm[j] {
                all.push((" ", prefix + i, prefix + j));
                (i, j) = (i + 1, j + 1);
            } else if j < bm.len() && (i == am.len() || lcs[i * w + j + 1] > lcs[(i + 1) * w + j]) {
                all.push(("+", prefix + i, prefix + j));
                j += 1;
            } else {
                all.push(("-", prefix + i, prefix + j));
                i += 1;
            }
        }
    } else {
        all.extend((0..am.len()).map(|i| ("-", prefix + i, prefix)));
        all.extend((0..bm.len()).map(|j| ("+", prefix + am.len(), prefix + j)));
    }
    let (a_end, b_end) = (a.len() - suffix, b.len() - suffix);
    all.extend((0..suffix).map(|k| (" ", a_end + k, b_end + k)));

    let changed: Vec<usize> = (0..all.len()).filter(|&k| all[k].0 != " ").collect();
    let near = |k: usize| {
        changed
            .iter()
            .any(|&c| k + CONTEXT >= c && k <= c + CONTEXT)
    };
    let mut out = Vec::new();
    let mut skipped = false;
    for (k, &(op, i, j)) in all.iter().enumerate() {
        if op == " " && !near(k) {
            skipped = true;
            continue;
        }
        if std::mem::take(&mut skipped) && !out.is_empty() {
            out.push(Line {
                op: "…",
                line: None,
                text: String::new(),
            });
        }
        let (line, text) = match op {
            "-" => (i + 1, a[i]),
            _ => (j + 1, b[j]),
        };
        out.push(Line {
            op,
            line: Some(line),
            text: text.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(lines: &[Line]) -> String {
        lines
            .iter()
            .map(|l| format!("{}{}", l.op, l.text))
            .collect::<Vec<_>>()
            .join("|")
    }

    #[test]
    fn a_changed_line_shows_with_its_context() {
        let old = "a\nb\nc\nenabled = true\nd\ne\nf\ng\n";
        let new = "a\nb\nc\nenabled = false\nd\ne\nf\ng\n";
        assert_eq!(
            ops(&lines(old, new)),
            " b| c|-enabled = true|+enabled = false| d| e"
        );
        assert!(lines(old, old).is_empty());
    }

    #[test]
    fn insertions_and_removals_far_apart_are_two_hunks() {
        let old: String = (0..20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 3\n", "")
            .replace("line 15\n", "line 15\nnew\n");
        let d = lines(&old, &new);
        assert_eq!(
            ops(&d),
            " line 1| line 2|-line 3| line 4| line 5|…| line 14| line 15|+new| line 16| line 17"
        );
        let added = d.iter().find(|l| l.op == "+").unwrap();
        assert_eq!(added.line, Some(16), "numbered in the new file");
    }
}
