//! Every topology builder against a real OVN_Northbound: written with `ovn-model` through the
//! `ovsdb` client as one transaction, read back with `ovn-nbctl` (its JSON listing decoded with
//! the model and compared field by field, and its own commands as a second opinion).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use common::Nb;
use ovn_model::nb::{
    Acl, AclAction, AclDirection, AclSeverity, AddressSet, DhcpOptions, Dns, GatewayChassis,
    HaChassis, HaChassisGroup, LoadBalancer, LoadBalancerHealthCheck, LoadBalancerProtocol,
    LoadBalancerSelectionFields, LogicalRouter, LogicalRouterPolicy, LogicalRouterPolicyAction,
    LogicalRouterPort, LogicalRouterStaticRoute, LogicalSwitch, LogicalSwitchPort, Meter,
    MeterBand, MeterUnit, Nat, PortGroup, QoS, QoSDirection,
};
use ovn_model::plan::Plan;
use ovn_model::{LspAddress, MacAddr};
use ovsdb::table::{Ref, WeakRef};
use ovsdb::{Table, Uuid};

fn mac(s: &str) -> MacAddr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `expected` with the UUID the server gave it.
fn with_uuid<T: Table>(mut expected: T, set: impl FnOnce(&mut T)) -> T {
    set(&mut expected);
    expected
}

fn refs<T>(uuids: &[Uuid]) -> BTreeSet<Ref<T>> {
    uuids.iter().map(|u| Ref::new(*u)).collect()
}

/// What northd or ovn-controller write into a port, not the client.
fn without_status(mut p: LogicalSwitchPort) -> LogicalSwitchPort {
    p.up = None;
    p.dynamic_addresses = None;
    p
}

#[test]
fn switch_with_subnet_exclude_ips_and_ports() {
    let Some(nb) = Nb::start() else { return };
    let sw = LogicalSwitch::new("sw0")
        .with_subnet("10.0.0.0/24".parse().unwrap())
        .with_exclude_ips(["10.0.0.1", "10.0.0.100..10.0.0.120"]);
    let vif = LogicalSwitchPort::new("pod1")
        .with_address(LspAddress::mac(mac("0a:00:00:00:00:05"), [ip("10.0.0.5")]))
        .with_port_security(mac("0a:00:00:00:00:05"), &["10.0.0.5/32".parse().unwrap()]);
    let dynamic = LogicalSwitchPort::new("pod2").with_address(LspAddress::Dynamic);
    let localnet = LogicalSwitchPort::localnet("sw0-physnet", "external");

    let mut cs = Plan::nb();
    let sw_ref = cs.insert(&sw).unwrap();
    let p1 = cs.insert_child(&sw_ref, &vif).unwrap();
    let p2 = cs.insert_child(&sw_ref, &dynamic).unwrap();
    let p3 = cs.insert_child(&sw_ref, &localnet).unwrap();
    let (plan, out) = nb.apply(cs);
    let [sw_u, p1_u, p2_u, p3_u] = [
        plan.uuid(&out, &sw_ref),
        plan.uuid(&out, &p1),
        plan.uuid(&out, &p2),
        plan.uuid(&out, &p3),
    ]
    .map(Option::unwrap);

    let got: LogicalSwitch = nb.row(sw_u);
    let expected = with_uuid(sw.clone(), |s| {
        s.uuid = sw_u;
        s.ports = refs(&[p1_u, p2_u, p3_u]);
    });
    assert_eq!(got, expected);
    for (u, p) in [(p1_u, &vif), (p2_u, &dynamic), (p3_u, &localnet)] {
        let got = without_status(nb.row::<LogicalSwitchPort>(u));
        assert_eq!(got, with_uuid(p.clone(), |p| p.uuid = u));
    }
    // ovn-nbctl's own reading.
    assert_eq!(
        nbctl_get(&nb, "Logical_Switch", "sw0", "other_config:subnet"),
        "\"10.0.0.0/24\""
    );
    assert_eq!(
        nb.nbctl(&["lsp-get-addresses", "pod1"]),
        "0a:00:00:00:00:05 10.0.0.5"
    );
    assert_eq!(
        nb.nbctl(&["lsp-get-port-security", "pod1"]),
        "0a:00:00:00:00:05 10.0.0.5/32"
    );
    assert_eq!(nb.nbctl(&["lsp-get-type", "sw0-physnet"]), "localnet");
    assert_eq!(nb.nbctl(&["lsp-get-ls", "pod2"]), format!("{sw_u} (sw0)"));

    // Update the subnet, delete a port: one transaction.
    let mut cs = Plan::nb();
    let moved = sw.clone().with_subnet("10.0.8.0/22".parse().unwrap());
    cs.update::<LogicalSwitch>("sw0", &moved, &["other_config"])
        .unwrap();
    cs.remove_child::<LogicalSwitch, _>("sw0", &Ref::<LogicalSwitchPort>::new(p2_u))
        .unwrap();
    nb.run(cs);
    let got: LogicalSwitch = nb.row(sw_u);
    assert_eq!(got.subnet(), Some("10.0.8.0/22".parse().unwrap()));
    assert_eq!(got.ports, refs(&[p1_u, p3_u]));
    assert!(
        nb.rows::<LogicalSwitchPort>()
            .iter()
            .all(|p| p.name != "pod2"),
        "pod2 is collected"
    );

    // Delete the switch: its ports go with it.
    let mut cs = Plan::nb();
    cs.delete::<LogicalSwitch>("sw0").unwrap();
    nb.run(cs);
    assert_eq!(nb.nbctl(&["ls-list"]), "");
    assert!(nb.rows::<LogicalSwitchPort>().is_empty());
}

