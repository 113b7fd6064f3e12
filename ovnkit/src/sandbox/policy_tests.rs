use std::collections::BTreeMap;

use super::*;

fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_yaml::from_str(text).expect("test YAML")
}

struct Fixture {
    namespaces: BTreeMap<String, Namespace>,
    policies: BTreeMap<String, NetworkPolicy>,
    pods: BTreeMap<String, (Pod, IpAddr)>,
}

impl Fixture {
    fn new() -> Self {
        let mut f = Fixture {
            namespaces: BTreeMap::new(),
            policies: BTreeMap::new(),
            pods: BTreeMap::new(),
        };
        f.namespace("apps", "{}", "{team: blue}");
        f.namespace("other", "{}", "{team: red}");
        f.namespace(
            "secure",
            "{ovn.kubernetes.io/cidr: 10.19.0.0/24, ovn.kubernetes.io/private: \"true\", ovn.kubernetes.io/allow: 10.16.0.7/32}",
            "{}",
        );
        f.pod("apps", "web", "{app: web}", "10.17.0.10");
        f.pod("apps", "db", "{app: db}", "10.17.0.50");
        f.pod("apps", "tool", "{app: tool}", "10.17.0.11");
        f.pod("other", "client", "{app: web}", "10.16.0.2");
        f.pod("other", "friend", "{}", "10.16.0.7");
        f.pod("secure", "vault", "{}", "10.19.0.2");
        f.pod("secure", "vault2", "{}", "10.19.0.3");
        f
    }

    fn namespace(&mut self, name: &str, annotations: &str, labels: &str) {
        self.namespaces.insert(
            name.into(),
            yaml(&format!(
                "metadata: {{name: {name}, annotations: {annotations}, labels: {labels}}}"
            )),
        );
    }

    fn pod(&mut self, ns: &str, name: &str, labels: &str, ip: &str) {
        let pod: Pod = yaml(&format!(
            "metadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n\
             spec: {{containers: [{{name: c, ports: [{{name: sql, containerPort: 5432}}]}}]}}\n"
        ));
        self.pods
            .insert(format!("{ns}/{name}"), (pod, ip.parse().unwrap()));
    }

    fn policy(&mut self, ns: &str, name: &str, spec: &str) {
        self.policies.insert(
            format!("{ns}/{name}"),
            yaml(&format!(
                "metadata: {{name: {name}, namespace: {ns}}}\nspec: {spec}\n"
            )),
        );
    }

    fn expect(&self, from: &str, to: &str, t: Traffic) -> Expected {
        let rules = Rules::new(&self.namespaces, &self.policies, true);
        let end = |k: &str| {
            let (pod, ip) = &self.pods[k];
            End { pod, ip: *ip }
        };
        rules.expect(end(from), end(to), t)
    }

    fn allowed(&self, from: &str, to: &str, t: Traffic) -> bool {
        self.expect(from, to, t).allowed
    }
}

#[test]
fn a_private_subnet_admits_its_own_pods_and_its_allowed_cidrs_only() {
    let f = Fixture::new();
    assert!(f.allowed("secure/vault", "secure/vault2", Traffic::Icmp));
    assert!(
        f.allowed("other/friend", "secure/vault", Traffic::Tcp(80)),
        "allow CIDR"
    );
    let e = f.expect("apps/web", "secure/vault", Traffic::Icmp);
    assert!(!e.allowed);
    assert_eq!(e.by, "private subnet secure");
    assert!(
        f.allowed("secure/vault", "apps/web", Traffic::Tcp(80)),
        "outwards"
    );
}

#[test]
fn an_ingress_policy_admits_its_peers_on_its_ports_only() {
    let mut f = Fixture::new();
    f.policy(
        "apps",
        "db-from-web",
        "{podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress], ingress: [{from: [{podSelector: {matchLabels: {app: web}}}], ports: [{protocol: TCP, port: 8080}]}]}",
    );
    assert!(f.allowed("apps/web", "apps/db", Traffic::Tcp(8080)));
    assert!(!f.allowed("apps/web", "apps/db", Traffic::Tcp(8081)));
    assert!(!f.allowed("apps/web", "apps/db", Traffic::Udp(8080)));
    assert!(
        !f.allowed("apps/web", "apps/db", Traffic::Icmp),
        "a rule with ports admits no ICMP"
    );
    let e = f.expect("apps/tool", "apps/db", Traffic::Tcp(8080));
    assert!(!e.allowed);
    assert_eq!(e.by, "ingress of apps/db (policy apps/db-from-web)");
    // A podSelector alone means the policy's own namespace: a web pod elsewhere is not a peer.
    assert!(!f.allowed("other/client", "apps/db", Traffic::Tcp(8080)));
    // Pods the policy does not select, and the selected pod's own egress, are not affected.
    assert!(f.allowed("apps/tool", "apps/web", Traffic::Icmp));
    let e = f.expect("apps/db", "apps/web", Traffic::Icmp);
    assert!(e.allowed);
    assert_eq!(e.by, "policy apps/db-from-web");
}

