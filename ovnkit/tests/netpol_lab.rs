//! NetworkPolicy on a real OVN lab, modelled on the upstream Kubernetes e2e tests
//! (`test/e2e/network/netpol/network_policy.go`): namespaces x, y, z with pods a, b, c each
//! serving TCP and UDP on 80 and 81 (named ports `serve-80-tcp`, ...), pods labelled
//! `pod: <name>`, namespaces carrying `kubernetes.io/metadata.name`. Each case writes its
//! policies as manifests for `ovnkit controller`, waits until OVN has them on every chassis,
//! and probes the full 9x9 matrix (loopback ignored, as upstream) with real TCP connections
//! or UDP echoes from each pod's namespace, asserting both what must connect and what must
//! not. One lab serves every case (one `#[test]`); a failure names its case.
//!
//! | case | upstream test it follows |
//! |---|---|
//! | `default-deny-ingress` | should support a 'default-deny-ingress' policy (TCP, and the UDP variant) |
//! | `default-deny-all` | should support a 'default-deny-all' policy |
//! | `pod-selector` | should enforce policy to allow traffic from pods within server namespace based on PodSelector |
//! | `namespace-selector` | should enforce policy to allow traffic only from a different namespace, based on NamespaceSelector (and: ... with MatchLabels using default ns label) |
//! | `pod-and-namespace-selector` | should enforce policy based on PodSelector and NamespaceSelector |
//! | `pod-or-namespace-selector` | should enforce policy based on PodSelector or NamespaceSelector |
//! | `match-expressions` | should enforce policy based on PodSelector with MatchExpressions; ... NamespaceSelector with MatchExpressions (with Exists/DoesNotExist added) |
//! | `ports` | should enforce policy based on Ports |
//! | `stacked` | should enforce multiple, stacked policies with overlapping podSelectors |
//! | `named-port-from-namespace` | should allow ingress access from namespace on one named port |
//! | `named-port-per-pod` | should allow ingress access on one named port, with a name that is 80 on some pods and 81 on others (ours) |
//! | `egress-named-port` | should allow egress access on one named port |
//! | `end-port` | ours: a port range (`endPort`), TCP only |
//! | `policy-types-default` | ours: `policyTypes` absent with egress rules isolates both directions (the API's default) |
//! | `egress-deny-pod` | should deny egress from pods based on PodSelector (replies to an isolated pod's server still flow) |
//! | `egress-to-pod` | should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector |
//! | `ip-block` | should allow egress access to server in CIDR block |
//! | `ip-block-except` | should enforce except clause while egress access to server in CIDR block |
//! | `ingress-allow-all-wins` | should enforce multiple ingress policies with ingress allow-all policy taking precedence |
//! | `egress-allow-all-wins` | should enforce multiple egress policies with egress allow-all policy taking precedence |
//! | `update` | should enforce updated policy |
//! | `delete` | should stop enforcing policies after they are deleted |
//! | `pod-added-later` | ours: a pod created after the policy is isolated by it (cf. should deny ingress access to updated pod) |
//! | `pod-label-change` | should allow ingress access from updated pod; should deny ingress access to updated pod |
//! | `namespace-label-change` | should allow ingress access from updated namespace |
//! | `udp-only` | should not allow access by TCP when a policy specifies only UDP |
//! | `sctp-only` | should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP |
//! | `protocol-only` | should enforce ingress policy allowing any port traffic to a server on a specific protocol |
//! | `ingress-and-egress` | should work with Ingress, Egress specified together |
//! | `client-side-egress-deny` | should support denying of egress traffic on the client side (even if the server explicitly allows this traffic) |
//! | `bad-policy` | ours: a policy the API server would refuse gives an Event and changes nothing |
//!
//! `ovn-trace` confirms four verdicts the packets showed (allowed by a rule, dropped by the
//! default deny, dropped for a port no rule allows, allowed by an ipBlock), and that the
//! ACL which decided belongs to the policy.

mod common;
#[path = "netpol/fixture.rs"]
mod fixture;

use common::reach::Proto::{Tcp, Udp};
use fixture::{Fixture, PodDoc, np};
use ovnkit_kube::trace::Verdict;