fn nbctl_get(nb: &Nb, table: &str, record: &str, column: &str) -> String {
    nb.nbctl(&["get", table, record, column])
}

#[test]
fn router_ports_are_wired_to_switch_ports() {
    let Some(nb) = Nb::start() else { return };
    let lrp = LogicalRouterPort::new(
        "r0-sw0",
        mac("0a:00:00:00:00:01"),
        [
            "10.0.0.1/24".parse().unwrap(),
            "fd00::1/64".parse().unwrap(),
        ],
    );
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw0")).unwrap();
    let r = cs.insert(&LogicalRouter::new("r0")).unwrap();
    let (rp, sp) = cs
        .connect_router_to_switch(&r, &sw, &lrp, "r0-sw0-peer")
        .unwrap();
    let (plan, out) = nb.apply(cs);
    let [r_u, rp_u, sp_u] = [
        plan.uuid(&out, &r),
        plan.uuid(&out, &rp),
        plan.uuid(&out, &sp),
    ]
    .map(Option::unwrap);

    let got: LogicalRouter = nb.row(r_u);
    assert_eq!(
        got,
        with_uuid(LogicalRouter::new("r0"), |x| {
            x.uuid = r_u;
            x.ports = refs(&[rp_u]);
        })
    );
    assert_eq!(
        nb.row::<LogicalRouterPort>(rp_u),
        with_uuid(lrp.clone(), |x| x.uuid = rp_u)
    );
    let expected_sp = with_uuid(LogicalSwitchPort::router("r0-sw0-peer", "r0-sw0"), |x| {
        x.uuid = sp_u
    });
    assert_eq!(without_status(nb.row(sp_u)), expected_sp);
    assert_eq!(nb.nbctl(&["lsp-get-type", "r0-sw0-peer"]), "router");
    // nbctl resolves "router" to the peer router port's MAC and networks.
    assert_eq!(
        nb.nbctl(&["lsp-get-addresses", "r0-sw0-peer"]),
        "0a:00:00:00:00:01 10.0.0.1/24 fd00::1/64"
    );
    assert_eq!(
        nbctl_get(
            &nb,
            "Logical_Switch_Port",
            "r0-sw0-peer",
            "options:router-port"
        ),
        "r0-sw0"
    );
    assert_eq!(nb.nbctl(&["lrp-list", "r0"]), format!("{rp_u} (r0-sw0)"));
    assert_eq!(
        nbctl_get(&nb, "Logical_Router_Port", "r0-sw0", "networks"),
        r#"["10.0.0.1/24", "fd00::1/64"]"#
    );

    // Update the MAC, then delete the router port (its switch-side peer stays, as in nbctl).
    let mut cs = Plan::nb();
    let mut changed = lrp.clone();
    changed.mac = mac("0a:00:00:00:00:02");
    cs.update::<LogicalRouterPort>("r0-sw0", &changed, &["mac"])
        .unwrap();
    nb.run(cs);
    assert_eq!(
        nbctl_get(&nb, "Logical_Router_Port", "r0-sw0", "mac"),
        "\"0a:00:00:00:00:02\""
    );
    let mut cs = Plan::nb();
    cs.remove_child::<LogicalRouter, _>("r0", &Ref::<LogicalRouterPort>::new(rp_u))
        .unwrap();
    nb.run(cs);
    assert_eq!(nb.nbctl(&["lrp-list", "r0"]), "");
}

