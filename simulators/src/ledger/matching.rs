//! A reply meets its MO: the first MO of its phone that it fits, and, once the MO's
//! prediction is known, the comparison of the two (counted, and listed when it differs).

use super::*;

impl Ledger {
    pub(super) fn display(&self, doc: u32) -> String {
        let (kind, number) = self.pop.document(doc);
        let series = self
            .rules
            .kinds
            .get(kind)
            .map_or("?", |k| k.series.as_str());
        format!("{series} {number}")
    }

    /// Whether a reply of `class` saying `said` can be the answer to `f`.
    pub(super) fn fits(&self, f: &Flight, class: Class, said: Option<&Classified>) -> bool {
        match f.expect {
            Expect::Invalid(r) => class == Class::Invalid(Some(r)) || class == Class::Invalid(None),
            Expect::Help => class == Class::Help,
            Expect::Status(asked) => {
                class == Class::Status
                    && said
                        .is_none_or(|c| check::names_status(c, asked.docs(), &|d| self.display(d)))
            }
            Expect::Family(family) => {
                class == Class::Family
                    && said.is_none_or(|c| {
                        check::names_family(c, family.code, family.docs(), &|d| self.display(d))
                    })
            }
            Expect::Request { doc, code } => {
                let echoes = said.is_none_or(|c| {
                    c.code.is_none_or(|x| x == u32::from(code))
                        && c.document.as_ref().is_none_or(|d| *d == self.display(doc))
                });
                let class_ok = match (f.prediction, f.hint) {
                    (Some(p), _) => f.right(&p, class),
                    (None, Some(h)) => h == class,
                    (None, None) => class.is_decision(),
                };
                class.is_decision() && echoes && class_ok
            }
        }
    }

    /// Handles a reply: finds its MO, records the latency, and checks it once the MO's
    /// prediction is known.
    pub fn on_reply(&mut self, reply: Reply) {
        self.stats.replies += 1;
        let class = reply
            .classified
            .as_ref()
            .map_or(Class::Unrecognised, |c| c.key.class());
        if class == Class::Unrecognised {
            self.stats.unrecognised += 1;
        }
        // The first MO of the phone still waiting for a reply, and the first one this
        // reply fits (usually the same).
        let mut first_open = None;
        let mut chosen = None;
        if let Some(slots) = reply.phone.and_then(|p| self.by_phone.get(&p)) {
            for &s in slots {
                let Some(f) = self.flights[s as usize].as_ref() else {
                    continue;
                };
                if f.actual.is_some() {
                    continue;
                }
                first_open.get_or_insert(s);
                if self.fits(f, class, reply.classified.as_ref()) {
                    chosen = Some(s);
                    break;
                }
            }
        }
        let chosen = chosen.or(first_open);
        let Some(slot) = chosen else {
            self.stats.duplicates += 1;
            if self.stats.duplicate_list.len() < LISTED {
                self.stats.duplicate_list.push(DuplicateRecord {
                    msisdn: reply.msisdn,
                    reply: reply.text,
                    why: if reply.phone.is_some() {
                        "no MO of this phone is waiting for a reply".into()
                    } else {
                        "not a number the simulator sends from".into()
                    },
                });
            }
            return;
        };
        if first_open != Some(slot) {
            self.stats.reordered += 1;
        }
        let Some(f) = self.flights[slot as usize].as_mut() else {
            return;
        };
        let t = Ticket {
            slot,
            serial: f.serial,
        };
        let latency = reply.arrived.saturating_duration_since(f.sent).as_micros() as u64;
        f.actual = Some((class, reply.classified, reply.text));
        let acked = f.acked;
        self.stats.answered += 1;
        self.stats.latency.saturating_record(latency.max(1));
        let second = self.second(reply.arrived);
        second.answered += 1;
        second
            .latency
            .get_or_insert_with(|| histogram(2))
            .saturating_record(latency.max(1));
        if acked {
            self.resolve(t);
        }
    }

