//! Shared helpers for the real-server transaction tests.
//!
//! Transactions go to a real NB `ovsdb-server` started by the testbed. With the `client`
//! feature they are sent by ovnkit's own client; without it, with `ovsdb-client transact` (the
//! JSON is still ovnkit's serialization and the reply is decoded by ovnkit's result decoder).
//! Either way they are read back independently with `ovsdb-client dump` and `ovn-nbctl`.

#![allow(dead_code)]

pub mod sample;

use std::process::Command;

use ovn_testbed::{Lab, OvsdbServer, OvsdbServerOptions, schemas};
use ovsdb::{DatabaseSchema, DatumSeed, Row, TransactError, TransactOutcome, Transaction};
use serde_json::Value;

/// ovnkit's client on a runtime of its own, so that the tests can stay synchronous.
#[cfg(feature = "client")]
struct Ovnkit {
    rt: tokio::runtime::Runtime,
    client: ovsdb::client::Client,
}

#[cfg(feature = "client")]
impl Ovnkit {
    fn connect(remote: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config = ovsdb::client::ConnectConfig::new(remote);
        let (driver, client, _updates) = rt
            .block_on(ovsdb::client::connect(&config))
            .unwrap_or_else(|e| panic!("connect to {remote}: {e}"));
        rt.spawn(async move {
            if let Err(e) = driver.await {
                eprintln!("ovsdb driver: {e}");
            }
        });
        Ovnkit { rt, client }
    }

    fn transact_raw(&self, txn: &Transaction) -> Box<serde_json::value::RawValue> {
        self.rt
            .block_on(self.client.transact_raw(txn))
            .unwrap_or_else(|e| panic!("transact: {e}"))
    }
}

/// A lab with one bare server (no northd, so nothing else writes to it).
pub struct Nb {
    #[cfg(feature = "client")]
    ovnkit: Ovnkit,
    /// The server.
    pub server: OvsdbServer,
    /// Its schema, as `get_schema` returns it.
    pub schema: DatabaseSchema,
    /// Kept last so the server stops before the lab goes.
    pub lab: Lab,
}

/// Starts a bare NB server; `None` when this machine cannot run a lab (and `CI` is not `true`).
pub fn nb() -> Option<Nb> {
    server(schemas::NB, "OVN_Northbound")
}

/// Starts a bare server for the schema file `schema`, whose database is `db`.
pub fn server(schema: &str, db: &str) -> Option<Nb> {
    let lab = Lab::for_test()?;
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(schema))
        .expect("start ovsdb-server");
    let text = server
        .client(&["get-schema"], &[db])
        .expect("ovsdb-client get-schema");
    let schema = DatabaseSchema::from_json_str(&text).expect("parse get-schema reply");
    Some(Nb {
        #[cfg(feature = "client")]
        ovnkit: Ovnkit::connect(&server.unix_remote()),
        server,
        schema,
        lab,
    })
}

impl Nb {
    /// Sends `txn` (unvalidated, so that the server's own errors can be tested) and decodes
    /// the reply against the schema.
    pub fn transact(&self, txn: &Transaction) -> Result<TransactOutcome, TransactError> {
        #[cfg(feature = "client")]
        let reply = self.ovnkit.transact_raw(txn).get().to_owned();
        #[cfg(not(feature = "client"))]
        let reply = {
            let params = serde_json::to_string(txn).expect("serialize transaction");
            self.server
                .client(&["transact"], &[&params])
                .expect("ovsdb-client transact")
        };
        txn.decode_result_typed(reply.trim().as_bytes(), &self.schema)
    }

    /// Validates, then sends.
    pub fn validated(&self, txn: &Transaction) -> Result<TransactOutcome, TransactError> {
        txn.validate(&self.schema)
            .expect("transaction fits the schema");
        self.transact(txn)
    }

    /// Every row of `table` as `ovsdb-client dump -f json` prints it, decoded against the schema.
    pub fn dump(&self, table: &str) -> Vec<Row> {
        let out = self
            .server
            .client(&["dump", "-f", "json"], &[&self.schema.name, table])
            .expect("ovsdb-client dump");
        let v: Value = serde_json::from_str(&out).expect("dump output is JSON");
        let ts = self.schema.table(table).expect("table in schema");
        let headings: Vec<&str> = v["headings"]
            .as_array()
            .expect("headings")
            .iter()
            .map(|h| h.as_str().expect("heading"))
            .collect();
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|cells| {
                let cells = cells.as_array().expect("row cells");
                headings
                    .iter()
                    .zip(cells)
                    .map(|(h, cell)| {
                        let ty = &ts.column(h).expect("dumped column in schema").type_;
                        let d = DatumSeed(ty).decode_value(cell).unwrap_or_else(|e| {
                            panic!("dump cell {table}.{h} = {cell} does not decode: {e}")
                        });
                        (h.to_string(), d)
                    })
                    .collect()
            })
            .collect()
    }

    /// Runs `ovn-nbctl --db=<this server>` with `args`; returns stdout or panics with stderr.
    pub fn nbctl(&self, args: &[&str]) -> String {
        let mut c = Command::new("ovn-nbctl");
        for var in ["OVS_RUNDIR", "OVS_LOGDIR", "OVN_RUNDIR", "OVN_LOGDIR"] {
            c.env(var, self.lab.dir());
        }
        c.arg(format!("--db={}", self.server.unix_remote()))
            .arg("--timeout=20")
            .args(args);
        let out = c.output().expect("run ovn-nbctl");
        assert!(
            out.status.success(),
            "ovn-nbctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }
}