#[test]
fn load_balancers_with_vips_health_checks_affinity_attached_to_switch_and_router() {
    let Some(nb) = Nb::start() else { return };
    let vip = "10.96.0.10:80".parse().unwrap();
    let backends = [
        "10.0.0.2:8080".parse().unwrap(),
        "10.0.0.3:8080".parse().unwrap(),
    ];
    let lb = LoadBalancer::new("web", Some(LoadBalancerProtocol::Tcp))
        .with_vip(vip, &backends)
        .with_affinity(60)
        .with_selection_fields([
            LoadBalancerSelectionFields::IpSrc,
            LoadBalancerSelectionFields::IpDst,
        ])
        .with_ip_port_mapping(ip("10.0.0.2"), "pod-a", ip("10.0.0.254"));
    let hc = LoadBalancerHealthCheck::new(vip, 5, 20, 3, 3);
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw0")).unwrap();
    let r = cs.insert(&LogicalRouter::new("r0")).unwrap();
    let lb_ref = cs.insert(&lb).unwrap();
    let hc_ref = cs.insert_child(&lb_ref, &hc).unwrap();
    cs.attach_load_balancer(&sw, &lb_ref).unwrap();
    cs.attach_load_balancer(&r, &lb_ref).unwrap();
    let (plan, out) = nb.apply(cs);
    let [lb_u, hc_u, sw_u] = [
        plan.uuid(&out, &lb_ref),
        plan.uuid(&out, &hc_ref),
        plan.uuid(&out, &sw),
    ]
    .map(Option::unwrap);

    assert_eq!(
        nb.row::<LoadBalancer>(lb_u),
        with_uuid(lb.clone(), |x| {
            x.uuid = lb_u;
            x.health_check = refs(&[hc_u]);
        })
    );
    assert_eq!(
        nb.row::<LoadBalancerHealthCheck>(hc_u),
        with_uuid(hc, |x| x.uuid = hc_u)
    );
    let weak: BTreeSet<WeakRef<LoadBalancer>> = [WeakRef::new(lb_u)].into();
    assert_eq!(nb.row::<LogicalSwitch>(sw_u).load_balancer, weak);
    let lb_list = nb.nbctl(&["lb-list"]);
    assert!(
        lb_list.contains("web") && lb_list.contains("tcp") && lb_list.contains("10.96.0.10:80"),
        "{lb_list}"
    );
    assert!(lb_list.contains("10.0.0.2:8080,10.0.0.3:8080"), "{lb_list}");
    assert!(nb.nbctl(&["ls-lb-list", "sw0"]).contains("web"));
    assert!(nb.nbctl(&["lr-lb-list", "r0"]).contains("web"));

    // Change the backends, detach from the router, then delete: weak references vanish.
    let mut cs = Plan::nb();
    let fewer = lb.clone().with_vip(vip, &backends[..1]);
    cs.update::<LoadBalancer>(Ref::new(lb_u), &fewer, &["vips"])
        .unwrap();
    cs.detach_load_balancer::<LogicalRouter>("r0", &Ref::new(lb_u))
        .unwrap();
    nb.run(cs);
    let vips: BTreeMap<String, String> =
        [("10.96.0.10:80".to_owned(), "10.0.0.2:8080".to_owned())].into();
    assert_eq!(nb.row::<LoadBalancer>(lb_u).vips, vips);
    assert_eq!(nb.nbctl(&["lr-lb-list", "r0"]), "");
    let mut cs = Plan::nb();
    cs.delete::<LoadBalancer>(Ref::new(lb_u)).unwrap();
    nb.run(cs);
    assert_eq!(nb.nbctl(&["ls-lb-list", "sw0"]), "");
    assert!(nb.rows::<LoadBalancerHealthCheck>().is_empty());
}

