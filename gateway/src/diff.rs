//! The diff of wanted rows against the owned rows: inserts (under a named UUID, attached to
//! their parent), updates of the columns that differ, and deletes of owned rows nothing wants
//! (except the rows of subnets set aside).

use std::collections::BTreeSet;

use ovsdb::{NamedUuid, Row};

use crate::config::Cluster;
use crate::error::PlanError;
use crate::observed::{ChildTable, Observed, Owned};
use crate::plan::{Change, Step};
use crate::wanted::Want;

pub(crate) fn diff(
    cluster: &Cluster,
    wants: &[Want],
    observed: &Observed,
    rejected: &BTreeSet<&str>,
    steps: &mut Vec<Step>,
) -> Result<(), PlanError> {
    let parent_of = |t: ChildTable| match t {
        ChildTable::GatewayChassis => observed.gateway_port.as_ref(),
        _ => observed.router.as_ref(),
    };
    let mut kept = BTreeSet::new();
    let mut n = 0;
    for w in wants {
        let existing = observed
            .owned
            .iter()
            .find(|o| o.table == w.table && o.key == w.key && !kept.contains(&o.uuid));
        if let Some(o) = existing {
            kept.insert(o.uuid);
            let changed: Row = w
                .row
                .iter()
                .filter(|(c, d)| o.row.get(c) != Some(*d))
                .map(|(c, d)| (c.to_owned(), d.clone()))
                .collect();
            if !changed.is_empty() {
                let cols: Vec<&str> = changed.columns().collect();
                steps.push(Step {
                    change: Change::Update {
                        table: w.table,
                        uuid: o.uuid,
                        row: changed.clone(),
                    },
                    why: format!("{}: update {}", w.what, cols.join(", ")),
                });
            }
            continue;
        }
        let parent = parent_of(w.table).ok_or_else(|| match w.table {
            ChildTable::GatewayChassis => PlanError::GatewayPortNotFound {
                port: cluster
                    .native
                    .as_ref()
                    .map(|n| n.port.clone())
                    .unwrap_or_default(),
            },
            _ => PlanError::RouterNotFound {
                router: cluster.router.clone(),
            },
        })?;
        n += 1;
        steps.push(Step {
            change: Change::Insert {
                table: w.table,
                name: NamedUuid::numbered("gw", n),
                row: w.row.clone(),
                parent: parent.uuid,
            },
            why: format!("{}: insert {}", w.what, w.table.table()),
        });
    }
    for o in observed.owned.iter().filter(|o| !kept.contains(&o.uuid)) {
        if o.key
            .subnet
            .as_deref()
            .is_some_and(|s| rejected.contains(s))
        {
            continue;
        }
        let parent = parent_of(o.table)
            .filter(|p| p.children.contains(&o.uuid))
            .map(|p| p.uuid);
        steps.push(Step {
            change: Change::Delete {
                table: o.table,
                uuid: o.uuid,
                parent,
            },
            why: format!(
                "{}: no longer wanted, delete {}",
                describe(o),
                o.table.table()
            ),
        });
    }
    Ok(())
}

fn describe(o: &Owned) -> String {
    let mut s = o.key.role.as_str().to_owned();
    for (what, v) in [
        ("subnet", &o.key.subnet),
        ("node", &o.key.node),
        ("fip", &o.key.fip),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" {what} {v}"));
        }
    }
    s
}
