//! Wanted rows: typed `ovn-model` rows the intents ask for ([`Wanted`]), tagged
//! ([`Draft`]), then encoded strictly ([`Want`]).

use std::collections::BTreeMap;

use ovn_model::nb;
use ovsdb::{EncodeError, Row, Table};

use crate::error::PlanError;
use crate::observed::ChildTable;
use crate::tags::Key;

/// A row the intents ask for, encoded.
pub(crate) struct Want {
    pub(crate) key: Key,
    pub(crate) table: ChildTable,
    pub(crate) row: Row,
    pub(crate) what: String,
}

/// A typed row the intents ask for.
pub(crate) enum Wanted {
    Policy(nb::LogicalRouterPolicy),
    Route(nb::LogicalRouterStaticRoute),
    Nat(nb::Nat),
    Chassis(nb::GatewayChassis),
}

impl Wanted {
    fn table(&self) -> ChildTable {
        match self {
            Wanted::Policy(_) => ChildTable::Policy,
            Wanted::Route(_) => ChildTable::StaticRoute,
            Wanted::Nat(_) => ChildTable::Nat,
            Wanted::Chassis(_) => ChildTable::GatewayChassis,
        }
    }

    pub(crate) fn external_ids(&mut self) -> &mut BTreeMap<String, String> {
        match self {
            Wanted::Policy(r) => &mut r.external_ids,
            Wanted::Route(r) => &mut r.external_ids,
            Wanted::Nat(r) => &mut r.external_ids,
            Wanted::Chassis(r) => &mut r.external_ids,
        }
    }

    fn to_row(&self) -> Result<Row, EncodeError> {
        match self {
            Wanted::Policy(r) => r.to_row(),
            Wanted::Route(r) => r.to_row(),
            Wanted::Nat(r) => r.to_row(),
            Wanted::Chassis(r) => r.to_row(),
        }
    }
}

/// A wanted row before encoding.
pub(crate) struct Draft {
    pub(crate) key: Key,
    pub(crate) value: Wanted,
    pub(crate) what: String,
}

pub(crate) fn want(key: Key, mut value: Wanted, what: String) -> Draft {
    *value.external_ids() = key.external_ids();
    Draft { key, value, what }
}

/// Encodes the drafts strictly (a value the model refuses is a planner bug).
pub(crate) fn encode(drafts: Vec<Draft>) -> Result<Vec<Want>, PlanError> {
    drafts
        .into_iter()
        .map(|d| {
            let row = d.value.to_row().map_err(|source| PlanError::Encode {
                what: d.what.clone(),
                source,
            })?;
            Ok(Want {
                key: d.key,
                table: d.value.table(),
                row,
                what: d.what,
            })
        })
        .collect()
}