#[test]
fn acls_port_groups_and_address_sets() {
    let Some(nb) = Nb::start() else { return };
    let allow_web = Acl::new(
        AclDirection::ToLport,
        1001,
        "outport == @web && tcp.dst == 80",
        AclAction::AllowRelated,
    );
    let deny = Acl::new(
        AclDirection::FromLport,
        900,
        "ip4.src == $blocked",
        AclAction::Drop,
    )
    .with_log("deny-blocked", AclSeverity::Warning);
    let set = AddressSet::new("blocked", ["192.0.2.1", "198.51.100.0/24"]);
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw0")).unwrap();
    let p = cs
        .insert_child(&sw, &LogicalSwitchPort::new("web1"))
        .unwrap();
    let pg = cs.insert(&PortGroup::new("web")).unwrap();
    cs.add_port_group_ports(&pg, std::slice::from_ref(&p))
        .unwrap();
    let a1 = cs.insert_child(&pg, &allow_web).unwrap();
    let a2 = cs.insert_child(&sw, &deny).unwrap();
    let as_ref = cs.insert(&set).unwrap();
    let (plan, out) = nb.apply(cs);
    let u = |r: &Ref<_>| plan.uuid(&out, r).unwrap();
    let (p_u, pg_u, a1_u, a2_u, as_u) = (
        u(&p),
        plan.uuid(&out, &pg).unwrap(),
        plan.uuid(&out, &a1).unwrap(),
        plan.uuid(&out, &a2).unwrap(),
        plan.uuid(&out, &as_ref).unwrap(),
    );

    assert_eq!(
        nb.row::<PortGroup>(pg_u),
        with_uuid(PortGroup::new("web"), |x| {
            x.uuid = pg_u;
            x.ports = [WeakRef::new(p_u)].into();
            x.acls = refs(&[a1_u]);
        })
    );
    assert_eq!(nb.row::<Acl>(a1_u), with_uuid(allow_web, |x| x.uuid = a1_u));
    assert_eq!(nb.row::<Acl>(a2_u), with_uuid(deny, |x| x.uuid = a2_u));
    assert_eq!(
        nb.row::<AddressSet>(as_u),
        with_uuid(set, |x| x.uuid = as_u)
    );
    let acls = nb.nbctl(&["acl-list", "sw0"]);
    assert!(
        acls.contains(
            "from-lport   900 (ip4.src == $blocked) drop log(name=deny-blocked,severity=warning)"
        ),
        "{acls}"
    );
    let pg_acls = nb.nbctl(&["acl-list", "web"]);
    assert!(pg_acls.contains("allow-related"), "{pg_acls}");
    assert_eq!(
        nbctl_get(&nb, "Address_Set", "blocked", "addresses"),
        r#"["192.0.2.1", "198.51.100.0/24"]"#
    );

    // Remove the ACL from the switch and the port from the group; delete the address set.
    let mut cs = Plan::nb();
    cs.remove_child::<LogicalSwitch, _>("sw0", &Ref::<Acl>::new(a2_u))
        .unwrap();
    cs.remove_port_group_ports("web", &[Ref::new(p_u)]).unwrap();
    cs.delete::<AddressSet>("blocked").unwrap();
    nb.run(cs);
    assert_eq!(nb.nbctl(&["acl-list", "sw0"]), "");
    assert!(nb.row::<PortGroup>(pg_u).ports.is_empty());
    assert!(nb.rows::<AddressSet>().is_empty());
    assert_eq!(nb.rows::<Acl>().len(), 1);
}

