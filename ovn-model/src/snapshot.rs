//! A typed view over a replica [`Snapshot`]: look rows up by UUID or name and follow references
//! (the ports of a switch, the switch of a port), decoding only the rows asked for. Nothing is
//! copied up front: [`Typed::new`] is free, each lookup decodes the rows it returns.
//!
//! ```
//! use ovn_model::nb::{LogicalSwitch, LogicalSwitchPort};
//! use ovn_model::snapshot::Typed;
//! use ovsdb::monitor::{Clause, MonitorMethod, MonitorRequest, TableMonitor};
//! use ovsdb::replica::Replica;
//!
//! let mut replica = Replica::new(ovn_model::nb::schema());
//! let monitor = MonitorRequest::new("OVN_Northbound", MonitorMethod::Monitor)
//!     .with_table("Logical_Switch", TableMonitor::all())
//!     .with_table("Logical_Switch_Port", TableMonitor::all());
//! let (sw, p1) = ("5a3c0f1e-4a1b-4c2d-8e3f-9a0b1c2d3e4f", "7d1f4e2a-3b5c-4d6e-8f70-a1b2c3d4e5f6");
//! let reply = format!(r#"{{"Logical_Switch":{{"{sw}":{{"new":{{"name":"sw0",
//!     "ports":["uuid","{p1}"]}}}}}},
//!     "Logical_Switch_Port":{{"{p1}":{{"new":{{"name":"pod1","addresses":"router"}}}}}}}}"#);
//! replica.apply_reply(&monitor, &reply).unwrap();
//!
//! let snap = replica.snapshot();
//! let nb = Typed::new(&snap);
//! let sw0: LogicalSwitch = nb.by_name("sw0").unwrap();
//! let ports: Vec<LogicalSwitchPort> = nb.children(&sw0);
//! assert_eq!(ports[0].name, "pod1");
//! let back: LogicalSwitch = nb.parent(&ports[0]).unwrap();
//! assert_eq!(back.name, "sw0");
//! ```

use ovsdb::monitor::{Clause, MonitorMethod, MonitorRequest, TableMonitor};
use ovsdb::replica::{RowView, Snapshot, TableView};
use ovsdb::table::Ref;
use ovsdb::{Atom, Datum, DecodeWarning, Table, Uuid};

use crate::owner::{self, Scope};
use crate::plan::PlanError;
use crate::reconcile::OwnedRow;
use crate::topology::ChildOf;

/// A monitor of every column of `tables` of `db` (`monitor_cond_since`, falling back to older
/// methods in the client): what a planner's observed state is read from. Planners list their
/// tables (for example `gateway::Observed::TABLES`).
#[must_use]
pub fn monitor(db: &str, tables: &[&str]) -> MonitorRequest {
    tables.iter().fold(
        MonitorRequest::new(db, MonitorMethod::MonitorCondSince),
        |m, t| m.with_table(*t, TableMonitor::all()),
    )
}

/// A monitor request built from model tables: a table by its model type, columns checked
/// against the model, conditions per table (`monitor_cond_since`, which the client falls back
/// from on older servers).
///
/// ```
/// use ovn_model::nb::{LogicalSwitch, LogicalSwitchPort};
/// use ovn_model::snapshot::Monitor;
/// use ovsdb::Condition;
///
/// let request = Monitor::nb()
///     .table::<LogicalSwitch>()
///     .columns::<LogicalSwitchPort>(&["name", "addresses", "up"])?
///     .filter::<LogicalSwitchPort>([Condition::eq("type", "").into()])
///     .into_request();
/// assert_eq!(request.tables.len(), 2);
/// assert!(Monitor::nb().columns::<LogicalSwitch>(&["nmae"]).is_err());
/// # Ok::<(), ovsdb::EncodeError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Monitor {
    request: MonitorRequest,
}

impl Monitor {
    /// A monitor of no table yet, of database `db`.
    pub fn new(db: &str) -> Self {
        Monitor {
            request: MonitorRequest::new(db, MonitorMethod::MonitorCondSince),
        }
    }

    /// Of OVN_Northbound.
    pub fn nb() -> Self {
        Self::new(crate::nb::DATABASE)
    }

    /// Of OVN_Southbound.
    pub fn sb() -> Self {
        Self::new(crate::sb::DATABASE)
    }

