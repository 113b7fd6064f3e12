//! A real OVN central (NB, SB, northd) from `ovn-testbed`, the `ovsdb` client to write through,
//! and `ovn-nbctl` to read back.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use ovn_model::plan::{Plan, PlanError, Prepared};
use ovn_testbed::{Central, CentralOptions, Lab};
use ovsdb::client::{Client, ConnectConfig, connect};
use ovsdb::{DatabaseSchema, DatumSeed, Row, Table, TransactOutcome, Uuid};

/// A lab with a central and a client connected to its NB.
pub struct Nb {
    pub central: Central,
    pub schema: DatabaseSchema,
    client: Client,
    rt: tokio::runtime::Runtime,
    _lab: Lab,
}

impl Nb {
    /// `None` when the machine cannot run OVN (a skip outside CI; `Lab::for_test` fails in CI).
    pub fn start() -> Option<Nb> {
        let lab = Lab::for_test()?;
        let central = lab
            .start_central(CentralOptions::default())
            .expect("central starts");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (client, schema) = rt.block_on(async {
            let (driver, client, _updates) = connect(&ConnectConfig::new(central.nb_remote()))
                .await
                .expect("connect to NB");
            tokio::spawn(driver);
            let schema = client
                .get_schema("OVN_Northbound")
                .await
                .expect("get_schema");
            (client, schema)
        });
        Some(Nb {
            central,
            schema,
            client,
            rt,
            _lab: lab,
        })
    }

    /// Builds `plan` against the server's schema and sends it as one transaction.
    pub fn apply(&self, plan: Plan) -> (Prepared, TransactOutcome) {
        let prepared = plan
            .validated(&self.schema)
            .expect("plan fits the server's schema");
        let outcome = self
            .try_send(&prepared)
            .unwrap_or_else(|e| panic!("transaction failed: {e}"));
        (prepared, outcome)
    }

    /// Sends a prepared plan; a refused transaction or a count that is not one comes back in
    /// the plan's words.
    pub fn try_send(&self, prepared: &Prepared) -> Result<TransactOutcome, PlanError> {
        self.rt.block_on(prepared.send(&self.client))
    }

    /// Takes OVSDB lock `name` on this client's connection; whether it was granted at once.
    pub fn lock(&self, name: &str) -> bool {
        self.rt
            .block_on(self.client.lock(name))
            .expect("lock request")
    }

    /// Sends `plan`; the created rows' UUIDs are not needed.
    pub fn run(&self, plan: Plan) {
        let _ = self.apply(plan);
    }

    /// A replica of `tables`, filled by a `monitor` request through the client.
    pub fn replica(&self, tables: &[&str]) -> ovsdb::replica::Replica {
        use ovsdb::monitor::{MonitorMethod, MonitorRequest, TableMonitor};
        let mut monitor = MonitorRequest::new("OVN_Northbound", MonitorMethod::MonitorCondSince);
        for t in tables {
            monitor = monitor.with_table(*t, TableMonitor::all());
        }
        self.rt
            .block_on(self.client.fetch(&monitor, &self.schema))
            .expect("monitor request")
    }

    /// Every row of `T`'s table as `ovn-nbctl --format=json list` prints it, decoded with the
    /// model. Decoding must need no forgiveness here: the model is the server's schema.
    pub fn rows<T: Table>(&self) -> Vec<T> {
        let out = self
            .central
            .nbctl(&["--format=json", "list", T::TABLE])
            .expect("ovn-nbctl list");
        let json: serde_json::Value = serde_json::from_str(&out).expect("nbctl JSON");
        let headings: Vec<&str> = json["headings"]
            .as_array()
            .expect("headings")
            .iter()
            .map(|h| h.as_str().expect("heading"))
            .collect();
        let table = self.schema.table(T::TABLE).expect("table on server");
        let mut rows = Vec::new();
        for data in json["data"].as_array().expect("data") {
            let mut row = Row::new();
            for (h, cell) in headings.iter().zip(data.as_array().expect("row")) {
                let col = table.column(h).unwrap_or_else(|| panic!("column {h}"));
                let datum = DatumSeed(&col.type_)
                    .decode_value(cell)
                    .expect("cell decodes");
                row.insert(*h, datum);
            }
            let uuid = row.uuid().expect("_uuid");
            let (v, warnings) = T::from_row(uuid, &row);
            assert!(warnings.is_empty(), "{}: {warnings:?}", T::TABLE);
            rows.push(v);
        }
        rows
    }

    /// The one row of `T` whose UUID is `uuid`.
    pub fn row<T: Table>(&self, uuid: Uuid) -> T {
        self.rows::<T>()
            .into_iter()
            .find(|r| r.uuid() == uuid)
            .unwrap_or_else(|| panic!("no {} row {uuid}", T::TABLE))
    }

    /// `ovn-nbctl ARGS`, trimmed.
    pub fn nbctl(&self, args: &[&str]) -> String {
        self.central
            .nbctl(args)
            .unwrap_or_else(|e| panic!("ovn-nbctl {args:?}: {e}"))
            .trim()
            .to_owned()
    }
}