#[test]
fn nat_policies_and_static_routes() {
    let Some(nb) = Nb::start() else { return };
    let snat = Nat::snat(ip("172.16.0.10"), "10.0.0.0/24".parse().unwrap());
    let fip = Nat::dnat_and_snat(
        ip("172.16.0.20"),
        ip("10.0.0.5"),
        Some(("pod1", mac("0a:00:00:00:aa:01"))),
    );
    let policy = LogicalRouterPolicy::new(
        100,
        "ip4.src == 10.0.0.0/24",
        LogicalRouterPolicyAction::Reroute,
        &[ip("10.0.1.254")],
    );
    let route = LogicalRouterStaticRoute::new("0.0.0.0/0".parse().unwrap(), ip("172.16.0.1"))
        .with_output_port("r0-ext");
    let mut cs = Plan::nb();
    let r = cs.insert(&LogicalRouter::new("r0")).unwrap();
    cs.insert_child(
        &r,
        &LogicalRouterPort::new(
            "r0-ext",
            mac("0a:00:00:00:00:ee"),
            ["172.16.0.2/24".parse().unwrap()],
        ),
    )
    .unwrap();
    let n1 = cs.insert_child(&r, &snat).unwrap();
    let n2 = cs.insert_child(&r, &fip).unwrap();
    let pol = cs.insert_child(&r, &policy).unwrap();
    let rt = cs.insert_child(&r, &route).unwrap();
    let (plan, out) = nb.apply(cs);
    let [n1_u, n2_u, pol_u, rt_u] = [&n1, &n2]
        .map(|x| plan.uuid(&out, x).unwrap())
        .into_iter()
        .chain([
            plan.uuid(&out, &pol).unwrap(),
            plan.uuid(&out, &rt).unwrap(),
        ])
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();

    assert_eq!(nb.row::<Nat>(n1_u), with_uuid(snat, |x| x.uuid = n1_u));
    assert_eq!(nb.row::<Nat>(n2_u), with_uuid(fip, |x| x.uuid = n2_u));
    assert_eq!(
        nb.row::<LogicalRouterPolicy>(pol_u),
        with_uuid(policy, |x| x.uuid = pol_u)
    );
    assert_eq!(
        nb.row::<LogicalRouterStaticRoute>(rt_u),
        with_uuid(route, |x| x.uuid = rt_u)
    );
    let nats = nb.nbctl(&["lr-nat-list", "r0"]);
    assert!(
        nats.contains("snat") && nats.contains("172.16.0.10") && nats.contains("10.0.0.0/24"),
        "{nats}"
    );
    assert!(
        nats.contains("dnat_and_snat")
            && nats.contains("pod1")
            && nats.contains("0a:00:00:00:aa:01"),
        "{nats}"
    );
    let policies = nb.nbctl(&["lr-policy-list", "r0"]);
    assert!(
        policies.contains("100") && policies.contains("reroute") && policies.contains("10.0.1.254"),
        "{policies}"
    );
    let routes = nb.nbctl(&["lr-route-list", "r0"]);
    assert!(
        routes.contains("0.0.0.0/0") && routes.contains("172.16.0.1") && routes.contains("r0-ext"),
        "{routes}"
    );

    let mut cs = Plan::nb();
    cs.remove_child::<LogicalRouter, _>("r0", &Ref::<Nat>::new(n1_u))
        .unwrap();
    cs.remove_child::<LogicalRouter, _>("r0", &Ref::<LogicalRouterPolicy>::new(pol_u))
        .unwrap();
    cs.remove_child::<LogicalRouter, _>("r0", &Ref::<LogicalRouterStaticRoute>::new(rt_u))
        .unwrap();
    nb.run(cs);
    assert_eq!(nb.rows::<Nat>().len(), 1);
    assert_eq!(nb.nbctl(&["lr-policy-list", "r0"]), "");
    assert_eq!(nb.nbctl(&["lr-route-list", "r0"]), "");
}