    /// Of Open_vSwitch.
    pub fn vswitch() -> Self {
        Self::new(crate::vswitch::DATABASE)
    }

    /// Every column of `T`'s table (keeps the table's conditions, if any).
    pub fn table<T: Table>(mut self) -> Self {
        let t = self.request.tables.remove(T::TABLE).unwrap_or_default();
        self.request = self
            .request
            .with_table(T::TABLE, TableMonitor { columns: None, ..t });
        self
    }

    /// Only `columns` of `T`'s table.
    ///
    /// # Errors
    /// [`ovsdb::EncodeError::UnknownColumn`] for a column the model does not have.
    pub fn columns<T: Table>(mut self, columns: &[&str]) -> Result<Self, ovsdb::EncodeError> {
        if let Some(c) = columns.iter().find(|c| !T::COLUMNS.contains(c)) {
            return Err(ovsdb::EncodeError::UnknownColumn {
                table: T::TABLE,
                column: (*c).to_owned(),
            });
        }
        let t = self.request.tables.remove(T::TABLE).unwrap_or_default();
        self.request = self
            .request
            .with_table(T::TABLE, t.with_columns(columns.iter().copied()));
        Ok(self)
    }

    /// Only the rows of `T`'s table matching one of `clauses` (the table is monitored with
    /// every column unless [`Monitor::columns`] says otherwise).
    pub fn filter<T: Table>(mut self, clauses: impl IntoIterator<Item = Clause>) -> Self {
        let t = self.request.tables.remove(T::TABLE).unwrap_or_default();
        self.request = self.request.with_table(T::TABLE, t.with_where(clauses));
        self
    }

    /// The request.
    pub fn into_request(self) -> MonitorRequest {
        self.request
    }
}

impl From<Monitor> for MonitorRequest {
    fn from(m: Monitor) -> Self {
        m.request
    }
}

/// Typed lookups over one [`Snapshot`].
#[derive(Debug, Clone, Copy)]
pub struct Typed<'a> {
    snap: &'a Snapshot,
}

impl<'a> Typed<'a> {
    /// A typed view of `snap`.
    #[must_use]
    pub fn new(snap: &'a Snapshot) -> Self {
        Typed { snap }
    }