const DENY_INGRESS: &str = "  podSelector: {}\n  policyTypes: [Ingress]\n";

/// `from -> to` traced on `proto/port` must be `allowed` (as the packets were), decided by an
/// ACL of policy `ns/name` at `priority`.
#[allow(clippy::too_many_arguments)] // One trace and what it must show.
fn traced(
    f: &Fixture,
    case: &str,
    from: &str,
    to: &str,
    port: u16,
    allowed: bool,
    policy: &str,
    priority: i64,
) {
    let (e, acl) = f.trace(from, to, port);
    let delivered =
        matches!(&e.verdict, Verdict::Delivered { port: p } if *p == to.replace('/', "."));
    assert_eq!(
        (delivered, !acl.drops),
        (allowed, allowed),
        "case {case}: ovn-trace {from} -> {to}:{port}:\n{e}"
    );
    if !allowed {
        assert!(
            matches!(&e.verdict, Verdict::DroppedByAcl { .. }),
            "case {case}: {from} -> {to}:{port} is dropped by an ACL:\n{e}"
        );
    }
    assert_eq!(
        (acl.object.as_deref(), acl.priority),
        (Some(format!("networkpolicy/{policy}").as_str()), priority),
        "case {case}: the ACL that decided {from} -> {to}:{port}: {acl:?}"
    );
}

fn default_deny_ingress(f: &mut Fixture) {
    let case = "default-deny-ingress";
    f.policies(case, &[np("x", "deny-ingress", DENY_INGRESS)]);
    let m = f.matrix(true).ingress("x/*", false);
    f.check(case, &m, 80, Tcp);
    f.check(case, &m, 80, Udp);
}

fn default_deny_all(f: &mut Fixture) {
    let case = "default-deny-all";
    let spec = "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n";
    f.policies(case, &[np("x", "deny-all", spec)]);
    let m = f.matrix(true).ingress("x/*", false).egress("x/*", false);
    f.check(case, &m, 80, Tcp);
}

fn pod_selector(f: &mut Fixture) {
    let case = "pod-selector";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b}}}]\n";
    f.policies(case, &[np("x", "x-a-allows-x-b", spec)]);
    let m = f
        .matrix(true)
        .ingress("x/a", false)
        .expect("x/b", "x/a", true);
    f.check(case, &m, 80, Tcp);
    traced(f, case, "x/b", "x/a", 80, true, "x/x-a-allows-x-b", 2001);
    traced(f, case, "x/c", "x/a", 80, false, "x/x-a-allows-x-b", 2000);
}

fn namespace_selector(f: &mut Fixture) {
    let case = "namespace-selector";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n";
    f.policies(case, &[np("x", "allow-client-a-via-ns-selector", spec)]);
    let m = f
        .matrix(true)
        .expect("x/*", "x/a", false)
        .expect("z/*", "x/a", false);
    f.check(case, &m, 80, Tcp);
}

fn pod_and_namespace_selector(f: &mut Fixture) {
    let case = "pod-and-namespace-selector";
    let spec = "  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
      podSelector: {matchLabels: {pod: b}}
";
    f.policies(
        case,
        &[np("x", "allow-ns-y-podselector-and-nsselector", spec)],
    );
    let m = f
        .matrix(true)
        .ingress("x/a", false)
        .expect("y/b", "x/a", true)
        .expect("z/b", "x/a", true);
    f.check(case, &m, 80, Tcp);
}

fn pod_or_namespace_selector(f: &mut Fixture) {
    let case = "pod-or-namespace-selector";
    let spec = "  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}]
    - podSelector: {matchLabels: {pod: b}}
";
    f.policies(case, &[np("x", "allow-ns-y-match-selector", spec)]);
    let m = f.matrix(true).expect("x/c", "x/a", false);
    f.check(case, &m, 80, Tcp);
}

