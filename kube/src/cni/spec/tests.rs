use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const ARGS_OF_CONTAINERD: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a;\
                                  K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=uid-pod-a";

fn add_env() -> BTreeMap<String, String> {
    vars(&[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "abc123"),
        ("CNI_NETNS", "/var/run/netns/cni-1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", ARGS_OF_CONTAINERD),
        ("CNI_PATH", "/opt/cni/bin:/usr/libexec/cni"),
    ])
}

fn err_of(r: Result<impl fmt::Debug, CniError>) -> (u32, String) {
    let e = r.unwrap_err();
    (e.code, e.msg)
}

#[test]
fn containerd_add_environment_parses() {
    let env = CniEnv::from_map(&add_env()).unwrap();
    assert_eq!(env.command, CniCommand::Add);
    assert_eq!(env.container_id, "abc123");
    assert_eq!(env.netns, "/var/run/netns/cni-1");
    assert_eq!(env.ifname, "eth0");
    assert_eq!(
        env.args.pod,
        Some(PodRef {
            namespace: "default".into(),
            name: "pod-a".into(),
            uid: Some("uid-pod-a".into()),
        })
    );
    assert_eq!(env.args.infra_container_id.as_deref(), Some("abc123"));
    assert_eq!(env.args.pairs.len(), 5);
    assert_eq!(
        env.path,
        vec![
            PathBuf::from("/opt/cni/bin"),
            PathBuf::from("/usr/libexec/cni")
        ]
    );
}

#[test]
fn missing_variables_are_all_named() {
    let mut env = add_env();
    env.remove("CNI_NETNS");
    env.insert("CNI_IFNAME".into(), String::new());
    assert_eq!(
        err_of(CniEnv::from_map(&env)),
        (
            4,
            "CNI_NETNS and CNI_IFNAME are not set (ADD needs CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME)"
                .into()
        )
    );
    env.remove("CNI_COMMAND");
    assert_eq!(
        err_of(CniEnv::from_map(&env)),
        (
            4,
            "CNI_COMMAND is not set (ADD, DEL, CHECK, STATUS, GC or VERSION)".into()
        )
    );
    env.insert("CNI_COMMAND".into(), "add".into());
    assert_eq!(
        err_of(CniEnv::from_map(&env)),
        (
            4,
            r#"CNI_COMMAND="add": unknown command (ADD, DEL, CHECK, STATUS, GC or VERSION)"#.into()
        )
    );
}

#[test]
fn del_may_have_an_empty_netns_and_status_gc_version_need_nothing() {
    let mut env = add_env();
    env.insert("CNI_COMMAND".into(), "DEL".into());
    env.insert("CNI_NETNS".into(), String::new());
    assert_eq!(CniEnv::from_map(&env).unwrap().netns, "");
    env.remove("CNI_CONTAINERID");
    assert_eq!(
        err_of(CniEnv::from_map(&env)),
        (
            4,
            "CNI_CONTAINERID is not set (DEL needs CNI_CONTAINERID and CNI_IFNAME)".into()
        )
    );
    for command in ["STATUS", "GC", "VERSION"] {
        let env = CniEnv::from_map(&vars(&[("CNI_COMMAND", command)])).unwrap();
        assert_eq!(env.command.as_str(), command);
        assert!(env.command.required_vars().is_empty());
    }
}

