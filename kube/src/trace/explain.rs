//! A parsed trace in the words of the cluster: the hops (switch, router, load balancer, NAT,
//! policy reroute), and the verdict with the object behind it (the NetworkPolicy whose ACL
//! dropped the packet, the private subnet, the port that is down).

use ovn_model::nb::{Acl, AclDirection};
use ovn_model::owner;
use ovn_model::snapshot::Typed;
use serde::Serialize;

use super::parse::{End, SectionKind, Stage, Trace};

/// One step of the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hop {
    /// `switch` or `router` (`ls_`/`lr_` stages), or `conntrack`.
    pub kind: String,
    /// The datapath's name.
    pub datapath: String,
    /// In which direction (`ingress`, `egress`).
    pub pipeline: String,
    /// What happened there worth telling: `load balancer: ...`, `allowed by ...`, `route ...`.
    pub notes: Vec<String>,
}

/// What the ACL that decided belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// A NetworkPolicy (`namespace/name`).
    NetworkPolicy {
        /// `namespace/name`.
        name: String,
    },
    /// The default deny of pods a NetworkPolicy selects.
    PolicyDefaultDeny {
        /// What the ACL's owner tags say.
        object: String,
    },
    /// A `private` subnet's isolation.
    PrivateSubnet {
        /// The subnet.
        subnet: String,
    },
    /// Another ACL (not ovnkit's, or of no known object).
    Acl {
        /// The ACL's UUID.
        uuid: String,
        /// Its match.
        match_: String,
    },
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::NetworkPolicy { name } => write!(f, "NetworkPolicy {name}"),
            Rule::PolicyDefaultDeny { object } => {
                write!(
                    f,
                    "the default deny of pods selected by NetworkPolicies ({object})"
                )
            }
            Rule::PrivateSubnet { subnet } => {
                write!(f, "the isolation of private subnet {subnet}")
            }
            Rule::Acl { uuid, match_ } => write!(f, "ACL {uuid} ({match_})"),
        }
    }
}

/// The ACL that decided the packet's fate: the last ACL flow it matched at an ACL priority
/// (northd's own flows below 1000 excluded), allowing or dropping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecidingAcl {
    /// The stage (`ls_out_acl`, `ls_in_acl_after_lb`, ...).
    pub stage: String,
    /// The ACL's priority (the flow's less the 1000 northd adds).
    pub priority: i64,
    /// Whether it dropped the packet.
    pub drops: bool,
    /// What it belongs to.
    pub rule: Rule,
    /// The owner object its tags name (`networkpolicy/<ns>/<name>`, `subnet/<name>`), if any.
    pub object: Option<String>,
}

/// How the trace ended, in the cluster's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Delivered to a pod's (or a node's) port.
    Delivered {
        /// The port.
        port: String,
    },
    /// Leaves OVN into a node through its management port (egress through that node, or
    /// traffic for the node itself).
    ToNode {
        /// The node.
        node: String,
        /// The port (`node-<name>`).
        port: String,
    },
    /// Leaves OVN through a port of another kind (localnet, a gateway).
    LeavesOvn {
        /// The port.
        port: String,
        /// Its type.
        port_type: String,
    },
    /// Dropped by an ACL.
    DroppedByAcl {
        /// What the ACL belongs to.
        rule: Rule,
        /// The stage.
        stage: String,
    },
    /// Dropped by a flow that is not an ACL.
    Dropped {
        /// The stage.
        stage: String,
        /// The flow's match.
        match_: String,
    },
    /// No route to the destination.
    NoRoute {
        /// The stage that matched nothing.
        stage: String,
    },
    /// The destination port exists in the logical topology but is down.
    PortDown {
        /// The port.
        port: String,
    },
    /// The destination port is bound to no chassis.
    NotBound {
        /// The port.
        port: String,
    },
    /// The trace ended in a way this module does not know.
    Unknown,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Delivered { port } => write!(f, "delivered to port {port}"),
            Verdict::ToNode { node, port } => {
                write!(
                    f,
                    "leaves OVN into node {node} through its management port {port}"
                )
            }
            Verdict::LeavesOvn { port, port_type } => {
                write!(f, "leaves OVN through {port} ({port_type})")
            }
            Verdict::DroppedByAcl { rule, stage } => write!(f, "dropped by {rule} (at {stage})"),
            Verdict::Dropped { stage, match_ } => write!(f, "dropped at {stage} ({match_})"),
            Verdict::NoRoute { stage } => write!(f, "no route (nothing matched at {stage})"),
            Verdict::PortDown { port } => {
                write!(f, "port {port} is down (bound to a chassis, not up)")
            }
            Verdict::NotBound { port } => {
                write!(f, "port {port} is down: not bound to any chassis")
            }
            Verdict::Unknown => f.write_str("unknown (see the ovn-trace output)"),
        }
    }
}