    fn table<T: Table>(&self) -> Option<TableView<'a>> {
        self.snap.table(T::TABLE)
    }

    fn decode<T: Table>(row: RowView<'_>) -> T {
        Self::decode_checked(row).0
    }

    fn decode_checked<T: Table>(row: RowView<'_>) -> (T, Vec<DecodeWarning>) {
        T::from_row(row.uuid(), &row.to_row())
    }

    /// The row `uuid` of `T`'s table.
    #[must_use]
    pub fn get<T: Table>(&self, uuid: Uuid) -> Option<T> {
        self.table::<T>()?.get(uuid).map(Self::decode)
    }

    /// The row `uuid`, with what decoding it had to forgive (a server with another schema).
    #[must_use]
    pub fn get_checked<T: Table>(&self, uuid: Uuid) -> Option<(T, Vec<DecodeWarning>)> {
        self.table::<T>()?.get(uuid).map(Self::decode_checked)
    }

    /// The row a reference points at (`None` for a dangling or named reference).
    #[must_use]
    pub fn resolve<T: Table>(&self, r: &Ref<T>) -> Option<T> {
        self.get(r.uuid()?)
    }

    /// Every row of `T`'s table, decoded one by one as the iterator advances (only the UUIDs
    /// are collected first).
    pub fn rows<T: Table + 'a>(&self) -> impl Iterator<Item = T> + 'a {
        let table = self.table::<T>();
        let uuids: Vec<Uuid> = table
            .map(|t| t.rows().map(|r| r.uuid()).collect())
            .unwrap_or_default();
        uuids
            .into_iter()
            .filter_map(move |u| table?.get(u).map(Self::decode))
    }

    /// The first row of `T`'s table whose `name` is `name`, undecoded.
    fn view_by_name<T: Table>(&self, name: &str) -> Option<RowView<'a>> {
        let table = self.table::<T>()?;
        let key = [Datum::from(name)];
        if let Ok(found) = table.find_one(&["name"], &key) {
            return found;
        }
        table.rows().find(|r| r.get("name") == Some(&key[0]))
    }

    /// The first row whose `name` is `name` (through the schema's index on `name` when the table
    /// has one, else by a scan).
    #[must_use]
    pub fn by_name<T: Table>(&self, name: &str) -> Option<T> {
        self.view_by_name::<T>(name).map(Self::decode)
    }

    /// The UUID of the first row whose `name` is `name`, as [`Typed::by_name`] finds it but
    /// without decoding the row (a switch with thousands of ports is not copied to learn its
    /// UUID).
    #[must_use]
    pub fn uuid_by_name<T: Table>(&self, name: &str) -> Option<Uuid> {
        self.view_by_name::<T>(name).map(|r| r.uuid())
    }

    /// Every row whose `name` is `name` (several where the table has no unique index on it).
    #[must_use]
    pub fn all_by_name<T: Table>(&self, name: &str) -> Vec<T> {
        let Some(table) = self.table::<T>() else {
            return Vec::new();
        };
        let key = [Datum::from(name)];
        match table.find(&["name"], &key) {
            Ok(found) => found.into_iter().map(Self::decode).collect(),
            Err(_) => table
                .rows()
                .filter(|r| r.get("name") == Some(&key[0]))
                .map(Self::decode)
                .collect(),
        }
    }

    /// The one row named `name`, if any; several are an error, so that a plan can target the
    /// row by UUID (atomic) instead of by name (which OVSDB cannot refuse to apply to several
    /// rows).
    ///
    /// # Errors
    /// [`PlanError::Several`] when more than one row has the name.
    pub fn one_by_name<T: Table>(&self, name: &str) -> Result<Option<T>, PlanError> {
        let mut found = self.all_by_name::<T>(name);
        if found.len() > 1 {
            return Err(PlanError::Several {
                table: T::TABLE,
                name: name.to_owned(),
                count: found.len() as u64,
                what: "looked up by name".to_owned(),
            });
        }
        Ok(found.pop())
    }

    /// The rows of `T`'s table that `scope` owns (see [`crate::owner`]), in key order, through
    /// an index on `external_ids:ovnkit.io/object` (or `external_ids:ovnkit.io/owner`) when the
    /// replica has one, else by a scan of the table.
    #[must_use]
    pub fn owned<T: Table>(&self, scope: &Scope) -> Vec<OwnedRow> {
        let Some(table) = self.table::<T>() else {
            return Vec::new();
        };
        let (column, value) = match &scope.object {
            Some(o) => (format!("external_ids:{}", owner::OBJECT), o.as_str()),
            None => (
                format!("external_ids:{}", owner::OWNER),
                scope.owner.as_str(),
            ),
        };
        let rows: Vec<RowView<'_>> = match table.find(&[column.as_str()], &[Datum::from(value)]) {
            Ok(found) => found,
            Err(_) => table.rows().collect(),
        };
        let mut owned: Vec<OwnedRow> = rows
            .into_iter()
            .filter_map(|r| OwnedRow::from_view(T::TABLE, r))
            .filter(|o| scope.contains(&o.key))
            .collect();
        // The replica's order is a hash order: sort, so that the same state gives the same plan.
        owned.sort_by(|a, b| (&a.key, a.uuid).cmp(&(&b.key, b.uuid)));
        owned
    }

    /// The children of `parent` (the rows its `C::COLUMN` refers to), in UUID order.
    #[must_use]
    pub fn children<P: Table, C: ChildOf<P>>(&self, parent: &P) -> Vec<C> {
        let Some(row) = self.table::<P>().and_then(|t| t.get(parent.uuid())) else {
            return Vec::new();
        };
        let Some(children) = self.table::<C>() else {
            return Vec::new();
        };
        row.get(C::COLUMN)
            .into_iter()
            .flat_map(Datum::atoms)
            .filter_map(Atom::as_uuid)
            .filter_map(|u| children.get(u))
            .map(Self::decode)
            .collect()
    }

    /// The parent whose `C::COLUMN` refers to `child` (a scan of the parent table).
    #[must_use]
    pub fn parent<P: Table, C: ChildOf<P>>(&self, child: &C) -> Option<P> {
        let probe = Atom::Uuid(child.uuid());
        self.table::<P>()?
            .rows()
            .find(|r| {
                r.get(C::COLUMN)
                    .is_some_and(|d| d.atoms().any(|a| *a == probe))
            })
            .map(Self::decode)
    }
}