#[test]
fn container_ids_and_interface_names_follow_the_spec() {
    let mut env = add_env();
    env.insert("CNI_CONTAINERID".into(), "-abc".into());
    assert_eq!(
        err_of(CniEnv::from_map(&env)),
        (
            4,
            r#"CNI_CONTAINERID="-abc": must start with a letter or digit"#.into()
        )
    );
    env.insert("CNI_CONTAINERID".into(), "ab c".into());
    assert_eq!(
        err_of(CniEnv::from_map(&env)).1,
        r#"CNI_CONTAINERID="ab c": only letters, digits, '_', '.' and '-' are allowed"#
    );
    env.insert("CNI_CONTAINERID".into(), "a_b.c-1".into());
    for (name, reason) in [
        ("..", r#""." and ".." are not interface names"#),
        ("averyveryverylong", "longer than 15 bytes"),
        ("eth:0", "'/', ':' and whitespace are not allowed"),
        ("eth 0", "'/', ':' and whitespace are not allowed"),
    ] {
        env.insert("CNI_IFNAME".into(), name.into());
        assert_eq!(
            err_of(CniEnv::from_map(&env)),
            (4, format!("CNI_IFNAME={name:?}: {reason}"))
        );
    }
    env.insert("CNI_IFNAME".into(), "fifteen-chars15".into());
    assert!(CniEnv::from_map(&env).is_ok());
}

#[test]
fn cni_args_errors_name_the_pair() {
    assert_eq!(
        err_of(CniArgs::parse("IgnoreUnknown=1;junk")),
        (4, r#"CNI_ARGS: "junk" is not KEY=VALUE"#.into())
    );
    assert_eq!(
        err_of(CniArgs::parse("=x")),
        (4, r#"CNI_ARGS: "=x" has an empty key"#.into())
    );
    assert_eq!(
        err_of(CniArgs::parse("A=1;A=2")),
        (4, "CNI_ARGS: A is given twice".into())
    );
    assert_eq!(
        err_of(CniArgs::parse("K8S_POD_NAME=web")),
        (4, "CNI_ARGS: K8S_POD_NAME without K8S_POD_NAMESPACE".into())
    );
    assert_eq!(
        err_of(CniArgs::parse("K8S_POD_NAMESPACE=default")),
        (4, "CNI_ARGS: K8S_POD_NAMESPACE without K8S_POD_NAME".into())
    );
    let args = CniArgs::parse(";FOO=bar=baz;;").unwrap();
    assert_eq!(args.pairs, vec![("FOO".to_owned(), "bar=baz".to_owned())]);
    assert_eq!(args.pod, None);
}

#[test]
fn config_defaults_and_fields() {
    let conf = NetConf::parse(br#"{"cniVersion":"1.1.0","name":"ovn","type":"ovnkit"}"#).unwrap();
    assert_eq!(conf.cni_version, CniVersion::V1_1_0);
    assert_eq!(conf.name, "ovn");
    assert_eq!(conf.plugin_type, "ovnkit");
    assert_eq!(conf.agent_socket, PathBuf::from(DEFAULT_AGENT_SOCKET));
    assert_eq!(conf.mtu, None);
    assert_eq!(conf.timeout, Duration::from_secs(60));
    assert_eq!(conf.prev_result, None);
    assert_eq!(conf.valid_attachments, None);

    let conf = NetConf::parse(
        br#"{"cniVersion":"1.0.0","name":"ovn","type":"ovnkit","agentSocket":"/tmp/a.sock",
             "mtu":1400,"timeoutSeconds":5,"prevResult":{"interfaces":[]},
             "cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],
             "capabilities":{"portMappings":true}}"#,
    )
    .unwrap();
    assert_eq!(conf.agent_socket, PathBuf::from("/tmp/a.sock"));
    assert_eq!(conf.mtu, Some(1400));
    assert_eq!(conf.timeout, Duration::from_secs(5));
    assert_eq!(conf.prev_result, Some(json!({"interfaces": []})));
    assert_eq!(
        conf.valid_attachments,
        Some(vec![AttachmentRef {
            container_id: "c1".into(),
            ifname: "eth0".into()
        }])
    );
}

#[test]
fn config_errors_name_the_field_and_the_reason() {
    let cases: &[(&[u8], u32, &str)] = &[
        (b"", 6, "network configuration on stdin is not JSON: EOF while parsing a value at line 1 column 0"),
        (b"[1]", 6, "network configuration on stdin must be a JSON object, not an array"),
        (br#"{"name":"n","type":"t"}"#, 7, "network configuration: cniVersion is missing"),
        (br#"{"cniVersion":1,"name":"n","type":"t"}"#, 7, "network configuration: cniVersion must be a string, not a number"),
        (br#"{"cniVersion":"0.4.0","name":"n","type":"t"}"#, 1, r#"network configuration: cniVersion "0.4.0" is not supported (supported: 1.0.0, 1.1.0)"#),
        (br#"{"cniVersion":"1.0.0","type":"t"}"#, 7, "network configuration: name is missing"),
        (br#"{"cniVersion":"1.0.0","name":"","type":"t"}"#, 7, "network configuration: name is empty"),
        (br#"{"cniVersion":"1.0.0","name":"a/b","type":"t"}"#, 7, r#"network configuration: name "a/b": only letters, digits, '_', '.' and '-' are allowed"#),
        (br#"{"cniVersion":"1.0.0","name":"n"}"#, 7, "network configuration: type is missing"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","agentSocket":"run/a.sock"}"#, 7, r#"network configuration: agentSocket "run/a.sock": not an absolute path"#),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","agentSocket":5}"#, 7, "network configuration: agentSocket must be a string, not a number"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","mtu":67}"#, 7, "network configuration: mtu 67: not an integer from 68 to 65535"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","mtu":1400.5}"#, 7, "network configuration: mtu 1400.5: not an integer from 68 to 65535"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","mtu":"1400"}"#, 7, "network configuration: mtu must be an integer, not a string"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","timeoutSeconds":0}"#, 7, "network configuration: timeoutSeconds 0: not an integer from 1 to 3600"),
        (br#"{"cniVersion":"1.0.0","name":"n","type":"t","prevResult":[]}"#, 7, "network configuration: prevResult must be an object, not an array"),
        (br#"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":{}}"#, 7, "network configuration: cni.dev/valid-attachments must be an array, not an object"),
        (br#"{"cniVersion":"1.1.0","name":"n","type":"t","cni.dev/valid-attachments":[{"containerID":"c"}]}"#, 7, "network configuration: cni.dev/valid-attachments[0]: ifname is missing or not a non-empty string"),
    ];
    for (bytes, code, msg) in cases {
        assert_eq!(
            err_of(NetConf::parse(bytes)),
            (*code, (*msg).to_owned()),
            "{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

#[test]
fn oversized_config_is_an_io_error() {
    let mut big = br#"{"cniVersion":"1.0.0","name":"n","type":"t","pad":""#.to_vec();
    big.resize(MAX_CONFIG + 1, b' ');
    assert_eq!(
        err_of(NetConf::parse(&big)),
        (
            5,
            "network configuration on stdin is over 1048576 bytes (read 1048577)".into()
        )
    );
    assert_eq!(NetConf::requested_version(&big), None);
}

#[test]
fn requested_version_is_lenient() {
    assert_eq!(
        NetConf::requested_version(br#"{"cniVersion":"1.1.0"}"#),
        Some(CniVersion::V1_1_0)
    );
    assert_eq!(
        NetConf::requested_version(br#"{"cniVersion":"0.3.1"}"#),
        None
    );
    assert_eq!(NetConf::requested_version(b"nope"), None);
    // A repeated key: the last wins, in both readings.
    let twice = br#"{"cniVersion":"0.4.0","cniVersion":"1.1.0","name":"n","type":"t"}"#;
    assert_eq!(NetConf::requested_version(twice), Some(CniVersion::V1_1_0));
    assert_eq!(
        NetConf::parse(twice).unwrap().cni_version,
        CniVersion::V1_1_0
    );
}

#[test]
fn errors_print_as_the_cni_error_object() {
    let e = CniError::new(11, "agent down").with_details("connect: refused");
    assert_eq!(e.to_string(), "agent down; connect: refused");
    assert_eq!(
        e.to_json(CniVersion::V1_1_0),
        json!({"cniVersion": "1.1.0", "code": 11, "msg": "agent down", "details": "connect: refused"})
    );
    let e = CniError::new(7, "bad");
    assert_eq!(e.to_string(), "bad");
    assert_eq!(
        e.to_json(CniVersion::V1_0_0),
        json!({"cniVersion": "1.0.0", "code": 7, "msg": "bad"})
    );
}

fn attachment() -> Attachment {
    Attachment {
        host: Interface {
            name: "abc123_h".into(),
            mac: "0a:00:00:00:00:01".into(),
            mtu: Some(1400),
            sandbox: None,
        },
        pod: Interface {
            name: "eth0".into(),
            mac: "0a:00:00:10:00:05".into(),
            mtu: Some(1400),
            sandbox: Some("/var/run/netns/cni-1".into()),
        },
        ips: vec![
            IpConfig {
                address: "10.16.0.5/16".parse().unwrap(),
                gateway: Some("10.16.0.1".parse().unwrap()),
            },
            IpConfig {
                address: "fd00:10:16::5/64".parse().unwrap(),
                gateway: None,
            },
        ],
        routes: vec![Route {
            dst: "0.0.0.0/0".parse().unwrap(),
            gw: Some("10.16.0.1".parse().unwrap()),
        }],
        dns: Some(Dns {
            nameservers: vec!["10.96.0.10".into()],
            domain: None,
            search: vec!["svc.cluster.local".into()],
            options: vec![],
        }),
    }
}

#[test]
fn results_per_version() {
    let expected = |mtu: bool| {
        let mut host = json!({"name": "abc123_h", "mac": "0a:00:00:00:00:01"});
        let mut pod =
            json!({"name": "eth0", "mac": "0a:00:00:10:00:05", "sandbox": "/var/run/netns/cni-1"});
        if mtu {
            host["mtu"] = 1400.into();
            pod["mtu"] = 1400.into();
        }
        json!({
            "cniVersion": if mtu { "1.1.0" } else { "1.0.0" },
            "interfaces": [host, pod],
            "ips": [
                {"address": "10.16.0.5/16", "gateway": "10.16.0.1", "interface": 1},
                {"address": "fd00:10:16::5/64", "interface": 1},
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.16.0.1"}],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
        })
    };
    assert_eq!(
        result_json(CniVersion::V1_0_0, &attachment()),
        expected(false)
    );
    assert_eq!(
        result_json(CniVersion::V1_1_0, &attachment()),
        expected(true)
    );
    let mut bare = attachment();
    bare.routes.clear();
    bare.dns = None;
    let v = result_json(CniVersion::V1_0_0, &bare);
    assert!(v.get("routes").is_none() && v.get("dns").is_none(), "{v}");
}

#[test]
fn a_result_reads_back_as_its_attachment() {
    for version in [CniVersion::V1_0_0, CniVersion::V1_1_0] {
        let mut want = attachment();
        if version == CniVersion::V1_0_0 {
            want.host.mtu = None;
            want.pod.mtu = None;
        }
        let result = result_json(version, &attachment());
        assert_eq!(attachment_of_result(&result, "eth0").unwrap(), want);
    }
    assert_eq!(
        err_of(attachment_of_result(
            &json!({"interfaces": [{"name": "eth0", "sandbox": "/ns"}]}),
            "eth0"
        )),
        (
            7,
            "network configuration: prevResult: no host interface (one without a sandbox)".into()
        )
    );
    assert_eq!(
        err_of(attachment_of_result(
            &json!({"interfaces": [{"name": "h"}]}),
            "eth0"
        )),
        (
            7,
            "network configuration: prevResult: no pod interface (one with a sandbox)".into()
        )
    );
    assert_eq!(
        err_of(attachment_of_result(
            &json!({"interfaces": [{"name": "h"}], "ips": [{"address": "10.0.0.1"}]}),
            "eth0"
        ))
        .0,
        7
    );
}

fn env_of(command: &str) -> CniEnv {
    let mut env = add_env();
    env.insert("CNI_COMMAND".into(), command.into());
    CniEnv::from_map(&env).unwrap()
}

#[test]
fn requests_per_command() {
    let conf = NetConf::parse(br#"{"cniVersion":"1.0.0","name":"ovn","type":"ovnkit","mtu":1400}"#)
        .unwrap();
    let add = request(&env_of("ADD"), &conf).unwrap().unwrap();
    assert_eq!(add.command, Command::Add);
    assert_eq!(add.network, "ovn");
    assert_eq!(add.mtu, Some(1400));
    assert_eq!(add.pod.as_ref().unwrap().name, "pod-a");
    assert_eq!(request(&env_of("VERSION"), &conf).unwrap(), None);

    assert_eq!(
        err_of(request(&env_of("STATUS"), &conf)),
        (
            1,
            "STATUS is not a command of cniVersion 1.0.0 (it is one of 1.1.0 and later)".into()
        )
    );
    assert_eq!(
        err_of(request(&env_of("GC"), &conf)),
        (
            1,
            "GC is not a command of cniVersion 1.0.0 (it is one of 1.1.0 and later)".into()
        )
    );
    assert_eq!(
        err_of(request(&env_of("CHECK"), &conf)),
        (
            7,
            "network configuration: CHECK needs prevResult (the result of the ADD)".into()
        )
    );

    let mut conf =
        NetConf::parse(br#"{"cniVersion":"1.1.0","name":"ovn","type":"ovnkit"}"#).unwrap();
    assert_eq!(
        err_of(request(&env_of("GC"), &conf)),
        (7, "network configuration: GC needs cni.dev/valid-attachments (without it every attachment would be removed)".into())
    );
    conf.valid_attachments = Some(Vec::new());
    let gc = request(&env_of("GC"), &conf).unwrap().unwrap();
    assert_eq!(gc.command, Command::Gc);
    assert!(gc.valid_attachments.is_empty());

    conf.prev_result = Some(result_json(CniVersion::V1_1_0, &attachment()));
    let check = request(&env_of("CHECK"), &conf).unwrap().unwrap();
    assert_eq!(check.prev_result, Some(attachment()));
    // DEL does not read prevResult: a chain may have changed it, and DEL must not fail on it.
    conf.prev_result = Some(json!({"interfaces": "garbage"}));
    let del = request(&env_of("DEL"), &conf).unwrap().unwrap();
    assert_eq!(del.prev_result, None);
}

#[test]
fn version_answer() {
    assert_eq!(
        version_json(Some(CniVersion::V1_1_0)),
        json!({"cniVersion": "1.1.0", "supportedVersions": ["1.0.0", "1.1.0"]})
    );
    assert_eq!(
        version_json(None),
        json!({"cniVersion": "1.0.0", "supportedVersions": ["1.0.0", "1.1.0"]})
    );
}