/// The hops, the verdict and the deciding ACL of `trace`, with ACLs looked up in `nb`;
/// `lb_backend` is the backend given to `ovn-trace --lb-dst`, if any.
#[must_use]
pub fn explain(
    trace: &Trace,
    nb: &Typed<'_>,
    lb_backend: Option<&str>,
) -> (Vec<Hop>, Verdict, Option<DecidingAcl>) {
    let acls: Vec<Acl> = nb.rows::<Acl>().collect();
    let mut hops = Vec::new();
    for section in &trace.sections {
        let (kind, datapath, pipeline) = match &section.kind {
            SectionKind::Ingress { datapath, .. } => {
                (dp_kind(section), datapath.clone(), "ingress")
            }
            SectionKind::Egress { datapath, .. } => (dp_kind(section), datapath.clone(), "egress"),
            SectionKind::Conntrack { header } => ("conntrack".to_owned(), header.clone(), ""),
        };
        let notes = section
            .stages
            .iter()
            .filter_map(|s| note(s, &acls, lb_backend))
            .collect();
        hops.push(Hop {
            kind,
            datapath,
            pipeline: pipeline.to_owned(),
            notes,
        });
    }
    let verdict = match &trace.end {
        End::Output { port, port_type } if port_type.is_empty() => {
            match port.strip_prefix("node-") {
                Some(node) => Verdict::ToNode {
                    node: node.to_owned(),
                    port: port.clone(),
                },
                None => Verdict::Delivered { port: port.clone() },
            }
        }
        End::Output { port, port_type } => Verdict::LeavesOvn {
            port: port.clone(),
            port_type: port_type.clone(),
        },
        End::Dropped { .. } => match trace.dropping_stage() {
            Some(s) if is_acl(s) => Verdict::DroppedByAcl {
                rule: rule_of(s, &acls),
                stage: s.name.clone(),
            },
            Some(s) => Verdict::Dropped {
                stage: s.name.clone(),
                match_: s.match_.clone(),
            },
            None => Verdict::Unknown,
        },
        End::NoMatch { stage, .. } if stage.contains("routing") => Verdict::NoRoute {
            stage: stage.clone(),
        },
        End::NoMatch { stage, .. } => Verdict::Dropped {
            stage: stage.clone(),
            match_: "no match".to_owned(),
        },
        End::Unknown => Verdict::Unknown,
    };
    let deciding = trace
        .sections
        .iter()
        .flat_map(|s| &s.stages)
        .rfind(|s| is_acl(s) && s.priority >= 1000)
        .map(|s| DecidingAcl {
            stage: s.name.clone(),
            priority: i64::from(s.priority) - 1000,
            drops: s.drops(),
            rule: rule_of(s, &acls),
            object: find_acl(s, &acls).and_then(|a| a.external_ids.get(owner::OBJECT).cloned()),
        });
    (hops, verdict, deciding)
}

fn dp_kind(section: &super::parse::Section) -> String {
    match section.stages.first().map(|s| &s.name[..3]) {
        Some("lr_") => "router".to_owned(),
        _ => "switch".to_owned(),
    }
}

