//! Prometheus metrics of the controller and the node agent, and the HTTP endpoint that serves
//! them.
//!
//! Each daemon keeps its metrics in one value ([`ControllerMetrics`], [`AgentMetrics`]) that
//! registers its families in a [`prometheus_client`] [`Registry`]; the loops update them as
//! they work, and [`serve`] answers `GET /metrics` with the registry in the OpenMetrics text
//! format (any other path is a 404). `ovnkit controller --metrics-addr` and `ovnkit agent
//! --metrics-addr` serve them.
//!
//! | family | type | labels | what |
//! |---|---|---|---|
//! | `ovnkit_controller_step_duration_seconds` | histogram | - | planning one step (every dirty object) |
//! | `ovnkit_reconcile_duration_seconds` | histogram | `kind` (`cluster`, `node`, `pod`, `gateway`, `service`, `networkpolicy`, `dns`) | planning one kind's part of a step |
//! | `ovnkit_reconcile_objects_total` | counter | `kind` | objects planned, by kind |
//! | `ovnkit_reconcile_errors_total` | counter | `kind`, `reason` | warnings reported on objects (a bad annotation, an address that could not be had, ...) |
//! | `ovnkit_queue_depth` | gauge | `kind` | objects waiting to be planned |
//! | `ovnkit_ovsdb_transactions_total` | counter | `result` (`committed`, `refused`) | transactions sent |
//! | `ovnkit_ovsdb_transaction_duration_seconds` | histogram | - | a transaction from send to the replica showing it |
//! | `ovnkit_ovsdb_connected` | gauge | `database` | 1 while synced with the database |
//! | `ovnkit_ovsdb_reconnects_total` | counter | `database` | connections lost |
//! | `ovnkit_ovsdb_lock_held` | gauge | `lock` | 1 while this controller holds the writers' lock |
//! | `subnet_available_ip_count`, `subnet_used_ip_count` | gauge | `subnet_name`, `protocol`, `subnet_cidr` | as Kube-OVN's families of the same names |
//! | `ovnkit_ipam_pool_size`, `ovnkit_ipam_pool_used`, `ovnkit_ipam_pool_available` | gauge | `subnet_name`, `protocol`, `pool` | per IP pool |
//! | `ovnkit_cni_request_duration_seconds` | histogram | `command`, `result` | a CNI request served by the agent |
//! | `ovnkit_cni_add_phase_duration_seconds` | histogram | `phase` (`wait_port`, `plumb`, `ovs`, `wait_up`) | the parts of a successful `ADD` |
//!
//! The agent's OVSDB connections (`OVN_Northbound`, `Open_vSwitch`) are in the `ovsdb`
//! families too.

mod agent;
mod controller;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::text::encode;
pub use prometheus_client::registry::Registry;

pub use agent::AgentMetrics;
pub use controller::ControllerMetrics;

/// The content type of the OpenMetrics text format.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry's metrics in the OpenMetrics text format.
#[must_use]
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

/// Why the metrics endpoint could not be served.
#[derive(Debug, thiserror::Error)]
#[error("serving metrics on {addr}")]
pub struct ServeError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// The IO error.
    #[source]
    pub source: std::io::Error,
}

/// Binds `addr` and answers `GET /metrics` from `registry` until `shutdown` completes; returns
/// the bound address (useful with port 0) and the server's future, to spawn.
///
/// # Errors
/// [`ServeError`] when the address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    registry: Arc<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, impl Future<Output = ()> + Send), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError { addr, source })?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let registry = registry.clone();
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                    render(&registry),
                )
            }
        }),
    );
    let server = async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(error = %e, "the metrics endpoint stopped");
        }
    };
    Ok((bound, server))
}

/// Buckets for durations from 0.5 ms to about 30 s.
pub(crate) fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 17)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_endpoint_serves_the_registry_and_nothing_else() {
        let mut registry = Registry::default();
        let metrics = ControllerMetrics::new(&mut registry);
        metrics.transaction("committed", std::time::Duration::from_millis(3));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, server) = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(registry),
            async move {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
        let task = tokio::spawn(server);
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(
                format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("/metrics").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains(CONTENT_TYPE), "{ok}");
        assert!(
            ok.contains("ovnkit_ovsdb_transactions_total{result=\"committed\"} 1"),
            "{ok}"
        );
        assert!(ok.trim_end().ends_with("# EOF"), "{ok}");
        let missing = get("/other").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        tx.send(()).unwrap();
        task.await.unwrap();
    }
}