#[test]
fn gateway_chassis_and_ha_chassis_groups() {
    let Some(nb) = Nb::start() else { return };
    let mut cs = Plan::nb();
    let r = cs.insert(&LogicalRouter::new("r0")).unwrap();
    let gw_port = LogicalRouterPort::new(
        "r0-ext",
        mac("0a:00:00:00:00:ee"),
        ["172.16.0.2/24".parse().unwrap()],
    );
    let rp = cs.insert_child(&r, &gw_port).unwrap();
    let gc1 = cs
        .insert_child(&rp, &GatewayChassis::new("r0-ext", "chassis-1", 20))
        .unwrap();
    cs.insert_child(&rp, &GatewayChassis::new("r0-ext", "chassis-2", 10))
        .unwrap();
    let group = cs.insert(&HaChassisGroup::new("gw")).unwrap();
    cs.insert_child(&group, &HaChassis::new("chassis-1", 30))
        .unwrap();
    cs.insert_child(&group, &HaChassis::new("chassis-2", 20))
        .unwrap();
    let r1 = cs.insert(&LogicalRouter::new("r1")).unwrap();
    let rp1 = cs
        .insert_child(
            &r1,
            &LogicalRouterPort::new(
                "r1-ext",
                mac("0a:00:00:00:01:ee"),
                ["172.16.1.2/24".parse().unwrap()],
            ),
        )
        .unwrap();
    cs.set_router_port_ha_group(&rp1, &group).unwrap();
    let (plan, out) = nb.apply(cs);
    let gc1_u = plan.uuid(&out, &gc1).unwrap();
    let group_u = plan.uuid(&out, &group).unwrap();

    assert_eq!(
        nb.row::<GatewayChassis>(gc1_u),
        with_uuid(GatewayChassis::new("r0-ext", "chassis-1", 20), |x| x.uuid =
            gc1_u)
    );
    assert_eq!(
        nb.nbctl(&["lrp-get-gateway-chassis", "r0-ext"]),
        "r0-ext-chassis-1    20\nr0-ext-chassis-2    10"
    );
    let groups = nb.rows::<HaChassisGroup>();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].ha_chassis.len(), 2);
    let mut members: Vec<(String, i64)> = nb
        .rows::<HaChassis>()
        .into_iter()
        .map(|h| (h.chassis_name, h.priority))
        .collect();
    members.sort();
    assert_eq!(
        members,
        [("chassis-1".to_owned(), 30), ("chassis-2".to_owned(), 20)]
    );
    assert_eq!(
        nbctl_get(&nb, "Logical_Router_Port", "r1-ext", "ha_chassis_group"),
        group_u.to_string()
    );
    let listed = nb.nbctl(&["ha-chassis-group-list"]);
    assert!(
        listed.contains("gw") && listed.contains("chassis-1") && listed.contains("30"),
        "{listed}"
    );

    // Drop one gateway chassis; re-prioritise through an update of the typed row.
    let mut cs = Plan::nb();
    cs.remove_child::<LogicalRouterPort, _>("r0-ext", &Ref::<GatewayChassis>::new(gc1_u))
        .unwrap();
    nb.run(cs);
    assert_eq!(
        nb.nbctl(&["lrp-get-gateway-chassis", "r0-ext"]),
        "r0-ext-chassis-2    10"
    );
}