fn match_expressions(f: &mut Fixture) {
    let case = "match-expressions";
    let spec = "  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from:
    - podSelector:
        matchExpressions: [{key: pod, operator: In, values: [b]}]
    - namespaceSelector:
        matchExpressions: [{key: kubernetes.io/metadata.name, operator: NotIn, values: [x, y]}]
      podSelector:
        matchExpressions:
        - {key: pod, operator: Exists}
        - {key: pod, operator: NotIn, values: [a]}
        - {key: role, operator: DoesNotExist}
";
    f.policies(case, &[np("x", "match-expressions", spec)]);
    let m = f
        .matrix(true)
        .ingress("x/a", false)
        .expect("x/b", "x/a", true)
        .expect("z/b", "x/a", true)
        .expect("z/c", "x/a", true);
    f.check(case, &m, 80, Tcp);
}

const PORT_81_FROM_Y: &str = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n    ports: [{port: 81, protocol: TCP}]\n";

fn ports(f: &mut Fixture) {
    let case = "ports";
    f.policies(case, &[np("x", "allow-81-from-y", PORT_81_FROM_Y)]);
    let m81 = f
        .matrix(true)
        .expect("x/*", "x/a", false)
        .expect("z/*", "x/a", false);
    f.check(case, &m81, 81, Tcp);
    let m80 = f.matrix(true).ingress("x/a", false);
    f.check(case, &m80, 80, Tcp);
    traced(f, case, "y/a", "x/a", 80, false, "x/allow-81-from-y", 2000);
}

fn stacked(f: &mut Fixture) {
    let case = "stacked";
    let p81 = np("x", "allow-client-a-via-ns-selector", PORT_81_FROM_Y);
    f.policies(case, std::slice::from_ref(&p81));
    let allow = f
        .matrix(true)
        .expect("x/*", "x/a", false)
        .expect("z/*", "x/a", false);
    f.check(case, &allow, 81, Tcp);
    f.check(case, &f.matrix(true).ingress("x/a", false), 80, Tcp);
    let p80 = np(
        "x",
        "allow-client-a-via-ns-selector-80",
        &PORT_81_FROM_Y.replace("port: 81", "port: 80"),
    );
    f.policies(case, &[p81, p80]);
    f.check(case, &allow, 80, Tcp);
    f.check(case, &allow, 81, Tcp);
}

fn named_port_from_namespace(f: &mut Fixture) {
    let case = "named-port-from-namespace";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}}]\n    ports: [{port: serve-80-tcp, protocol: TCP}]\n";
    f.policies(case, &[np("x", "allow-client-a-via-ns-selector-80", spec)]);
    let m80 = f
        .matrix(true)
        .expect("x/*", "x/a", false)
        .expect("z/*", "x/a", false);
    f.check(case, &m80, 80, Tcp);
    f.check(case, &f.matrix(true).ingress("x/a", false), 81, Tcp);
}

fn named_port_per_pod(f: &mut Fixture) {
    let case = "named-port-per-pod";
    let spec = "  podSelector: {}\n  ingress:\n  - ports: [{port: web}]\n";
    f.policies(case, &[np("x", "allow-web", spec)]);
    // `web` is 80 on x/a, 81 on x/b, absent on x/c.
    let m80 = f.matrix(true).ingress("x/b", false).ingress("x/c", false);
    f.check(case, &m80, 80, Tcp);
    let m81 = f.matrix(true).ingress("x/a", false).ingress("x/c", false);
    f.check(case, &m81, 81, Tcp);
}

fn egress_named_port(f: &mut Fixture) {
    let case = "egress-named-port";
    let spec = "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: serve-80-tcp}]\n";
    f.policies(case, &[np("x", "allow-egress", spec)]);
    f.check(case, &f.matrix(true), 80, Tcp);
    f.check(case, &f.matrix(true).egress("x/*", false), 81, Tcp);
}

fn end_port(f: &mut Fixture) {
    let case = "end-port";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 79, endPort: 80}]\n";
    f.policies(case, &[np("x", "allow-79-80", spec)]);
    f.check(case, &f.matrix(true), 80, Tcp);
    let denied = f.matrix(true).ingress("x/a", false);
    f.check(case, &denied, 81, Tcp);
    f.check(case, &denied, 80, Udp);
}

