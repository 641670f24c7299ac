//! Texts that ask about the service rather than for a permit: help words, and status
//! requests from the documents' own phone or a stranger's.

use super::{Citizens, Expect, Family, Origin, Sms};
use crate::population::Population;
use crate::rules::Rules;

impl Citizens {
    /// A help word, alone or with a greeting, in one of the three languages.
    pub(super) fn help(&mut self, phone: u32) -> Sms {
        const WORDS: [&str; 16] = [
            "kömək",
            "KÖMƏK",
            "komek",
            "yardım",
            "Yardim",
            "Salam, kömək",
            "help",
            "HELP",
            "Help?",
            "help please",
            "info",
            "помощь",
            "Справка",
            "?",
            " ? ",
            "??",
        ];
        Sms {
            phone,
            text: self.rng.pick(&WORDS).copied().unwrap_or("?").to_string(),
            expect: Expect::Help,
            origin: Origin::Help,
        }
    }

    /// A status request for one or two documents of a household, from its own phone or
    /// from a stranger's; `None` if the own phone has a request for one of them in flight.
    pub(super) fn status(
        &mut self,
        pop: &Population,
        rules: &Rules,
        busy: &dyn Fn(u32, u32, u8) -> bool,
    ) -> Option<Sms> {
        let owner = self.phone();
        let stranger = self.rng.chance(0.33) && self.own_phones > 1;
        let phone = if stranger {
            let other = self.phone();
            if other == owner {
                return None;
            }
            other
        } else {
            owner
        };
        let household: Vec<u32> = pop.docs_of(owner).collect();
        let n = if household.len() >= 2 && self.rng.chance(0.3) {
            2
        } else {
            1
        };
        let docs: Vec<u32> = household.into_iter().take(n).collect();
        if docs
            .iter()
            .any(|&d| self.codes.iter().any(|&c| busy(phone, d, c)))
        {
            return None;
        }
        let numbered: Vec<(usize, String)> = docs.iter().map(|&d| pop.document(d)).collect();
        let spelled: Vec<String> = numbered
            .iter()
            .map(|(k, n)| format!("{} {n}", rules.kinds[*k].series))
            .collect();
        let word = *self
            .rng
            .pick(&["status", "Status:", "STATUS", "vəziyyət", "статус", "yoxla"])
            .unwrap_or(&"status");
        Some(Sms {
            phone,
            text: format!("{word} {}", spelled.join(" ")),
            expect: Expect::Status(Family::new(0, &docs)),
            origin: if stranger {
                Origin::Stranger
            } else {
                Origin::Status
            },
        })
    }
}
