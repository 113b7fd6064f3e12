//! The ovnkit client of the peer comparison in `benches/peers/`: `benches/peers/run.py` starts
//! it with the settings of the contract in `benches/peers/README.md` (environment variables
//! `BENCH_WORKLOAD`, `OVSDB_REMOTE`, `BENCH_DB`, `BENCH_N`, `BENCH_SWITCH`, `BENCH_PREFIX`,
//! and for W3/W4 `BENCH_RESULT_FILE`, `BENCH_READY_FILE`, `BENCH_GEN`); it exits 0 when the
//! workload is done and 3 for a workload it does not run.
//!
//! W1 creates the switch and N ports in one transaction; W2 creates N ports, one transaction
//! each, waiting for each reply. Both go through what users get: fetch the schema, build a
//! typed [`Transaction`], validate it against the schema, send it with
//! [`Client::transact_validated`]. W3 (initial sync) and W4 (fan-out) run a replica client
//! (`ovsdb_bench/w34.rs`).

use std::env;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use ovsdb::client::{Client, ConnectConfig, connect};
#[path = "ovsdb_bench/w34.rs"]
mod w34;

use ovsdb::{
    Condition, DatabaseSchema, Datum, Insert, Mutate, Mutation, NamedUuid, Row, Transaction,
};

/// The settings of the contract (`benches/peers/README.md`).
struct Bench {
    remote: String,
    db: String,
    n: u64,
    switch: String,
    prefix: String,
}

impl Bench {
    fn from_env() -> Result<Self> {
        let var = |k: &str| env::var(k).with_context(|| format!("{k} is not set"));
        Ok(Bench {
            remote: var("OVSDB_REMOTE")?,
            db: var("BENCH_DB")?,
            n: var("BENCH_N")?.parse().context("BENCH_N")?,
            switch: var("BENCH_SWITCH")?,
            prefix: var("BENCH_PREFIX")?,
        })
    }

    /// Port `i` as the contract spells it: name, addresses and external_ids.
    fn port_row(&self, i: u64) -> Row {
        let name = format!("{}{i}", self.prefix);
        let address = format!(
            "0a:00:00:{:02x}:{:02x}:{:02x} 10.{}.{}.{}",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            16 + (i >> 16),
            (i >> 8) & 255,
            i & 255
        );
        Row::new()
            .with("addresses", Datum::set([address]))
            .with("external_ids", Datum::map([("pod", name.as_str())]))
            .with("name", name)
    }
}

fn main() -> ExitCode {
    let workload = env::var("BENCH_WORKLOAD").unwrap_or_default();
    if !matches!(workload.as_str(), "W1" | "W2" | "W3" | "W4") {
        eprintln!("workload {workload:?} is not supported by this client yet");
        return ExitCode::from(3);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&workload)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{workload} failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(workload: &str) -> Result<()> {
    let bench = Bench::from_env()?;
    match workload {
        "W3" => return w34::w3(&bench.remote, &bench.db, bench.n).await,
        "W4" => {
            let gen_value = env::var("BENCH_GEN").context("BENCH_GEN is not set")?;
            return w34::w4(&bench.remote, &bench.db, bench.n, &gen_value).await;
        }
        _ => {}
    }
    let (driver, client, _updates) = connect(&ConnectConfig::new(&bench.remote))
        .await
        .context("connect")?;
    let driver = tokio::spawn(driver);
    let schema = client.get_schema(&bench.db).await.context("get_schema")?;
    match workload {
        "W1" => w1(&bench, &client, &schema).await?,
        "W2" => w2(&bench, &client, &schema).await?,
        other => bail!("unsupported workload {other}"),
    }
    drop(client);
    driver.await.context("driver task")?.context("driver")?;
    Ok(())
}

/// One transaction: the switch and N ports attached to it.
async fn w1(bench: &Bench, client: &Client, schema: &DatabaseSchema) -> Result<()> {
    let n = usize::try_from(bench.n)?;
    let mut txn = Transaction::with_capacity(&bench.db, n + 1);
    let mut ports = Vec::with_capacity(n);
    for i in 1..=bench.n {
        let named = NamedUuid::numbered("p", i);
        txn.push(Insert::new("Logical_Switch_Port", bench.port_row(i)).uuid_name(named.clone()));
        ports.push(named);
    }
    txn.push(Insert::new(
        "Logical_Switch",
        Row::new()
            .with("name", bench.switch.as_str())
            .with("ports", Datum::set(ports)),
    ));
    client
        .transact_validated(schema, &txn)
        .await
        .context("W1 transaction")?;
    Ok(())
}

/// N transactions in sequence, each adding one port to the existing switch.
async fn w2(bench: &Bench, client: &Client, schema: &DatabaseSchema) -> Result<()> {
    let port = NamedUuid::new("port")?;
    for i in 1..=bench.n {
        let mut txn = Transaction::with_capacity(&bench.db, 2);
        txn.push(Insert::new("Logical_Switch_Port", bench.port_row(i)).uuid_name(port.clone()));
        let attach = txn.push(
            Mutate::new("Logical_Switch")
                .filter(Condition::eq("name", bench.switch.as_str()))
                .mutation(Mutation::insert("ports", port.clone())),
        );
        let outcome = client
            .transact_validated(schema, &txn)
            .await
            .with_context(|| format!("W2 transaction {i}"))?;
        if outcome.count(&attach) != Some(1) {
            bail!("W2 transaction {i}: switch {} not found", bench.switch);
        }
    }
    Ok(())
}