fn policy_types_default(f: &mut Fixture) {
    let case = "policy-types-default";
    // No policyTypes and egress rules: the API's default is [Ingress, Egress], so ingress is
    // isolated too (upstream's helpers always set policyTypes).
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  egress:\n  - ports: [{port: 80}]\n";
    f.policies(case, &[np("x", "egress-rules-only", spec)]);
    f.check(case, &f.matrix(true).ingress("x/a", false), 80, Tcp);
    let m81 = f.matrix(true).ingress("x/a", false).egress("x/a", false);
    f.check(case, &m81, 81, Tcp);
}

fn egress_deny_pod(f: &mut Fixture) {
    let case = "egress-deny-pod";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n";
    f.policies(case, &[np("x", "deny-egress-pod-a", spec)]);
    // Everyone still reaches x/a: its replies are not egress it starts.
    f.check(case, &f.matrix(true).egress("x/a", false), 80, Tcp);
}

fn egress_to_pod(f: &mut Fixture) {
    let case = "egress-to-pod";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {pod: a}}}]\n";
    f.policies(case, &[np("x", "allow-to-ns-y-pod-a", spec)]);
    let m = f
        .matrix(true)
        .egress("x/a", false)
        .expect("x/a", "y/a", true);
    f.check(case, &m, 80, Tcp);
}

fn ip_block(f: &mut Fixture) {
    let case = "ip-block";
    let spec = format!(
        "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{{ipBlock: {{cidr: {}/32}}}}]\n",
        f.ip("y/b")
    );
    f.policies(
        case,
        &[np("x", "allow-client-a-via-cidr-egress-rule", &spec)],
    );
    let m = f
        .matrix(true)
        .egress("x/a", false)
        .expect("x/a", "y/b", true);
    f.check(case, &m, 80, Tcp);
    traced(
        f,
        case,
        "x/a",
        "y/b",
        80,
        true,
        "x/allow-client-a-via-cidr-egress-rule",
        2001,
    );
    traced(
        f,
        case,
        "x/a",
        "y/a",
        80,
        false,
        "x/allow-client-a-via-cidr-egress-rule",
        2000,
    );
}

fn ip_block_except(f: &mut Fixture) {
    let case = "ip-block-except";
    let b = f.ip("x/b");
    let wide = ipnet::IpNet::new(b, 16).unwrap().trunc();
    let spec = format!(
        "  podSelector: {{matchLabels: {{pod: a}}}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{{ipBlock: {{cidr: {wide}, except: [{b}/32]}}}}]\n"
    );
    f.policies(case, &[np("x", "allow-cidr-except-x-b", &spec)]);
    f.check(case, &f.matrix(true).expect("x/a", "x/b", false), 80, Tcp);
}

fn ingress_allow_all_wins(f: &mut Fixture) {
    let case = "ingress-allow-all-wins";
    let only80 = np(
        "x",
        "allow-ingress-port-80",
        "  podSelector: {}\n  ingress:\n  - ports: [{port: 80}]\n",
    );
    f.policies(case, std::slice::from_ref(&only80));
    f.check(case, &f.matrix(true).ingress("x/*", false), 81, Tcp);
    let all = np("x", "allow-ingress", "  podSelector: {}\n  ingress: [{}]\n");
    f.policies(case, &[only80, all]);
    f.check(case, &f.matrix(true), 81, Tcp);
}

fn egress_allow_all_wins(f: &mut Fixture) {
    let case = "egress-allow-all-wins";
    let only80 = np(
        "x",
        "allow-egress-port-80",
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: 80}]\n",
    );
    f.policies(case, std::slice::from_ref(&only80));
    f.check(case, &f.matrix(true).egress("x/*", false), 81, Tcp);
    let all = np(
        "x",
        "allow-egress",
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress: [{}]\n",
    );
    f.policies(case, &[only80, all]);
    f.check(case, &f.matrix(true), 81, Tcp);
}

fn update(f: &mut Fixture) {
    let case = "update";
    let name = "allow-all-mutate-to-deny-all";
    f.policies(
        case,
        &[np("x", name, "  podSelector: {}\n  ingress: [{}]\n")],
    );
    f.check(case, &f.matrix(true), 81, Tcp);
    f.policies(case, &[np("x", name, "  podSelector: {}\n  ingress: []\n")]);
    f.check(case, &f.matrix(true).ingress("x/*", false), 81, Tcp);
}

