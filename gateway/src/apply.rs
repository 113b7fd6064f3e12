//! [`Observed::apply`]: what the database would hold after a plan's transaction, without a
//! database. Tests and dry runs use it to re-plan against the result.

use ovsdb::Uuid;

use crate::observed::{ChildTable, Observed, Owned};
use crate::plan::{Change, Plan};
use crate::tags::{self, Key};

impl Observed {
    /// Applies `plan`'s changes to this observed state as the server would (inserted rows get
    /// fresh UUIDs derived from `seed` and their position; deleted rows leave their parent).
    pub fn apply(&mut self, plan: &Plan, seed: u64) {
        for (i, step) in plan.steps().iter().enumerate() {
            match &step.change {
                Change::Insert {
                    table, row, parent, ..
                } => {
                    let uuid = Uuid::from_u128((u128::from(seed) << 64) | (i as u128 + 1));
                    let Some(key) = Key::from_external_ids(&tags::string_map(row, "external_ids"))
                    else {
                        continue;
                    };
                    if let Some(p) = self.parent_mut(*table).filter(|p| p.uuid == *parent) {
                        p.children.insert(uuid);
                    }
                    self.owned.push(Owned {
                        table: *table,
                        uuid,
                        key,
                        row: row.clone(),
                    });
                }
                Change::Update { uuid, row, .. } => {
                    if let Some(o) = self.owned.iter_mut().find(|o| o.uuid == *uuid) {
                        for (c, d) in row.iter() {
                            o.row.insert(c, d.clone());
                        }
                    }
                }
                Change::SetGlobalOptions { uuid, options } => {
                    if let Some(g) = self.nb_global.as_mut().filter(|g| g.uuid == *uuid) {
                        g.options.extend(options.clone());
                    }
                }
                Change::Delete { table, uuid, .. } => {
                    self.owned.retain(|o| o.uuid != *uuid);
                    if let Some(p) = self.parent_mut(*table) {
                        p.children.remove(uuid);
                    }
                }
            }
        }
    }

    fn parent_mut(&mut self, table: ChildTable) -> Option<&mut crate::observed::Parent> {
        match table {
            ChildTable::GatewayChassis => self.gateway_port.as_mut(),
            _ => self.router.as_mut(),
        }
    }
}