#[test]
fn namespace_selectors_expressions_ip_blocks_and_named_ports_are_understood() {
    let mut f = Fixture::new();
    f.policy(
        "apps",
        "db",
        "{podSelector: {matchExpressions: [{key: app, operator: In, values: [db]}]}, ingress: [\
           {from: [{namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {app: web}}}], ports: [{port: sql}]},\
           {from: [{ipBlock: {cidr: 10.17.0.0/24, except: [10.17.0.11/32]}}]}]}",
    );
    assert!(
        f.allowed("other/client", "apps/db", Traffic::Tcp(5432)),
        "both selectors, named port"
    );
    assert!(!f.allowed("other/client", "apps/db", Traffic::Tcp(8080)));
    assert!(
        !f.allowed("other/friend", "apps/db", Traffic::Tcp(5432)),
        "pod selector fails"
    );
    assert!(
        f.allowed("apps/web", "apps/db", Traffic::Icmp),
        "ip block without ports"
    );
    assert!(
        !f.allowed("apps/tool", "apps/db", Traffic::Icmp),
        "excepted"
    );
}

#[test]
fn an_egress_policy_limits_what_its_pods_send_and_policies_can_be_left_out() {
    let mut f = Fixture::new();
    f.policy(
        "apps",
        "web-out",
        "{podSelector: {matchLabels: {app: web}}, policyTypes: [Egress], egress: [{to: [{namespaceSelector: {}}], ports: [{protocol: UDP, port: 53}]}]}",
    );
    assert!(f.allowed("apps/web", "other/client", Traffic::Udp(53)));
    let e = f.expect("apps/web", "other/client", Traffic::Tcp(80));
    assert!(!e.allowed);
    assert!(e.by.starts_with("egress of apps/web"));
    assert!(
        f.allowed("other/client", "apps/web", Traffic::Tcp(80)),
        "ingress untouched"
    );
    // Without policyTypes, a policy with egress rules is of both types: no ingress rule,
    // no ingress.
    f.policy(
        "apps",
        "web-out",
        "{podSelector: {matchLabels: {app: web}}, egress: [{ports: [{protocol: UDP, port: 53}]}]}",
    );
    assert!(!f.allowed("other/client", "apps/web", Traffic::Tcp(80)));
    f.policies.clear();
    let rules = Rules::new(&f.namespaces, &f.policies, false);
    let (pod, ip) = &f.pods["apps/web"];
    let (pod2, ip2) = &f.pods["other/client"];
    assert!(
        rules
            .expect(
                End { pod, ip: *ip },
                End {
                    pod: pod2,
                    ip: *ip2
                },
                Traffic::Tcp(80)
            )
            .allowed
    );
}

#[test]
fn label_selectors_follow_the_api_rules() {
    let labels: BTreeMap<String, String> = [("a".to_owned(), "1".to_owned())].into();
    let sel = |s: &str| -> LabelSelector { yaml(s) };
    assert!(matches(None, None));
    assert!(matches(Some(&sel("{}")), Some(&labels)));
    assert!(matches(
        Some(&sel("{matchLabels: {a: '1'}}")),
        Some(&labels)
    ));
    assert!(!matches(
        Some(&sel("{matchLabels: {a: '2'}}")),
        Some(&labels)
    ));
    assert!(matches(
        Some(&sel(
            "{matchExpressions: [{key: b, operator: DoesNotExist}]}"
        )),
        Some(&labels)
    ));
    assert!(matches(
        Some(&sel(
            "{matchExpressions: [{key: a, operator: NotIn, values: ['2']}]}"
        )),
        Some(&labels)
    ));
    assert!(!matches(
        Some(&sel(
            "{matchExpressions: [{key: a, operator: Exists}, {key: b, operator: Exists}]}"
        )),
        Some(&labels)
    ));
}