fn delete(f: &mut Fixture) {
    let case = "delete";
    let spec = "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n";
    f.policies(case, &[np("x", "deny-all", spec)]);
    let m = f.matrix(true).ingress("x/*", false).egress("x/*", false);
    f.check(case, &m, 80, Tcp);
    f.policies(case, &[]);
    assert!(
        f.policy_rows().is_empty(),
        "case {case}: rows left:\n{}",
        f.policy_rows()
    );
    f.check(case, &f.matrix(true), 80, Tcp);
}

fn pod_added_later(f: &mut Fixture) {
    let case = "pod-added-later";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Ingress]\n";
    f.policies(case, &[np("x", "deny-ingress-to-a", spec)]);
    let mut d = PodDoc::upstream("x", "d", 1);
    d.labels = vec![("pod".into(), "a".into())];
    f.add_pod(case, d);
    let m = f.matrix(true).ingress("x/a", false).ingress("x/d", false);
    f.check(case, &m, 80, Tcp);
    f.remove_pod(case, "x/d");
}

fn pod_label_change(f: &mut Fixture) {
    let case = "pod-label-change";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{podSelector: {matchLabels: {pod: b, pod2: updated}}}]\n";
    f.policies(case, &[np("x", "allow-client-a-via-pod-selector", spec)]);
    f.check(case, &f.matrix(true).ingress("x/a", false), 80, Tcp);
    f.relabel_pod(case, "x/b", &[("pod", "b"), ("pod2", "updated")]);
    let m = f
        .matrix(true)
        .ingress("x/a", false)
        .expect("x/b", "x/a", true);
    f.check(case, &m, 80, Tcp);
    // x/c becomes isolated by taking the selected label (deny ingress access to updated pod).
    f.relabel_pod(case, "x/b", &[("pod", "b")]);
    f.relabel_pod(case, "x/c", &[("pod", "a")]);
    let m = f.matrix(true).ingress("x/a", false).ingress("x/c", false);
    f.check(case, &m, 80, Tcp);
    f.relabel_pod(case, "x/c", &[("pod", "c")]);
}

fn namespace_label_change(f: &mut Fixture) {
    let case = "namespace-label-change";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - from: [{namespaceSelector: {matchLabels: {ns2: updated}}}]\n";
    f.policies(case, &[np("x", "allow-client-a-via-ns-selector", spec)]);
    f.check(case, &f.matrix(true).ingress("x/a", false), 80, Tcp);
    f.label_namespace(case, "y", &[("ns2", "updated")]);
    let m = f
        .matrix(true)
        .ingress("x/a", false)
        .expect("y/*", "x/a", true);
    f.check(case, &m, 80, Tcp);
    f.label_namespace(case, "y", &[]);
}

fn udp_only(f: &mut Fixture) {
    let case = "udp-only";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 81, protocol: UDP}]\n";
    f.policies(case, &[np("x", "allow-only-udp-ingress-on-port-81", spec)]);
    f.check(case, &f.matrix(true).ingress("x/a", false), 81, Tcp);
    f.check(case, &f.matrix(true), 81, Udp);
}

fn sctp_only(f: &mut Fixture) {
    let case = "sctp-only";
    let sctp = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{port: 81, protocol: SCTP}]\n";
    f.policies(
        case,
        &[
            np("x", "deny-ingress", DENY_INGRESS),
            np("x", "allow-only-sctp-ingress-on-port-81", sctp),
        ],
    );
    f.check(case, &f.matrix(true).ingress("x/*", false), 81, Tcp);
}

fn protocol_only(f: &mut Fixture) {
    let case = "protocol-only";
    let spec = "  podSelector: {matchLabels: {pod: a}}\n  ingress:\n  - ports: [{protocol: TCP}]\n";
    f.policies(case, &[np("x", "allow-ingress-by-proto", spec)]);
    f.check(case, &f.matrix(true), 80, Tcp);
    f.check(case, &f.matrix(true).ingress("x/a", false), 80, Udp);
}

