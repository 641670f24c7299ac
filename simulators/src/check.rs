//! Checking one reply against what the oracle predicted for its MO: the class, and what the
//! reply echoes (code, document, validity window), for a single request and for each line
//! of a family reply.

use crate::oracle::{Class, Prediction};
use crate::replies::Classified;
use crate::rules::Rules;
use crate::traffic::Expect;

/// Whether `got` is a right answer under `p`; `redelivered` MOs (their session ended
/// before the gateway acknowledged them, so it may have decided them already) may get the
/// permit already held instead of a grant.
pub fn right(p: &Prediction, got: Class, redelivered: bool) -> bool {
    p.accepts(got) || (redelivered && p.class == Class::Granted && got == Class::Active)
}

/// [`right`] for a line of a family reply, where some refusals give no reason.
fn right_line(p: &Prediction, got: Class, redelivered: bool) -> bool {
    let line = Prediction {
        class: p.class.as_line(),
        alternative: p.alternative.map(Class::as_line),
        undo: None,
    };
    right(&line, got, redelivered)
}

/// A validity window of `minutes` against the code's validity: equal, or one minute off
/// where the validity is no whole number of minutes (the printed times are truncated).
fn window_fits(minutes: u32, rules: &Rules, code: u8) -> Result<(), String> {
    let Some((_, rule)) = rules.code(code) else {
        return Ok(());
    };
    let v = rule.validity_secs;
    let diff = (minutes + 1440 - (v / 60) % 1440) % 1440;
    let whole = v % 60 == 0;
    if diff == 0 || (!whole && (diff == 1 || diff == 1439)) {
        Ok(())
    } else {
        Err(format!(
            "window of {minutes} min, validity is {} min",
            v / 60
        ))
    }
}

/// Everything wrong with a reply of class `got` saying `said` to an MO that expected
/// `expect` under `p` (and `lines`, one per document of a family); empty if it is right.
/// `display` prints a document as replies do.
#[allow(clippy::too_many_arguments)]
pub fn differences(
    expect: &Expect,
    p: &Prediction,
    lines: &[Prediction],
    redelivered: bool,
    got: Class,
    said: Option<&Classified>,
    rules: &Rules,
    display: &dyn Fn(u32) -> String,
) -> Vec<String> {
    let mut why = Vec::new();
    if !right(p, got, redelivered) {
        why.push(format!("expected {}, got {}", p.class.name(), got.name()));
    }
    let Some(said) = said else {
        return why;
    };
    let (code, docs) = match expect {
        Expect::Request { doc, code } => (*code, std::slice::from_ref(doc)),
        Expect::Family(f) => (f.code, f.docs()),
        Expect::Status(asked) => {
            status_differences(asked.docs(), lines, said, rules, display, &mut why);
            return why;
        }
        Expect::Invalid(_) | Expect::Help => return why,
    };
    if let Some(c) = said.code
        && c != u32::from(code)
    {
        why.push(format!("echoes code {c}, not {code}"));
    }
    if got != Class::Family {
        if let Some(d) = &said.document {
            let want = display(docs[0]);
            if *d != want {
                why.push(format!("echoes {d:?}, not {want:?}"));
            }
        }
        if let Some(w) = said.window_minutes
            && let Err(e) = window_fits(w, rules, code)
        {
            why.push(e);
        }
        return why;
    }
    if said.lines.len() != docs.len() {
        why.push(format!(
            "{} lines for {} documents",
            said.lines.len(),
            docs.len()
        ));
    }
    for ((line, &doc), p) in said.lines.iter().zip(docs).zip(lines) {
        let want = display(doc);
        if line.document.as_deref() != Some(want.as_str()) {
            why.push(format!("line {:?}, not {want:?}", line.document));
            continue;
        }
        if !right_line(p, line.class, redelivered) {
            why.push(format!(
                "{want}: expected {}, got {}",
                p.class.as_line().name(),
                line.class.name()
            ));
        }
        if let Some(w) = line.window_minutes
            && let Err(e) = window_fits(w, rules, code)
        {
            why.push(format!("{want}: {e}"));
        }
    }
    why
}

/// A status reply line by line: the predicted sequence of headers, permit lines and
/// "none" lines, each header and "none" naming its document in order, each permit's window
/// as long as its code's validity.
fn status_differences(
    docs: &[u32],
    lines: &[Prediction],
    said: &Classified,
    rules: &Rules,
    display: &dyn Fn(u32) -> String,
    why: &mut Vec<String>,
) {
    let want: Vec<Class> = lines.iter().map(|l| l.class).collect();
    let got: Vec<Class> = said.lines.iter().map(|l| l.class).collect();
    if want != got {
        let names = |c: &[Class]| c.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ");
        why.push(format!(
            "status lines [{}], not [{}]",
            names(&got),
            names(&want)
        ));
    }
    if !names_status(said, docs, display) {
        why.push("status names other documents".into());
    }
    for line in &said.lines {
        if let (Some(w), Class::StatusLine) = (line.window_minutes, line.class) {
            // The code a permit line echoes is not kept per line: any code's validity fits.
            if !rules
                .codes
                .iter()
                .any(|c| window_fits(w, rules, c.code).is_ok())
            {
                why.push(format!("status window of {w} min fits no code"));
            }
        }
    }
}

/// Whether a status reply's headers and "none" lines name exactly `docs`, in order.
pub fn names_status(said: &Classified, docs: &[u32], display: &dyn Fn(u32) -> String) -> bool {
    let named: Vec<&str> = said
        .lines
        .iter()
        .filter(|l| l.class != Class::StatusLine)
        .filter_map(|l| l.document.as_deref())
        .collect();
    named.len() == docs.len() && named.iter().zip(docs).all(|(n, &d)| *n == display(d))
}

/// Whether a family reply names exactly `docs`, in order, for `code`: how a family reply
/// finds its MO among a phone's.
pub fn names_family(
    said: &Classified,
    code: u8,
    docs: &[u32],
    display: &dyn Fn(u32) -> String,
) -> bool {
    said.code.is_none_or(|c| c == u32::from(code))
        && said.lines.len() == docs.len()
        && said
            .lines
            .iter()
            .zip(docs)
            .all(|(l, &d)| l.document.as_deref() == Some(display(d).as_str()))
}