#[test]
fn dhcp_options_and_dns_records() {
    let Some(nb) = Nb::start() else { return };
    let dhcp = DhcpOptions::v4(
        "10.0.0.0/24".parse().unwrap(),
        ip("10.0.0.1"),
        mac("0a:00:00:00:00:01"),
        3600,
    );
    let dns = Dns::new([
        ("web.cluster", &[ip("10.96.0.10")][..]),
        ("db.cluster", &[ip("10.96.0.11"), ip("fd00::11")][..]),
    ]);
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw0")).unwrap();
    let p = cs
        .insert_child(
            &sw,
            &LogicalSwitchPort::new("pod1")
                .with_address(LspAddress::mac(mac("0a:00:00:00:00:05"), [ip("10.0.0.5")])),
        )
        .unwrap();
    let d = cs.insert(&dhcp).unwrap();
    cs.set_dhcpv4_options(&p, &d).unwrap();
    let dns_ref = cs.insert(&dns).unwrap();
    cs.attach_dns(&sw, &dns_ref).unwrap();
    let (plan, out) = nb.apply(cs);
    let d_u = plan.uuid(&out, &d).unwrap();
    let dns_u = plan.uuid(&out, &dns_ref).unwrap();

    assert_eq!(
        nb.row::<DhcpOptions>(d_u),
        with_uuid(dhcp, |x| x.uuid = d_u)
    );
    assert_eq!(nb.row::<Dns>(dns_u), with_uuid(dns, |x| x.uuid = dns_u));
    assert_eq!(nb.nbctl(&["dhcp-options-list"]), d_u.to_string());
    let opts = nb.nbctl(&["dhcp-options-get-options", &d_u.to_string()]);
    assert!(
        opts.contains("lease_time=3600")
            && opts.contains("router=10.0.0.1")
            && opts.contains("server_mac=0a:00:00:00:00:01"),
        "{opts}"
    );
    assert_eq!(
        nb.nbctl(&["lsp-get-dhcpv4-options", "pod1"]),
        format!("{d_u} (10.0.0.0/24)")
    );
    assert_eq!(
        nbctl_get(&nb, "Logical_Switch", "sw0", "dns_records"),
        format!("[{dns_u}]")
    );

    // Delete both: the weak references from the port and the switch go with them.
    let mut cs = Plan::nb();
    cs.delete::<DhcpOptions>(Ref::new(d_u)).unwrap();
    cs.delete::<Dns>(Ref::new(dns_u)).unwrap();
    nb.run(cs);
    assert_eq!(nb.nbctl(&["lsp-get-dhcpv4-options", "pod1"]), "");
    assert_eq!(nbctl_get(&nb, "Logical_Switch", "sw0", "dns_records"), "[]");
}

#[test]
fn qos_rules_and_meters() {
    let Some(nb) = Nb::start() else { return };
    let police =
        QoS::new(QoSDirection::FromLport, 100, "inport == \"pod1\"").with_rate(10_000, 10_000);
    let mark = QoS::new(QoSDirection::ToLport, 90, "ip4.dst == 10.0.0.5").with_dscp(46);
    let meter = Meter::new("acl-log", MeterUnit::Pktps);
    let band = MeterBand::drop(100, 10);
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw0")).unwrap();
    let q1 = cs.insert_child(&sw, &police).unwrap();
    let q2 = cs.insert_child(&sw, &mark).unwrap();
    let (m, bs) = cs
        .insert_with_children(&meter, std::slice::from_ref(&band))
        .unwrap();
    let b = bs[0].clone();
    let (plan, out) = nb.apply(cs);
    let [q1_u, q2_u, m_u, b_u] = [
        plan.uuid(&out, &q1).unwrap(),
        plan.uuid(&out, &q2).unwrap(),
        plan.uuid(&out, &m).unwrap(),
        plan.uuid(&out, &b).unwrap(),
    ];

    assert_eq!(
        nb.row::<QoS>(q1_u),
        with_uuid(police.clone(), |x| x.uuid = q1_u)
    );
    assert_eq!(nb.row::<QoS>(q2_u), with_uuid(mark, |x| x.uuid = q2_u));
    assert_eq!(
        nb.row::<Meter>(m_u),
        with_uuid(meter, |x| {
            x.uuid = m_u;
            x.bands = refs(&[b_u]);
        })
    );
    assert_eq!(nb.row::<MeterBand>(b_u), with_uuid(band, |x| x.uuid = b_u));
    let qos = nb.nbctl(&["qos-list", "sw0"]);
    assert!(
        qos.contains("rate=10000 burst=10000") && qos.contains("dscp=46"),
        "{qos}"
    );
    let meters = nb.nbctl(&["meter-list"]);
    assert!(
        meters.contains("acl-log")
            && meters.contains("pktps")
            && meters.contains("drop: 100 pktps, 10 packet burst"),
        "{meters}"
    );

    // Halve the rate in place, delete the marking rule and the meter.
    let mut cs = Plan::nb();
    cs.update::<QoS>(
        Ref::new(q1_u),
        &police.clone().with_rate(5_000, 5_000),
        &["bandwidth"],
    )
    .unwrap();
    cs.remove_child::<LogicalSwitch, _>("sw0", &Ref::<QoS>::new(q2_u))
        .unwrap();
    cs.delete::<Meter>("acl-log").unwrap();
    nb.run(cs);
    let qos = nb.nbctl(&["qos-list", "sw0"]);
    assert!(
        qos.contains("rate=5000 burst=5000") && !qos.contains("dscp"),
        "{qos}"
    );
    assert!(nb.rows::<MeterBand>().is_empty());
}