/// Whether the stage evaluates ACLs (`ls_in_acl`, `ls_out_acl`, `ls_in_acl_after_lb`, ...),
/// not their hints or pre-stages.
fn is_acl(stage: &Stage) -> bool {
    stage.name.contains("_acl") && !stage.name.contains("hint") && !stage.name.contains("pre_acl")
}

/// What a stage did that is worth a line.
fn note(stage: &Stage, acls: &[Acl], lb_backend: Option<&str>) -> Option<String> {
    let actions = stage.actions.join(" ");
    if is_acl(stage) && stage.priority >= 1000 && !stage.drops() {
        return Some(format!("allowed by {}", rule_of(stage, acls)));
    }
    // A load balancer's choice: a stage matching a VIP, or one naming its backends (the
    // `ct_lb` that commits a balanced connection on its way out names neither).
    if actions.contains("ct_lb")
        && (stage.match_.contains(".dst ==") || actions.contains("backends="))
    {
        let chosen = stage
            .actions
            .iter()
            .find(|a| a.contains("ct_lb"))
            .cloned()
            .unwrap_or_default();
        // OVN picks the backend in the action; ovn-trace prints the action without one and
        // goes on with the backend `--lb-dst` named.
        let asked = match lb_backend {
            Some(b) if !chosen.contains("backends=") => {
                format!(" (backend {b}, as asked with --lb-dst)")
            }
            _ => String::new(),
        };
        return Some(format!(
            "load balancer: {} -> {chosen}{asked}",
            stage.match_
        ));
    }
    match stage.name.as_str() {
        "lr_in_policy"
            if actions.contains("reg1 =")
                || stage.priority != 31000 && actions.contains("reg0 =") =>
        {
            Some(format!("policy reroute ({}): {actions}", stage.match_))
        }
        "lr_in_ip_routing" => Some(format!("route: {}", stage.match_)),
        "lr_in_dnat" | "lr_out_snat" | "lr_in_unsnat" | "lr_out_undnat"
            if actions.contains("ct_") =>
        {
            Some(format!("NAT: {actions}"))
        }
        _ => None,
    }
}

/// The NB ACL behind an ACL stage: same direction, priority (northd adds 1000) and a match
/// that the flow's match contains (the longest, when several do).
fn find_acl<'a>(stage: &Stage, acls: &'a [Acl]) -> Option<&'a Acl> {
    let direction = if stage.name.starts_with("ls_out") {
        AclDirection::ToLport
    } else {
        AclDirection::FromLport
    };
    let priority = i64::from(stage.priority) - 1000;
    acls.iter()
        .filter(|a| a.direction == direction && a.priority == priority)
        .filter(|a| stage.match_.contains(&a.match_))
        .max_by_key(|a| a.match_.len())
}

/// What the NB ACL behind an ACL stage belongs to.
fn rule_of(stage: &Stage, acls: &[Acl]) -> Rule {
    let Some(acl) = find_acl(stage, acls) else {
        return Rule::Acl {
            uuid: String::new(),
            match_: stage.match_.clone(),
        };
    };
    let ids = &acl.external_ids;
    let object = ids.get(owner::OBJECT).cloned().unwrap_or_default();
    let obj = owner::Object::from_tag(object.clone());
    match (ids.get(owner::OWNER).map(String::as_str), obj.kind()) {
        (Some(owner::Component::POLICY), "networkpolicy" | "policy") => Rule::NetworkPolicy {
            name: obj.name().to_owned(),
        },
        (Some(owner::Component::POLICY), _) => Rule::PolicyDefaultDeny { object },
        (Some(owner::Component::TOPOLOGY), "subnet") => Rule::PrivateSubnet {
            subnet: obj.name().to_owned(),
        },
        _ => Rule::Acl {
            uuid: acl.uuid.to_string(),
            match_: acl.match_.clone(),
        },
    }
}
