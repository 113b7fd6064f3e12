//! The `ovnkit` binary as a CNI plugin, run as containerd runs it (no arguments, `CNI_*`
//! variables, the configuration on stdin) against a fake agent: a thread on a unix socket in a
//! temporary directory that records each request and answers a scripted reply. Every test
//! compares the whole stdout JSON, the exit code and the exact requests the agent received.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ovnkit_kube::cni::protocol::MAX_MESSAGE;
use serde_json::{Value, json};

const ID: &str = "4a5c0ffee0ddba11f00d4a5c0ffee0ddba11f00d4a5c0ffee0ddba11f00d1234";
const NETNS: &str = "/var/run/netns/cni-6f1c2a3e";
const ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-a;\
                    K8S_POD_INFRA_CONTAINER_ID=4a5c0ffee0ddba11f00d4a5c0ffee0ddba11f00d4a5c0ffee0ddba11f00d1234;\
                    K8S_POD_UID=uid-pod-a";

/// What the fake agent does with one connection, after reading the request line.
enum Answer {
    /// Writes this line and a newline.
    Line(String),
    /// Writes these bytes as they are, then closes.
    Raw(Vec<u8>),
    /// Answers nothing and keeps the connection until the plugin goes away.
    Silent,
    /// Closes the connection at once.
    Close,
}

struct Agent {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    done: mpsc::Sender<()>,
    thread: JoinHandle<Vec<Value>>,
}

impl Agent {
    /// An agent that serves one connection per answer, in order.
    fn start(answers: Vec<Answer>) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("agent.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let (done, done_rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for answer in answers {
                let deadline = Instant::now() + Duration::from_secs(30);
                let mut stream = loop {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(_) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => return requests,
                    }
                };
                stream.set_nonblocking(false).unwrap();
                let mut line = Vec::new();
                BufReader::new(&mut stream)
                    .take(MAX_MESSAGE as u64 + 2)
                    .read_until(b'\n', &mut line)
                    .unwrap();
                assert_eq!(line.pop(), Some(b'\n'), "a request ends with a newline");
                requests.push(serde_json::from_slice(&line).unwrap_or_else(|e| {
                    json!(format!(
                        "not JSON ({e}): {}",
                        String::from_utf8_lossy(&line)
                    ))
                }));
                match answer {
                    Answer::Line(l) => {
                        let _ = stream.write_all(format!("{l}\n").as_bytes());
                    }
                    Answer::Raw(bytes) => {
                        let _ = stream.write_all(&bytes);
                    }
                    Answer::Silent => {
                        let _ = stream.read_to_end(&mut Vec::new());
                    }
                    Answer::Close => {}
                }
            }
            // Any connection past the script is a request the plugin should not have made.
            let _ = done_rx.recv();
            if listener.accept().is_ok() {
                requests.push(json!("unexpected connection"));
            }
            requests
        });
        Agent {
            _dir: dir,
            socket,
            done,
            thread,
        }
    }

    /// The requests received, in order.
    fn requests(self) -> Vec<Value> {
        self.done.send(()).unwrap();
        self.thread.join().unwrap()
    }
}

struct Run {
    code: i32,
    stdout: Value,
    stderr: String,
}

/// Runs `ovnkit` with `args` (none, as a runtime runs it), only `env` in its environment and
/// `stdin` on its stdin. `stdout` is `null` when the plugin printed nothing.
fn plugin_with(args: &[&str], env: &[(&str, &str)], stdin: Vec<u8>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ovnkit"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // The plugin may stop reading (an oversized configuration): ignore the broken pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let stdout = if text.is_empty() {
        Value::Null
    } else {
        assert!(text.ends_with('\n'), "stdout is one JSON line: {text:?}");
        assert_eq!(
            text.matches('\n').count(),
            1,
            "stdout is one JSON line: {text:?}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout {text:?}: {e}"))
    };
    Run {
        code: out.status.code().unwrap(),
        stdout,
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn plugin(env: &[(&str, &str)], stdin: impl Into<Vec<u8>>) -> Run {
    plugin_with(&[], env, stdin.into())
}

/// The environment containerd 1.6 gives `ADD`, with `command` instead.
fn containerd(command: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", ID),
        ("CNI_NETNS", NETNS),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
        ("CNI_ARGS", ARGS),
    ]
}