    /// Compares an MO's reply with its prediction and forgets the MO.
    pub(super) fn resolve(&mut self, t: Ticket) {
        let Some(mut f) = self.remove(t) else {
            return;
        };
        let (Some(p), Some((got, said, reply))) = (f.prediction, f.actual.take()) else {
            return;
        };
        if p.alternative.is_some() {
            self.stats.boundary += 1;
        }
        // A grant predicted where "active" was right too, answered "active": the permit
        // before ended later than the oracle dated it, and there is no new one. A grant
        // answered "try again later" was not made either (a family's: none of its lines).
        if let Some(undo) = &p.undo
            && ((got == Class::Active && p.alternative == Some(Class::Active))
                || got == Class::TryLater)
        {
            self.oracle.undo(undo);
        }
        if got == Class::TryLater {
            // Each line's undo holds the state as it was before that line: taken back in
            // the reverse of the order they were decided, the state ends as before the first.
            for line in f.lines.iter().rev() {
                if let Some(undo) = &line.undo {
                    self.oracle.undo(undo);
                }
            }
        }
        *self.stats.expected.entry(p.class.name()).or_default() += 1;
        *self.stats.got.entry(got.name()).or_default() += 1;
        for line in &f.lines {
            *self
                .stats
                .expected
                .entry(line.class.as_line().name())
                .or_default() += 1;
        }
        if let Some(said) = &said {
            *self
                .stats
                .languages
                .entry(said.lang.tag().into())
                .or_default() += 1;
            for line in &said.lines {
                *self.stats.got.entry(line.class.name()).or_default() += 1;
            }
        }
        let mut why = check::differences(
            &f.expect,
            &p,
            &f.lines,
            f.redelivered,
            got,
            said.as_ref(),
            &self.rules,
            &|d| self.display(d),
        );
        if let (Some(want), Some(said)) = (f.lang, &said)
            && said.lang != want
        {
            why.push(format!(
                "answered in {}, not {}",
                said.lang.tag(),
                want.tag()
            ));
        }
        if why.is_empty() {
            return;
        }
        self.stats.mismatches += 1;
        // A second permit for a document (a family's line included) is named as such.
        let kind = if why
            .iter()
            .any(|w| w.contains("expected active, got granted"))
        {
            "active → granted".to_string()
        } else {
            let predicted = match f.expect {
                Expect::Request { .. } | Expect::Invalid(_) | Expect::Help => p.class.name(),
                Expect::Family(_) => "family".into(),
                Expect::Status(_) => "status".into(),
            };
            format!("{predicted} → {}", got.name())
        };
        let of_kind = self.stats.mismatch_kinds.entry(kind).or_default();
        *of_kind += 1;
        // The first of every kind too, not only the first of the run.
        if self.stats.mismatch_list.len() < LISTED || *of_kind <= 3 {
            let expected = match f.expect {
                Expect::Request { doc, code } => {
                    format!("{} (code {code}, {})", p.class.name(), self.display(doc))
                }
                Expect::Family(family) => {
                    let lines: Vec<String> = family
                        .docs()
                        .iter()
                        .zip(&f.lines)
                        .map(|(&d, l)| format!("{} {}", self.display(d), l.class.as_line().name()))
                        .collect();
                    format!("family (code {}: {})", family.code, lines.join(", "))
                }
                Expect::Status(_) => {
                    let lines: Vec<String> = f.lines.iter().map(|l| l.class.name()).collect();
                    format!("status ({})", lines.join(", "))
                }
                Expect::Invalid(_) | Expect::Help => p.class.name(),
            };
            self.stats.mismatch_list.push(MismatchRecord {
                msisdn: self.pop.msisdn(f.phone),
                sent: f.text.into(),
                origin: f.origin.name().into(),
                expected,
                got: got.name(),
                reply,
                why: why.join("; "),
            });
        }
    }
}
