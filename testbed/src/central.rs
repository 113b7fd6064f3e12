//! The central control plane: NB and SB databases and `ovn-northd`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cmd;
use crate::daemon::{Daemon, appctl};
use crate::error::Result;
use crate::lab::{Lab, LabShared, schemas};
use crate::ovsdb_server::{OvsdbServer, OvsdbServerOptions};

/// How to start a [`Central`].
#[derive(Debug, Clone, Default)]
pub struct CentralOptions {
    tcp: bool,
}

impl CentralOptions {
    /// Also let NB and SB listen on free TCP ports of 127.0.0.1 (unix sockets are always on).
    pub fn with_tcp(mut self) -> Self {
        self.tcp = true;
        self
    }
}

/// NB and SB `ovsdb-server` plus `ovn-northd`, all on unix sockets in the lab directory.
#[derive(Debug)]
pub struct Central {
    // Field order is stop order: northd first, then the databases.
    northd: Daemon,
    nb: OvsdbServer,
    sb: OvsdbServer,
    dir: PathBuf,
    started_in: Duration,
    _lab: Arc<LabShared>,
}

impl Lab {
    /// Starts NB, SB and northd, and waits until northd is active.
    pub fn start_central(&self, options: CentralOptions) -> Result<Central> {
        let start = Instant::now();
        let dir = self.shared.subdir("central")?;
        let with_tcp = |o: OvsdbServerOptions| if options.tcp { o.with_tcp() } else { o };
        let nb = OvsdbServer::start(
            &self.shared,
            &dir,
            with_tcp(OvsdbServerOptions::new(schemas::NB).with_name("nb")),
            None,
        )?;
        let sb = OvsdbServer::start(
            &self.shared,
            &dir,
            with_tcp(OvsdbServerOptions::new(schemas::SB).with_name("sb")),
            None,
        )?;
        let args = vec![
            format!("--unixctl={}", dir.join("northd.ctl").display()),
            format!("--ovnnb-db={}", nb.unix_remote()),
            format!("--ovnsb-db={}", sb.unix_remote()),
        ];
        let northd = Daemon::start("northd", &dir, None, "ovn-northd", &args)?;
        let ctl = dir.join("northd.ctl");
        cmd::wait_for(
            || "ovn-northd to become active".to_string(),
            Duration::from_secs(10),
            || {
                appctl(&dir, &ctl, &["status"])
                    .ok()
                    .filter(|s| s.contains("active") && !s.contains("standby"))
            },
        )?;
        Ok(Central {
            northd,
            nb,
            sb,
            dir,
            started_in: start.elapsed(),
            _lab: self.shared.clone(),
        })
    }
}

impl Central {
    /// The NB server.
    pub fn nb(&self) -> &OvsdbServer {
        &self.nb
    }

    /// The SB server.
    pub fn sb(&self) -> &OvsdbServer {
        &self.sb
    }

    /// `unix:<nb socket>`.
    pub fn nb_remote(&self) -> String {
        self.nb.unix_remote()
    }

    /// `unix:<sb socket>`.
    pub fn sb_remote(&self) -> String {
        self.sb.unix_remote()
    }

    /// How long NB, SB and northd took to come up.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// Runs `ovn-nbctl` against the NB; returns its stdout.
    pub fn nbctl(&self, args: &[&str]) -> Result<String> {
        let mut command = cmd::in_dir("ovn-nbctl", &self.dir);
        command
            .arg(format!("--db={}", self.nb_remote()))
            .arg("--timeout=20")
            .args(args);
        cmd::output(&mut command)
    }

    /// Runs `ovn-sbctl` against the SB; returns its stdout.
    pub fn sbctl(&self, args: &[&str]) -> Result<String> {
        let mut command = cmd::in_dir("ovn-sbctl", &self.dir);
        command
            .arg(format!("--db={}", self.sb_remote()))
            .arg("--timeout=20")
            .args(args);
        cmd::output(&mut command)
    }

    /// Waits until the logical switch port `name` reports `up=true` in the NB.
    pub fn wait_port_up(&self, name: &str, timeout: Duration) -> Result<()> {
        cmd::wait_for(
            || format!("logical switch port {name} to be up"),
            timeout,
            || {
                self.nbctl(&["--if-exists", "get", "Logical_Switch_Port", name, "up"])
                    .ok()
                    .filter(|up| up.trim() == "true")
            },
        )
        .map(drop)
    }

    /// Waits until every chassis has caught up with the NB (`ovn-nbctl --wait=hv sync`).
    pub fn sync_hv(&self) -> Result<()> {
        self.nbctl(&["--wait=hv", "sync"]).map(drop)
    }

    /// Whether northd is running.
    pub fn northd_running(&self) -> bool {
        self.northd.is_running()
    }