fn conf(version: &str, socket: &Path, extra: Value) -> Vec<u8> {
    let mut c = json!({
        "cniVersion": version,
        "name": "ovn",
        "type": "ovnkit",
        "agentSocket": socket,
        "mtu": 1400,
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    serde_json::to_vec(&c).unwrap()
}

/// The agent's `added` reply, as the agent sends it.
fn added() -> String {
    json!({
        "reply": "added",
        "attachment": {
            "host": {"name": "4a5c0ffee0ddb_h", "mac": "0a:58:0a:10:00:01", "mtu": 1400},
            "pod": {"name": "eth0", "mac": "0a:58:0a:10:00:05", "mtu": 1400, "sandbox": NETNS},
            "ips": [
                {"address": "10.16.0.5/16", "gateway": "10.16.0.1"},
                {"address": "fd00:10:16::5/64", "gateway": "fd00:10:16::1"},
            ],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.16.0.1"}, {"dst": "::/0", "gw": "fd00:10:16::1"}],
            "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]},
        },
    })
    .to_string()
}

/// The result of [`added`] in `version`.
fn result(version: &str) -> Value {
    let mut host = json!({"name": "4a5c0ffee0ddb_h", "mac": "0a:58:0a:10:00:01"});
    let mut pod = json!({"name": "eth0", "mac": "0a:58:0a:10:00:05", "sandbox": NETNS});
    if version == "1.1.0" {
        host["mtu"] = json!(1400);
        pod["mtu"] = json!(1400);
    }
    json!({
        "cniVersion": version,
        "interfaces": [host, pod],
        "ips": [
            {"address": "10.16.0.5/16", "gateway": "10.16.0.1", "interface": 1},
            {"address": "fd00:10:16::5/64", "gateway": "fd00:10:16::1", "interface": 1},
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.16.0.1"}, {"dst": "::/0", "gw": "fd00:10:16::1"}],
        "dns": {"nameservers": ["10.96.0.10"], "search": ["default.svc.cluster.local"]},
    })
}

fn request(command: &str, netns: &str) -> Value {
    json!({
        "command": command,
        "container_id": ID,
        "netns": netns,
        "ifname": "eth0",
        "pod": {"namespace": "default", "name": "pod-a", "uid": "uid-pod-a"},
        "network": "ovn",
        "mtu": 1400,
    })
}

const DONE: &str = r#"{"reply":"done"}"#;

#[test]
fn version_is_answered_without_the_agent() {
    for (stdin, version) in [
        (r#"{"cniVersion":"1.0.0"}"#, "1.0.0"),
        (r#"{"cniVersion":"1.1.0"}"#, "1.1.0"),
        ("", "1.0.0"),
        (r#"{"cniVersion":"0.4.0"}"#, "1.0.0"),
    ] {
        let run = plugin(&[("CNI_COMMAND", "VERSION")], stdin);
        assert_eq!(run.code, 0, "{stdin}");
        assert_eq!(
            run.stdout,
            json!({"cniVersion": version, "supportedVersions": ["1.0.0", "1.1.0"]}),
            "{stdin}"
        );
    }
}

#[test]
fn add_answers_the_result_in_the_requested_version() {
    for version in ["1.0.0", "1.1.0"] {
        let agent = Agent::start(vec![Answer::Line(added())]);
        let run = plugin(&containerd("ADD"), conf(version, &agent.socket, json!({})));
        assert_eq!((run.code, run.stdout), (0, result(version)), "{version}");
        assert_eq!(run.stderr, "");
        assert_eq!(agent.requests(), vec![request("ADD", NETNS)]);
    }
}

#[test]
fn containerd_del_twice_with_and_without_netns() {
    for version in ["1.0.0", "1.1.0"] {
        let agent = Agent::start(vec![Answer::Line(DONE.into()), Answer::Line(DONE.into())]);
        // StopPodSandbox: with the netns and prevResult.
        let run = plugin(
            &containerd("DEL"),
            conf(
                version,
                &agent.socket,
                json!({"prevResult": result(version)}),
            ),
        );
        assert_eq!((run.code, run.stdout), (0, Value::Null), "{version}");
        // RemovePodSandbox: CNI_NETNS="" and no prevResult.
        let mut env = containerd("DEL");
        env[2] = ("CNI_NETNS", "");
        let run = plugin(&env, conf(version, &agent.socket, json!({})));
        assert_eq!((run.code, run.stdout), (0, Value::Null), "{version}");
        assert_eq!(
            agent.requests(),
            vec![request("DEL", NETNS), request("DEL", "")]
        );
    }
}

#[test]
fn check_sends_the_prev_result_as_an_attachment() {
    for version in ["1.0.0", "1.1.0"] {
        let agent = Agent::start(vec![Answer::Line(DONE.into())]);
        let run = plugin(
            &containerd("CHECK"),
            conf(
                version,
                &agent.socket,
                json!({"prevResult": result(version)}),
            ),
        );
        assert_eq!((run.code, run.stdout), (0, Value::Null), "{version}");
        let mut want = request("CHECK", NETNS);
        let mut attachment: Value =
            serde_json::from_str::<Value>(&added()).unwrap()["attachment"].clone();
        if version == "1.0.0" {
            // 1.0.0 results carry no MTU, so the attachment read back has none.
            attachment["host"].as_object_mut().unwrap().remove("mtu");
            attachment["pod"].as_object_mut().unwrap().remove("mtu");
        }
        want["prev_result"] = attachment;
        assert_eq!(agent.requests(), vec![want]);
    }
}

#[test]
fn check_without_prev_result_is_an_invalid_config() {
    let agent = Agent::start(vec![]);
    let run = plugin(
        &containerd("CHECK"),
        conf("1.0.0", &agent.socket, json!({})),
    );
    assert_eq!(
        (run.code, run.stdout),
        (
            1,
            json!({"cniVersion": "1.0.0", "code": 7,
                   "msg": "network configuration: CHECK needs prevResult (the result of the ADD)"})
        )
    );
    assert_eq!(agent.requests(), Vec::<Value>::new());
}

#[test]
fn status_and_gc_in_1_1_0() {
    let agent = Agent::start(vec![Answer::Line(DONE.into()), Answer::Line(DONE.into())]);
    let run = plugin(
        &[("CNI_COMMAND", "STATUS"), ("CNI_PATH", "/opt/cni/bin")],
        conf("1.1.0", &agent.socket, json!({})),
    );
    assert_eq!((run.code, run.stdout), (0, Value::Null));
    let run = plugin(
        &[("CNI_COMMAND", "GC")],
        conf(
            "1.1.0",
            &agent.socket,
            json!({"cni.dev/valid-attachments": [{"containerID": ID, "ifname": "eth0"}, {"containerID": "b2", "ifname": "net1"}]}),
        ),
    );
    assert_eq!((run.code, run.stdout), (0, Value::Null));
    let bare = |command: &str| json!({"command": command, "container_id": "", "netns": "", "ifname": "", "network": "ovn", "mtu": 1400});
    let mut gc = bare("GC");
    gc["valid_attachments"] =
        json!([{"container_id": ID, "ifname": "eth0"}, {"container_id": "b2", "ifname": "net1"}]);
    assert_eq!(agent.requests(), vec![bare("STATUS"), gc]);
}

#[test]
fn status_and_gc_do_not_exist_in_1_0_0_and_gc_needs_its_list() {
    let agent = Agent::start(vec![]);
    for command in ["STATUS", "GC"] {
        let run = plugin(
            &[("CNI_COMMAND", command)],
            conf("1.0.0", &agent.socket, json!({})),
        );
        assert_eq!(
            (run.code, run.stdout),
            (
                1,
                json!({"cniVersion": "1.0.0", "code": 1,
                       "msg": format!("{command} is not a command of cniVersion 1.0.0 (it is one of 1.1.0 and later)")})
            )
        );
    }
    let run = plugin(
        &[("CNI_COMMAND", "GC")],
        conf("1.1.0", &agent.socket, json!({})),
    );
    assert_eq!(
        (run.code, run.stdout),
        (
            1,
            json!({"cniVersion": "1.1.0", "code": 7,
                   "msg": "network configuration: GC needs cni.dev/valid-attachments (without it every attachment would be removed)"})
        )
    );
    assert_eq!(agent.requests(), Vec::<Value>::new());
}

#[test]
fn environment_errors_name_the_variables() {
    let agent = Agent::start(vec![]);
    let stdin = conf("1.1.0", &agent.socket, json!({}));
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", ID)],
            "CNI_NETNS and CNI_IFNAME are not set (ADD needs CNI_CONTAINERID, CNI_NETNS and CNI_IFNAME)",
        ),
        (
            vec![("CNI_CONTAINERID", ID)],
            "CNI_COMMAND is not set (ADD, DEL, CHECK, STATUS, GC or VERSION)",
        ),
        (
            vec![("CNI_COMMAND", "UPDATE")],
            r#"CNI_COMMAND="UPDATE": unknown command (ADD, DEL, CHECK, STATUS, GC or VERSION)"#,
        ),
        (
            {
                let mut env = containerd("ADD");
                env[5] = ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME");
                env
            },
            r#"CNI_ARGS: "K8S_POD_NAME" is not KEY=VALUE"#,
        ),
    ];
    for (env, msg) in cases {
        // Without CNI_COMMAND the binary is not a plugin unless asked (`ovnkit cni`).
        let args: &[&str] = if env.iter().any(|(k, _)| *k == "CNI_COMMAND") {
            &[]
        } else {
            &["cni"]
        };
        let run = plugin_with(args, &env, stdin.clone());
        assert_eq!(
            (run.code, run.stdout),
            (1, json!({"cniVersion": "1.1.0", "code": 4, "msg": msg}))
        );
    }
    assert_eq!(agent.requests(), Vec::<Value>::new());
}

#[test]
fn configuration_errors() {
    let agent = Agent::start(vec![]);
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (
            b"{\"cniVersion\":".to_vec(),
            json!({"cniVersion": "1.0.0", "code": 6,
                   "msg": "network configuration on stdin is not JSON: EOF while parsing a value at line 1 column 14"}),
        ),
        (
            conf("0.4.0", &agent.socket, json!({})),
            json!({"cniVersion": "1.0.0", "code": 1,
                   "msg": "network configuration: cniVersion \"0.4.0\" is not supported (supported: 1.0.0, 1.1.0)"}),
        ),
        (
            conf("1.1.0", &agent.socket, json!({"timeoutSeconds": "60"})),
            json!({"cniVersion": "1.1.0", "code": 7,
                   "msg": "network configuration: timeoutSeconds must be an integer, not a string"}),
        ),
        (
            {
                let mut big = conf("1.1.0", &agent.socket, json!({}));
                big.resize(MAX_MESSAGE + 4096, b' ');
                big
            },
            json!({"cniVersion": "1.0.0", "code": 5,
                   "msg": "network configuration on stdin is over 1048576 bytes (read 1048577)"}),
        ),
    ];
    for (stdin, want) in cases {
        let run = plugin(&containerd("ADD"), stdin);
        assert_eq!((run.code, run.stdout), (1, want));
    }
    assert_eq!(agent.requests(), Vec::<Value>::new());
}

/// A socket path in a directory that exists, with nothing listening.
fn nobody() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    (dir, socket)
}

#[test]
fn agent_down_is_try_again_later_for_add_and_not_available_for_status() {
    let (_dir, socket) = nobody();
    let unreachable = |code: u32, version: &str| {
        json!({"cniVersion": version, "code": code,
               "msg": format!("cannot reach the ovnkit agent at {}: No such file or directory (os error 2)", socket.display()),
               "details": "tried for 2s; is the ovnkit agent running on this node?"})
    };
    let run = plugin(&containerd("ADD"), conf("1.0.0", &socket, json!({})));
    assert_eq!((run.code, run.stdout), (1, unreachable(11, "1.0.0")));
    let run = plugin(
        &[("CNI_COMMAND", "STATUS")],
        conf("1.1.0", &socket, json!({})),
    );
    assert_eq!((run.code, run.stdout), (1, unreachable(50, "1.1.0")));
}

#[test]
fn del_succeeds_when_the_agent_is_down() {
    let (_dir, socket) = nobody();
    let run = plugin(&containerd("DEL"), conf("1.0.0", &socket, json!({})));
    assert_eq!((run.code, run.stdout), (0, Value::Null));
    assert_eq!(
        run.stderr,
        format!(
            "ovnkit cni: DEL of {ID} (eth0): the agent at {} is unreachable (No such file or directory (os error 2)); \
             reporting success, the agent releases the attachment when it starts\n",
            socket.display()
        )
    );
}

#[test]
fn a_slow_agent_times_out() {
    let agent = Agent::start(vec![Answer::Silent, Answer::Silent]);
    for command in ["ADD", "DEL"] {
        let run = plugin(
            &containerd(command),
            conf("1.1.0", &agent.socket, json!({"timeoutSeconds": 1})),
        );
        assert_eq!(
            (run.code, run.stdout),
            (
                1,
                json!({"cniVersion": "1.1.0", "code": 11,
                       "msg": format!("the ovnkit agent at {} did not answer {command} within 1s (timeoutSeconds)", agent.socket.display())})
            )
        );
    }
    assert_eq!(
        agent.requests(),
        vec![request("ADD", NETNS), request("DEL", NETNS)]
    );
}

#[test]
fn bad_replies() {
    let mut oversized = vec![b' '; MAX_MESSAGE + 1];
    oversized.push(b'\n');
    let cases = vec![
        (
            Answer::Line("{\"reply\":\"maybe\"}".into()),
            6,
            "the reply of the ovnkit agent at {} cannot be decoded: unknown variant `maybe`, expected one of `added`, `done`, `failed` at line 1 column 16",
        ),
        (
            Answer::Line("not json".into()),
            6,
            "the reply of the ovnkit agent at {} cannot be decoded: expected ident at line 1 column 2",
        ),
        (
            Answer::Raw(oversized),
            5,
            "the reply of the ovnkit agent at {} is over 1048576 bytes",
        ),
        (
            Answer::Close,
            5,
            "the ovnkit agent at {} closed the connection without a reply",
        ),
        (
            Answer::Raw(b"{\"reply\":".to_vec()),
            5,
            "the ovnkit agent at {} closed the connection in the middle of its reply",
        ),
        (
            Answer::Line(DONE.into()),
            6,
            "the ovnkit agent at {} answered ADD with done instead of the attachment",
        ),
    ];
    let n = cases.len();
    let (answers, wants): (Vec<_>, Vec<_>) = cases
        .into_iter()
        .map(|(answer, code, msg)| (answer, (code, msg)))
        .unzip();
    let agent = Agent::start(answers);
    for (code, msg) in wants {
        let run = plugin(&containerd("ADD"), conf("1.0.0", &agent.socket, json!({})));
        let msg = msg.replace("{}", &agent.socket.display().to_string());
        assert_eq!(
            (run.code, run.stdout),
            (1, json!({"cniVersion": "1.0.0", "code": code, "msg": msg}))
        );
    }
    assert_eq!(agent.requests(), vec![request("ADD", NETNS); n]);
}

#[test]
fn a_del_answered_with_an_attachment_is_a_decode_failure() {
    let agent = Agent::start(vec![Answer::Line(added())]);
    let run = plugin(&containerd("DEL"), conf("1.0.0", &agent.socket, json!({})));
    assert_eq!(
        (run.code, run.stdout),
        (
            1,
            json!({"cniVersion": "1.0.0", "code": 6,
                   "msg": format!("the ovnkit agent at {} answered DEL with an attachment instead of done", agent.socket.display())})
        )
    );
    assert_eq!(agent.requests(), vec![request("DEL", NETNS)]);
}

#[test]
fn the_agents_failure_is_passed_through() {
    let failed = json!({"reply": "failed", "code": 3, "msg": "pod default/pod-a has no port", "details": "the controller has not annotated it yet"});
    let agent = Agent::start(vec![
        Answer::Line(failed.to_string()),
        Answer::Line(
            json!({"reply": "failed", "code": 51, "msg": "br-int is missing"}).to_string(),
        ),
    ]);
    let run = plugin(
        &containerd("CHECK"),
        conf(
            "1.1.0",
            &agent.socket,
            json!({"prevResult": result("1.1.0")}),
        ),
    );
    assert_eq!(
        (run.code, run.stdout),
        (
            1,
            json!({"cniVersion": "1.1.0", "code": 3, "msg": "pod default/pod-a has no port",
                   "details": "the controller has not annotated it yet"})
        )
    );
    let run = plugin(
        &[("CNI_COMMAND", "STATUS")],
        conf("1.1.0", &agent.socket, json!({})),
    );
    assert_eq!(
        (run.code, run.stdout),
        (
            1,
            json!({"cniVersion": "1.1.0", "code": 51, "msg": "br-int is missing"})
        )
    );
    assert_eq!(agent.requests().len(), 2);
}

#[test]
fn the_cni_subcommand_is_the_same_plugin() {
    let agent = Agent::start(vec![Answer::Line(added())]);
    let run = plugin_with(
        &["cni"],
        &containerd("ADD"),
        conf("1.0.0", &agent.socket, json!({})),
    );
    assert_eq!((run.code, run.stdout), (0, result("1.0.0")));
    assert_eq!(agent.requests(), vec![request("ADD", NETNS)]);
}

#[test]
fn without_cni_command_no_arguments_is_a_usage_error() {
    let run = plugin(&[], "");
    assert_eq!((run.code, run.stdout), (2, Value::Null));
    assert!(run.stderr.contains("Usage: ovnkit"), "{}", run.stderr);
}

#[test]
fn an_agent_that_accepts_no_connection_is_try_again_later() {
    // A listener that never accepts, its backlog filled by connections from threads left
    // behind: one more connect blocks in the kernel until the plugin gives up.
    let (_dir, socket) = nobody();
    let listener = UnixListener::bind(&socket).unwrap();
    let (tx, rx) = mpsc::channel();
    for _ in 0..5000 {
        let (socket, tx) = (socket.clone(), tx.clone());
        std::thread::spawn(move || {
            let held = std::os::unix::net::UnixStream::connect(socket);
            let _ = tx.send(());
            std::thread::sleep(Duration::from_secs(60));
            drop(held);
        });
        // Stop filling once connects take long: the backlog is full.
        if rx.recv_timeout(Duration::from_millis(200)).is_err() {
            break;
        }
    }
    let run = plugin(&containerd("ADD"), conf("1.0.0", &socket, json!({})));
    assert_eq!(
        (run.code, run.stdout),
        (
            1,
            json!({"cniVersion": "1.0.0", "code": 11,
                   "msg": format!("cannot reach the ovnkit agent at {}: the agent accepts no connection (its backlog is full)", socket.display()),
                   "details": "tried for 2s; is the ovnkit agent running on this node?"})
        )
    );
    drop(listener);
}
