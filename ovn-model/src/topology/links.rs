//! Which tables are roots and which column of which parent keeps each non-root table's rows
//! alive, for OVN_Northbound and Open_vSwitch. A test checks these lists against the schemas.

use super::{ChildOf, Root};
use crate::{nb, vswitch};

macro_rules! roots {
    ($db:ident: $($t:ident),* $(,)?) => {
        $(impl Root for $db::$t {})*
    };
}

macro_rules! children {
    ($db:ident: $($child:ident in $parent:ident . $col:literal),* $(,)?) => {
        $(impl ChildOf<$db::$parent> for $db::$child { const COLUMN: &'static str = $col; })*
    };
}

roots!(nb: AddressSet, Bfd, ChassisTemplateVar, Copp, DhcpOptions, Dns, HaChassisGroup,
    LoadBalancer, LoadBalancerGroup, LogicalRouter, LogicalSwitch, Meter, Mirror, NbGlobal,
    PortGroup, StaticMacBinding);

children!(nb:
    LogicalSwitchPort in LogicalSwitch."ports",
    Acl in LogicalSwitch."acls",
    Acl in PortGroup."acls",
    QoS in LogicalSwitch."qos_rules",
    ForwardingGroup in LogicalSwitch."forwarding_groups",
    LogicalRouterPort in LogicalRouter."ports",
    LogicalRouterStaticRoute in LogicalRouter."static_routes",
    LogicalRouterPolicy in LogicalRouter."policies",
    Nat in LogicalRouter."nat",
    GatewayChassis in LogicalRouterPort."gateway_chassis",
    HaChassis in HaChassisGroup."ha_chassis",
    LoadBalancerHealthCheck in LoadBalancer."health_check",
    MeterBand in Meter."bands",
    Connection in NbGlobal."connections",
    Ssl in NbGlobal."ssl",
);

roots!(vswitch: OpenVSwitch, QoS, Queue, FlowSampleCollectorSet);

children!(vswitch:
    Bridge in OpenVSwitch."bridges",
    Manager in OpenVSwitch."manager_options",
    Ssl in OpenVSwitch."ssl",
    Port in Bridge."ports",
    Mirror in Bridge."mirrors",
    NetFlow in Bridge."netflow",
    SFlow in Bridge."sflow",
    Ipfix in Bridge."ipfix",
    Controller in Bridge."controller",
    AutoAttach in Bridge."auto_attach",
    Interface in Port."interfaces",
    CtTimeoutPolicy in CtZone."timeout_policy",
    Ipfix in FlowSampleCollectorSet."ipfix",
    Bridge in FlowSampleCollectorSet."bridge",
);

/// Every root table with a [`Root`] impl, as `(database, table)`.
pub const ROOT_TABLES: &[(&str, &str)] = &[
    ("OVN_Northbound", "Address_Set"),
    ("OVN_Northbound", "BFD"),
    ("OVN_Northbound", "Chassis_Template_Var"),
    ("OVN_Northbound", "Copp"),
    ("OVN_Northbound", "DHCP_Options"),
    ("OVN_Northbound", "DNS"),
    ("OVN_Northbound", "HA_Chassis_Group"),
    ("OVN_Northbound", "Load_Balancer"),
    ("OVN_Northbound", "Load_Balancer_Group"),
    ("OVN_Northbound", "Logical_Router"),
    ("OVN_Northbound", "Logical_Switch"),
    ("OVN_Northbound", "Meter"),
    ("OVN_Northbound", "Mirror"),
    ("OVN_Northbound", "NB_Global"),
    ("OVN_Northbound", "Port_Group"),
    ("OVN_Northbound", "Static_MAC_Binding"),
    ("Open_vSwitch", "Flow_Sample_Collector_Set"),
    ("Open_vSwitch", "Open_vSwitch"),
    ("Open_vSwitch", "QoS"),
    ("Open_vSwitch", "Queue"),
];

/// Every [`ChildOf`] impl, as `(database, parent table, column, child table)`.
pub const CHILD_LINKS: &[(&str, &str, &str, &str)] = &[
    (
        "OVN_Northbound",
        "HA_Chassis_Group",
        "ha_chassis",
        "HA_Chassis",
    ),
    (
        "OVN_Northbound",
        "Load_Balancer",
        "health_check",
        "Load_Balancer_Health_Check",
    ),
    ("OVN_Northbound", "Logical_Router", "nat", "NAT"),
    (
        "OVN_Northbound",
        "Logical_Router",
        "policies",
        "Logical_Router_Policy",
    ),
    (
        "OVN_Northbound",
        "Logical_Router",
        "ports",
        "Logical_Router_Port",
    ),
    (
        "OVN_Northbound",
        "Logical_Router",
        "static_routes",
        "Logical_Router_Static_Route",
    ),
    (
        "OVN_Northbound",
        "Logical_Router_Port",
        "gateway_chassis",
        "Gateway_Chassis",
    ),
    ("OVN_Northbound", "Logical_Switch", "acls", "ACL"),
    (
        "OVN_Northbound",
        "Logical_Switch",
        "forwarding_groups",
        "Forwarding_Group",
    ),
    (
        "OVN_Northbound",
        "Logical_Switch",
        "ports",
        "Logical_Switch_Port",
    ),
    ("OVN_Northbound", "Logical_Switch", "qos_rules", "QoS"),
    ("OVN_Northbound", "Meter", "bands", "Meter_Band"),
    ("OVN_Northbound", "NB_Global", "connections", "Connection"),
    ("OVN_Northbound", "NB_Global", "ssl", "SSL"),
    ("OVN_Northbound", "Port_Group", "acls", "ACL"),
    ("Open_vSwitch", "Bridge", "auto_attach", "AutoAttach"),
    ("Open_vSwitch", "Bridge", "controller", "Controller"),
    ("Open_vSwitch", "Bridge", "ipfix", "IPFIX"),
    ("Open_vSwitch", "Bridge", "mirrors", "Mirror"),
    ("Open_vSwitch", "Bridge", "netflow", "NetFlow"),
    ("Open_vSwitch", "Bridge", "ports", "Port"),
    ("Open_vSwitch", "Bridge", "sflow", "sFlow"),
    (
        "Open_vSwitch",
        "CT_Zone",
        "timeout_policy",
        "CT_Timeout_Policy",
    ),
    (
        "Open_vSwitch",
        "Flow_Sample_Collector_Set",
        "bridge",
        "Bridge",
    ),
    (
        "Open_vSwitch",
        "Flow_Sample_Collector_Set",
        "ipfix",
        "IPFIX",
    ),
    ("Open_vSwitch", "Open_vSwitch", "bridges", "Bridge"),
    ("Open_vSwitch", "Open_vSwitch", "manager_options", "Manager"),
    ("Open_vSwitch", "Open_vSwitch", "ssl", "SSL"),
    ("Open_vSwitch", "Port", "interfaces", "Interface"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use ovsdb::DatabaseSchema;

    fn schemas() -> [&'static DatabaseSchema; 2] {
        [nb::schema(), vswitch::schema()]
    }

    #[test]
    fn root_tables_are_exactly_the_schema_roots() {
        let mut from_schema: Vec<(&str, &str)> = schemas()
            .iter()
            .flat_map(|s| {
                s.tables
                    .values()
                    .filter(|t| t.is_root)
                    .map(|t| (s.name.as_str(), t.name.as_str()))
            })
            .collect();
        from_schema.sort_unstable();
        let mut listed = ROOT_TABLES.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, from_schema);
    }

    #[test]
    fn every_set_of_strong_references_to_a_non_root_table_is_a_child_link() {
        let mut from_schema = Vec::new();
        for s in schemas() {
            for t in s.tables.values() {
                for c in t.columns.values() {
                    // Map-valued references (Flow_Table, Datapath, CT_Zone) are not children here.
                    let Some(target) = c.type_.key.ref_table.as_deref() else {
                        continue;
                    };
                    let strong = c.type_.key.ref_type == ovsdb::RefType::Strong;
                    if strong && s.table(target).is_some_and(|x| !x.is_root) {
                        from_schema.push((
                            s.name.as_str(),
                            t.name.as_str(),
                            c.name.as_str(),
                            target,
                        ));
                    }
                }
            }
        }
        from_schema.sort_unstable();
        let mut listed = CHILD_LINKS.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, from_schema);
    }
}
