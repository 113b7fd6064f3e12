//! Changes that wire rows together: router ports to switch ports, load balancers to switches
//! and routers, ports to port groups, DHCP options and DNS records to ports and switches.

use ovsdb::table::{Ref, WeakRef};
use ovsdb::{Atom, Datum, Mutation, Table};

use crate::nb::{
    DhcpOptions, Dns, HaChassisGroup, LoadBalancer, LoadBalancerGroup, LogicalRouter,
    LogicalRouterPort, LogicalSwitch, LogicalSwitchPort, PortGroup,
};
use crate::plan::{Plan, PlanError, Target};

/// Tables with a `load_balancer` column of weak references to `Load_Balancer`.
pub trait HasLoadBalancers: Table {}
impl HasLoadBalancers for LogicalSwitch {}
impl HasLoadBalancers for LogicalRouter {}
impl HasLoadBalancers for LoadBalancerGroup {}

impl Plan {
    /// Adds `router_port` to `router`, and to `switch` a `router`-type port named
    /// `switch_port` peered with it (the pair `ovn-nbctl lrp-add` + `lsp-add` +
    /// `lsp-set-type router` + `lsp-set-options router-port=...` makes), in this plan.
    ///
    /// # Errors
    /// As [`Plan::insert_child`].
    pub fn connect_router_to_switch(
        &mut self,
        router: impl Into<Target<LogicalRouter>>,
        switch: impl Into<Target<LogicalSwitch>>,
        router_port: &LogicalRouterPort,
        switch_port: &str,
    ) -> Result<(Ref<LogicalRouterPort>, Ref<LogicalSwitchPort>), PlanError> {
        let lrp = self.insert_child(router, router_port)?;
        let lsp = self.insert_child(
            switch,
            &LogicalSwitchPort::router(switch_port, &router_port.name),
        )?;
        Ok((lrp, lsp))
    }

    /// Applies `lb` on every switch (or router, or group) `target` selects.
    pub fn attach_load_balancer<T: HasLoadBalancers>(
        &mut self,
        target: impl Into<Target<T>>,
        lb: &Ref<LoadBalancer>,
    ) -> Result<(), PlanError> {
        self.add_reference(target, "load_balancer", lb.id().to_atom())
    }

    /// Stops applying `lb` on `target`.
    pub fn detach_load_balancer<T: HasLoadBalancers>(
        &mut self,
        target: impl Into<Target<T>>,
        lb: &Ref<LoadBalancer>,
    ) -> Result<(), PlanError> {
        let m = Mutation::delete("load_balancer", Datum::set([lb.id().to_atom()]));
        self.mutate(target, m)
    }

    /// Adds switch ports to a port group.
    pub fn add_port_group_ports(
        &mut self,
        group: impl Into<Target<PortGroup>>,
        ports: &[Ref<LogicalSwitchPort>],
    ) -> Result<(), PlanError> {
        let group = group.into();
        for p in ports {
            self.add_reference(group.clone(), "ports", p.id().to_atom())?;
        }
        Ok(())
    }

    /// Removes switch ports from a port group.
    pub fn remove_port_group_ports(
        &mut self,
        group: impl Into<Target<PortGroup>>,
        ports: &[Ref<LogicalSwitchPort>],
    ) -> Result<(), PlanError> {
        let atoms: Vec<Atom> = ports.iter().map(|p| p.id().to_atom()).collect();
        self.mutate(group, Mutation::delete("ports", Datum::set(atoms)))
    }

    /// Serves `dhcp` (DHCPv4) to `port`.
    pub fn set_dhcpv4_options(
        &mut self,
        port: impl Into<Target<LogicalSwitchPort>>,
        dhcp: &Ref<DhcpOptions>,
    ) -> Result<(), PlanError> {
        let row = LogicalSwitchPort {
            dhcpv4_options: Some(WeakRef::from_id(dhcp.id().clone())),
            ..LogicalSwitchPort::default()
        };
        self.update(port, &row, &["dhcpv4_options"])
    }

    /// Answers DNS queries from `switch`'s ports with `dns`'s records.
    pub fn attach_dns(
        &mut self,
        switch: impl Into<Target<LogicalSwitch>>,
        dns: &Ref<Dns>,
    ) -> Result<(), PlanError> {
        self.add_reference(switch, "dns_records", dns.id().to_atom())
    }

    /// Makes `group` the HA chassis group of a router port (centralized gateway).
    pub fn set_router_port_ha_group(
        &mut self,
        port: impl Into<Target<LogicalRouterPort>>,
        group: &Ref<HaChassisGroup>,
    ) -> Result<(), PlanError> {
        let row = LogicalRouterPort {
            ha_chassis_group: Some(group.clone()),
            ..LogicalRouterPort::default()
        };
        self.update(port, &row, &["ha_chassis_group"])
    }
}