    /// PIDs of the central daemons that run now.
    pub fn pids(&self) -> Vec<i32> {
        [self.northd.live_pid(), self.nb.pid(), self.sb.pid()]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// Thin `ovn-nbctl` helpers for lab topologies (the typed way to build them is `ovn-model`).
impl Central {
    /// Creates logical router `name`.
    pub fn add_router(&self, name: &str) -> Result<()> {
        self.nbctl(&["lr-add", name]).map(drop)
    }

    /// Creates logical switch `switch` with `gateway` (address with prefix, e.g.
    /// `10.0.1.1/24`) as its router port on `router`: router port `<router>-<switch>` with `mac`,
    /// and switch port `<switch>-<router>` of type router.
    pub fn add_routed_switch(
        &self,
        router: &str,
        switch: &str,
        gateway: ipnet::IpNet,
        mac: &str,
    ) -> Result<()> {
        let lrp = format!("{router}-{switch}");
        let lsp = format!("{switch}-{router}");
        self.nbctl(&[
            "ls-add",
            switch,
            "--",
            "lrp-add",
            router,
            &lrp,
            mac,
            &gateway.to_string(),
            "--",
            "lsp-add",
            switch,
            &lsp,
            "--",
            "lsp-set-type",
            &lsp,
            "router",
            "--",
            "lsp-set-addresses",
            &lsp,
            "router",
            "--",
            "lsp-set-options",
            &lsp,
            &format!("router-port={lrp}"),
        ])
        .map(drop)
    }

    /// Connects `router` to the external network ([`crate::ExternalNet`]): router port `port`
    /// with `mac` and `address` (with prefix, e.g. `10.18.0.254/24`), on a logical switch `ext`
    /// that holds a localnet port on [`crate::ExternalNet::PHYSNET`] and the router's port, which
    /// answers ARP for the router's NAT addresses. Make the port a gateway port (gateway chassis
    /// or HA group) for traffic to flow.
    pub fn attach_external(
        &self,
        router: &str,
        port: &str,
        mac: &str,
        address: ipnet::IpNet,
    ) -> Result<()> {
        let physnet = format!("network_name={}", crate::ExternalNet::PHYSNET);
        let router_port = format!("router-port={port}");
        self.nbctl(&[
            "lrp-add",
            router,
            port,
            mac,
            &address.to_string(),
            "--",
            "ls-add",
            "ext",
            "--",
            "lsp-add",
            "ext",
            "ext-localnet",
            "--",
            "lsp-set-type",
            "ext-localnet",
            "localnet",
            "--",
            "lsp-set-addresses",
            "ext-localnet",
            "unknown",
            "--",
            "lsp-set-options",
            "ext-localnet",
            &physnet,
            "--",
            "lsp-add",
            "ext",
            "ext-router",
            "--",
            "lsp-set-type",
            "ext-router",
            "router",
            "--",
            "lsp-set-addresses",
            "ext-router",
            "router",
            "--",
            "lsp-set-options",
            "ext-router",
            &router_port,
            "nat-addresses=router",
        ])
        .map(drop)
    }

    /// Wires a management port for `node` (as `ovn0` is in ovn-kubernetes and Kube-OVN): logical
    /// switch port `mgmt-<node>` on `switch` with `mac` and the address of `ip` (no port
    /// security: the node forwards traffic of other sources through it), the internal port
    /// `name` in the node ([`Node::add_mgmt_port`](crate::Node::add_mgmt_port)) with `ip`
    /// (address with prefix), and waits until the port is up. Returns the logical switch port's
    /// name.
    pub fn add_mgmt_port(
        &self,
        node: &crate::Node,
        switch: &str,
        name: &str,
        mac: &str,
        ip: ipnet::IpNet,
    ) -> Result<String> {
        let lsp = format!("mgmt-{}", node.name());
        let addresses = format!("{mac} {}", ip.addr());
        self.nbctl(&[
            "lsp-add",
            switch,
            &lsp,
            "--",
            "lsp-set-addresses",
            &lsp,
            &addresses,
        ])?;
        node.add_mgmt_port(name, &lsp, mac, ip)?;
        self.wait_port_up(&lsp, Duration::from_secs(20))?;
        Ok(lsp)
    }

    /// The name of the chassis logical port `port` is bound to in the Southbound database, if
    /// it is bound (`cr-<port>` for a distributed gateway port's chassis-resident part).
    pub fn port_chassis(&self, port: &str) -> Option<String> {
        let uuid = self
            .sbctl(&[
                "--bare",
                "--columns=chassis",
                "find",
                "port_binding",
                &format!("logical_port={port}"),
            ])
            .ok()?;
        let uuid = uuid.trim();
        if uuid.is_empty() {
            return None;
        }
        let name = self
            .sbctl(&["--bare", "--columns=name", "list", "chassis", uuid])
            .ok()?;
        Some(name.trim().to_owned())
    }

    /// Adds logical switch port `port` to `switch` with `mac` and `ip` as its addresses and
    /// port security.
    pub fn add_switch_port(
        &self,
        switch: &str,
        port: &str,
        mac: &str,
        ip: std::net::IpAddr,
    ) -> Result<()> {
        let addresses = format!("{mac} {ip}");
        self.nbctl(&[
            "lsp-add",
            switch,
            port,
            "--",
            "lsp-set-addresses",
            port,
            &addresses,
            "--",
            "lsp-set-port-security",
            port,
            &addresses,
        ])
        .map(drop)
    }
}