#[test]
fn the_real_server_schema_fits_the_model() {
    let Some(nb) = Nb::start() else { return };
    let report = ovn_model::compat::check(ovn_model::nb::schema(), &nb.schema);
    assert!(report.is_compatible(), "{:?}", report.problems);
    assert!(report.added_tables.is_empty() && report.added_columns.is_empty());
}

#[test]
fn typed_snapshot_follows_references_in_a_replica_of_the_real_nb() {
    use ovn_model::snapshot::Typed;
    let Some(nb) = Nb::start() else { return };
    let mut cs = Plan::nb();
    let sw = cs.insert(&LogicalSwitch::new("sw0")).unwrap();
    for name in ["pod1", "pod2"] {
        cs.insert_child(&sw, &LogicalSwitchPort::new(name)).unwrap();
    }
    let r = cs.insert(&LogicalRouter::new("r0")).unwrap();
    let lrp = LogicalRouterPort::new(
        "r0-sw0",
        mac("0a:00:00:00:00:01"),
        ["10.0.0.1/24".parse().unwrap()],
    );
    cs.connect_router_to_switch(&r, &sw, &lrp, "r0-sw0-peer")
        .unwrap();
    let (plan, out) = nb.apply(cs);
    let sw_u = plan.uuid(&out, &sw).unwrap();

    let replica = nb.replica(&[
        "Logical_Switch",
        "Logical_Switch_Port",
        "Logical_Router",
        "Logical_Router_Port",
    ]);
    let snap = replica.snapshot();
    let typed = Typed::new(&snap);
    let sw0: LogicalSwitch = typed.by_name("sw0").unwrap();
    assert_eq!(sw0.uuid, sw_u);
    assert_eq!(typed.get::<LogicalSwitch>(sw_u), Some(sw0.clone()));
    let mut ports: Vec<String> = typed
        .children::<_, LogicalSwitchPort>(&sw0)
        .into_iter()
        .map(|p| p.name)
        .collect();
    ports.sort();
    assert_eq!(ports, ["pod1", "pod2", "r0-sw0-peer"]);
    let pod1: LogicalSwitchPort = typed.by_name("pod1").unwrap();
    assert_eq!(
        typed.parent::<LogicalSwitch, _>(&pod1).map(|s| s.name),
        Some("sw0".to_owned())
    );
    let r0: LogicalRouter = typed.by_name("r0").unwrap();
    let rp = typed.children::<_, LogicalRouterPort>(&r0);
    assert_eq!(rp, [with_uuid(lrp, |x| x.uuid = rp[0].uuid)]);
    assert_eq!(typed.rows::<LogicalSwitchPort>().count(), 3);
    let first = sw0.ports.iter().next().unwrap();
    assert!(typed.resolve(first).is_some());
}