fn ingress_and_egress(f: &mut Fixture) {
    let case = "ingress-and-egress";
    let spec = "  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress, Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {pod: b}}}]
  egress:
  - ports: [{port: 80}]
";
    f.policies(case, &[np("x", "allow-client-a-via-pod-selector", spec)]);
    let m80 = f
        .matrix(true)
        .ingress("x/a", false)
        .expect("x/b", "x/a", true);
    f.check(case, &m80, 80, Tcp);
    let m81 = m80.clone().egress("x/a", false);
    f.check(case, &m81, 81, Tcp);
}

fn client_side_egress_deny(f: &mut Fixture) {
    let case = "client-side-egress-deny";
    let egress = "  podSelector: {matchLabels: {pod: a}}\n  policyTypes: [Egress]\n  egress:\n  - to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: y}}, podSelector: {matchLabels: {pod: a}}}]\n";
    let from_xa = |pod: &str| {
        format!(
            "  podSelector: {{matchLabels: {{pod: {pod}}}}}\n  ingress:\n  - from: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: x}}}}, podSelector: {{matchLabels: {{pod: a}}}}}}]\n"
        )
    };
    f.policies(
        case,
        &[
            np("x", "allow-to-ns-y-pod-a", egress),
            np("y", "allow-from-xa-on-ya", &from_xa("a")),
            np("y", "allow-from-xa-on-yb", &from_xa("b")),
        ],
    );
    let m = f
        .matrix(true)
        .egress("x/a", false)
        .ingress("y/a", false)
        .ingress("y/b", false)
        .expect("x/a", "y/a", true);
    f.check(case, &m, 80, Tcp);
}

fn bad_policy(f: &mut Fixture) {
    let case = "bad-policy";
    let good = np("x", "deny-ingress", DENY_INGRESS);
    f.policies(case, std::slice::from_ref(&good));
    let rows = f.policy_rows();
    let bad = np(
        "y",
        "bad-cidr",
        "  podSelector: {}\n  egress:\n  - to: [{ipBlock: {cidr: 10.16.0.0/33}}]\n",
    );
    let e = f.bad_policies(&[good, bad], "y/bad-cidr");
    assert_eq!(e["reason"], "BadNetworkPolicy", "case {case}: {e}");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("spec.egress[0].to[0].ipBlock.cidr") && msg.contains("10.16.0.0/33"),
        "case {case}: the event names the field and the value: {msg}"
    );
    // The good policy's version that broke keeps its rows: x stays isolated as it was.
    let broken = np(
        "x",
        "deny-ingress",
        "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: pod, operator: Is, values: [b]}]}}]\n",
    );
    let e = f.bad_policies(&[broken], "x/deny-ingress");
    let msg = e["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("spec.ingress[0].from[0].podSelector.matchExpressions[0].operator"),
        "case {case}: {msg}"
    );
    // The first event reached the file after its step: nothing of either policy moved.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(f.policy_rows(), rows, "case {case}: OVN changed");
    f.check(case, &f.matrix(true).ingress("x/*", false), 80, Tcp);
    // Deleted: its rows go.
    f.policies(case, &[]);
}

#[test]
fn network_policies_enforce_what_upstream_e2e_expects() {
    let Some(mut f) = Fixture::start() else {
        return;
    };
    // Before any policy, everything connects.
    f.check("no-policy", &f.matrix(true), 80, Tcp);
    f.check("no-policy", &f.matrix(true), 81, Udp);
    let cases: &[fn(&mut Fixture)] = &[
        default_deny_ingress,
        default_deny_all,
        pod_selector,
        namespace_selector,
        pod_and_namespace_selector,
        pod_or_namespace_selector,
        match_expressions,
        ports,
        stacked,
        named_port_from_namespace,
        named_port_per_pod,
        egress_named_port,
        end_port,
        policy_types_default,
        egress_deny_pod,
        egress_to_pod,
        ip_block,
        ip_block_except,
        ingress_allow_all_wins,
        egress_allow_all_wins,
        update,
        delete,
        pod_added_later,
        pod_label_change,
        namespace_label_change,
        udp_only,
        sctp_only,
        protocol_only,
        ingress_and_egress,
        client_side_egress_deny,
        bad_policy,
    ];
    for case in cases {
        case(&mut f);
    }
    assert!(
        f.controller_running(),
        "the controller ran throughout ({})",
        f.dir().display()
    );
}
