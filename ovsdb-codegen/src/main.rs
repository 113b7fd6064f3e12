//! `ovsdb-codegen`: writes a typed Rust model for an OVSDB schema.
//!
//! ```text
//! ovsdb-codegen --schema /usr/share/ovn/ovn-nb.ovsschema --out src/nb.rs [--overrides nb.json]
//! ovsdb-codegen --server unix:/run/ovn/ovnnb_db.sock --db OVN_Northbound --out src/nb.rs
//! ```
//!
//! It needs the `cli` feature (`cargo run -p ovnkit-ovsdb-codegen --features cli -- ...`);
//! `--server` needs the `server` feature (`--features server`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Parser;
use ovsdb_codegen::Overrides;

/// Generate a typed Rust model from an OVSDB schema.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Read the schema from this `.ovsschema` file.
    #[arg(long, conflicts_with = "server", required_unless_present = "server")]
    schema: Option<PathBuf>,
    /// Read the schema from this server (`unix:PATH`, `tcp:IP:PORT`); needs `--db`.
    #[arg(long, requires = "db")]
    server: Option<String>,
    /// The database to read from `--server`.
    #[arg(long)]
    db: Option<String>,
    /// Where to write the Rust module.
    #[arg(long)]
    out: PathBuf,
    /// A JSON override table: `{"Table.column": {"type": "...", "codec": "path"}}`.
    #[arg(long)]
    overrides: Option<PathBuf>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let overrides = match &args.overrides {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Overrides::from_json_str(&text)?
        }
        None => Overrides::new(),
    };
    let schema: serde_json::Value = match (&args.schema, &args.server) {
        (Some(p), _) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        (None, Some(remote)) => {
            let db = args.db.as_deref().context("--server needs --db")?;
            from_server(remote, db)?
        }
        (None, None) => bail!("give --schema FILE or --server REMOTE --db NAME"),
    };
    let src = ovsdb_codegen::generate_from_value(&schema, &overrides)?;
    std::fs::write(&args.out, src).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}

#[cfg(feature = "server")]
fn from_server(remote: &str, db: &str) -> Result<serde_json::Value> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let config = ovsdb::client::ConnectConfig::new(remote);
        let (driver, client, _updates) = ovsdb::client::connect(&config).await?;
        let task = tokio::spawn(driver);
        let raw = client.get_schema_raw(db).await?;
        task.abort();
        Ok(serde_json::from_str(raw.get())?)
    })
}

#[cfg(not(feature = "server"))]
fn from_server(_remote: &str, _db: &str) -> Result<serde_json::Value> {
    bail!("this build has no --server support: rebuild with `--features server`")
}
