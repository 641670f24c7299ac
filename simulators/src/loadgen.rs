//! loadgen: the simulator as an operator's ESME in front of the gateway. It connects and
//! binds every session itself (all at once), then the shared [`run`](crate::run) sends
//! citizens' MOs as submit_sm and takes the replies as deliver_sm.

use crate::bind::{self, Plan, Role, Side};
use crate::run::{Arrival, Bound, Sessions};
pub use crate::run::{BindKind, Phase, Rate, Settings, Shared};
use crate::{procstat, report::Report};
use anyhow::{Context, Result, bail};

/// The sessions loadgen opens, in order: transceivers, or transmitter + receiver pairs.
fn roles(settings: &Settings) -> Result<Vec<Role>> {
    let n = settings.binds as usize;
    if n == 0 {
        bail!("--binds must be at least 1");
    }
    Ok(match settings.bind_kind {
        BindKind::Transceiver => vec![Role::Transceiver; n],
        BindKind::Pair => {
            if n < 2 || !n.is_multiple_of(2) {
                bail!("--bind-kind pair needs an even --binds (a transmitter and a receiver each)");
            }
            (0..n)
                .map(|id| {
                    if id % 2 == 0 {
                        Role::Transmitter
                    } else {
                        Role::Receiver
                    }
                })
                .collect()
        }
    })
}

/// The gateway node session `id` binds to: the targets in turn, a transmitter + receiver
/// pair (sessions `2k`, `2k + 1`) on one node, since a node sends its replies on its own
/// receiver binds.
fn node_of(settings: &Settings, id: usize) -> &str {
    let n = settings.targets.len().max(1);
    let turn = match settings.bind_kind {
        BindKind::Transceiver => id,
        BindKind::Pair => id / 2,
    };
    settings
        .targets
        .get(turn % n)
        .map_or(settings.target.as_str(), String::as_str)
}

/// loadgen's sessions: connected and bound by us, all before sending starts, none later.
struct Connect {
    settings: Settings,
    roles: Vec<Role>,
}

impl Sessions for Connect {
    async fn first(&mut self, arrive: &mut impl FnMut(Arrival)) -> Result<()> {
        // Every bind connects at once, so a run with many binds does not wait for each in
        // turn.
        let mut connecting = Vec::new();
        for (id, &role) in self.roles.iter().enumerate() {
            let mut settings = self.settings.clone();
            settings.target = node_of(&self.settings, id).to_string();
            let plan = Plan { id, role };
            connecting.push(tokio::spawn(async move {
                bind::connect(&settings, &plan).await
            }));
        }
        for (role, handle) in self.roles.iter().zip(connecting) {
            let (stream, inbuf) = handle.await.context("bind task")??;
            arrive(Arrival::Session(Bound {
                role: *role,
                stream,
                inbuf,
            }));
        }
        Ok(())
    }

    async fn later(&mut self) -> Arrival {
        std::future::pending().await
    }

    fn gateway_pid(&self) -> Option<u32> {
        let port = self.settings.target.rsplit_once(':')?.1.parse().ok()?;
        procstat::listener_pid(port)
    }
}

/// Runs the load: binds, sends for the duration, drains, unbinds, and reports. The report
/// says whether the run passed; an `Err` means it could not run (bad rules, no gateway, a
/// bind refused).
pub async fn run(settings: Settings) -> Result<Report> {
    let roles = roles(&settings)?;
    let sessions = Connect {
        settings: settings.clone(),
        roles,
    };
    crate::run::run(settings, Side::Esme, sessions).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_spread_over_the_nodes_and_a_pair_stays_on_one() {
        let mut s = Settings::new("a:1");
        s.targets = vec!["a:1".into(), "b:2".into(), "c:3".into()];
        let nodes = |s: &Settings| {
            (0..6)
                .map(|id| node_of(s, id).to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(nodes(&s), ["a:1", "b:2", "c:3", "a:1", "b:2", "c:3"]);
        s.bind_kind = BindKind::Pair;
        assert_eq!(nodes(&s), ["a:1", "a:1", "b:2", "b:2", "c:3", "c:3"]);
        s.targets = vec!["a:1".into()];
        assert_eq!(nodes(&s), ["a:1"; 6]);
    }

    #[test]
    fn binds_are_transceivers_or_even_pairs() {
        let mut s = Settings::new("127.0.0.1:1");
        s.binds = 3;
        assert_eq!(roles(&s).unwrap(), vec![Role::Transceiver; 3]);
        s.bind_kind = BindKind::Pair;
        assert!(roles(&s).is_err());
        s.binds = 4;
        assert_eq!(
            roles(&s).unwrap(),
            [
                Role::Transmitter,
                Role::Receiver,
                Role::Transmitter,
                Role::Receiver
            ]
        );
        s.binds = 0;
        assert!(roles(&s).is_err());
    }
}
