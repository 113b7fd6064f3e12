//! The manifests of `deploy/` against the `ovnkit` binary's flags: every flag a container
//! passes exists in the subcommand's clap definition (the built binary's `--help`), with a
//! value when it takes one, the required ones are all given, and the arguments as Kubernetes
//! expands them (`$(VAR)` from the ConfigMap) parse; the controller's then pass its own checks
//! and it stops only for want of a cluster. The image, the paths and the probes are in
//! `deploy_image.rs`.

mod deploy;
#[path = "../../kube/tests/deploy_common/mod.rs"]
mod deploy_common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use deploy::{BIN, dockerfile, ovnkit_containers};
use deploy_common::{Document, config_map, load, workload, workloads};
use k8s_openapi::api::core::v1::Container;

// ---- the binary's flags ----

/// A subcommand's flags from its `--help`: name -> whether it takes a value; and the
/// required ones (named in the usage line).
fn flags_of(subcommand: &str) -> (BTreeMap<String, bool>, BTreeSet<String>) {
    let out = Command::new(BIN)
        .args([subcommand, "--help"])
        .output()
        .expect("ovnkit runs");
    assert!(out.status.success(), "ovnkit {subcommand} --help failed");
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    let mut flags = BTreeMap::new();
    let mut required = BTreeSet::new();
    for line in help.lines() {
        if let Some(usage) = line.strip_prefix("Usage: ") {
            for w in usage.split_whitespace() {
                if let Some(name) = w.strip_prefix("--") {
                    required.insert(name.to_owned());
                }
            }
            continue;
        }
        // `  -h, --help  Print help`, `      --nb <REMOTES>  The ...`; a description's own
        // lines are indented further.
        let indent = line.len() - line.trim_start().len();
        if indent > 6 {
            continue;
        }
        let mut words = line
            .split_whitespace()
            .skip_while(|w| w.starts_with('-') && !w.starts_with("--"));
        if let Some(flag) = words.next().and_then(|w| w.strip_prefix("--")) {
            let takes_value = words.next().is_some_and(|w| w.starts_with('<'));
            flags.insert(flag.trim_end_matches(',').to_owned(), takes_value);
        }
    }
    assert!(flags.contains_key("help"), "no flags read from:\n{help}");
    (flags, required)
}

#[test]
fn help_is_read_as_flags() {
    let (flags, required) = flags_of("agent");
    assert_eq!(flags.get("nb"), Some(&true));
    assert_eq!(flags.get("no-egress"), Some(&false));
    assert!(required.contains("nb"), "{required:?}");
    assert!(!required.contains("mtu"), "{required:?}");
    let (flags, _) = flags_of("controller");
    assert_eq!(flags.get("nb"), Some(&true));
}

/// `text` with every `$(VAR)` replaced from `env`, as the kubelet expands `command` and
/// `args` (`$$` escapes a `$`); a reference to a variable the container does not define is an
/// error.
fn expand(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('(')
            && let Some(end) = r.find(')')
        {
            let name = &r[..end];
            let value = env
                .get(name)
                .ok_or_else(|| format!("$({name}) is not in the container's env"))?;
            out.push_str(value);
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The container's environment as it runs: literal values, ConfigMap keys (from the
/// manifests), and `spec.nodeName` as `node1`.
fn environment(documents: &[Document], namespace: &str, c: &Container) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in c.env.iter().flatten() {
        let value = if let Some(v) = &var.value {
            v.clone()
        } else {
            let from = var
                .value_from
                .as_ref()
                .unwrap_or_else(|| panic!("{}: env {} has no value", c.name, var.name));
            if let Some(key) = &from.config_map_key_ref {
                let map = config_map(documents, namespace, &key.name);
                map.data
                    .as_ref()
                    .and_then(|d| d.get(&key.key))
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: env {}: no key {} in ConfigMap {}",
                            c.name, var.name, key.key, key.name
                        )
                    })
                    .clone()
            } else if from
                .field_ref
                .as_ref()
                .is_some_and(|f| f.field_path == "spec.nodeName")
            {
                "node1".to_owned()
            } else {
                panic!(
                    "{}: env {}: a source this test does not know",
                    c.name, var.name
                );
            }
        };
        env.insert(var.name.clone(), value);
    }
    env
}

#[test]
fn every_flag_in_the_manifests_is_one_of_the_binary() {
    let documents = load();
    let image = dockerfile();
    let mut checked = 0;
    for w in workloads(&documents) {
        for (c, words) in ovnkit_containers(&w, &image.binary) {
            let subcommand = words.first().expect("a subcommand");
            let (flags, required) = flags_of(subcommand);
            let mut given = BTreeSet::new();
            for word in &words[1..] {
                let flag = word
                    .strip_prefix("--")
                    .unwrap_or_else(|| panic!("{} {}: {word:?} is not a --flag", w.what, c.name));
                let (name, value) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (flag, None),
                };
                let takes_value = *flags.get(name).unwrap_or_else(|| {
                    panic!(
                        "{} {}: --{name} is not a flag of `ovnkit {subcommand}` (it has {:?})",
                        w.what,
                        c.name,
                        flags.keys().collect::<Vec<_>>()
                    )
                });
                assert_eq!(
                    takes_value,
                    value.is_some(),
                    "{} {}: --{name} {} a value (write --{name}=VALUE for one)",
                    w.what,
                    c.name,
                    if takes_value { "takes" } else { "takes no" }
                );
                assert!(given.insert(name), "{} {}: --{name} twice", w.what, c.name);
            }
            for name in &required {
                assert!(
                    given.contains(name.as_str()),
                    "{} {}: `ovnkit {subcommand}` needs --{name}",
                    w.what,
                    c.name
                );
            }

            // As the kubelet runs it: the values must parse (clap checks them before it
            // answers --help).
            let env = environment(&documents, w.namespace, c);
            let expanded: Vec<String> = words
                .iter()
                .map(|a| expand(a, &env).unwrap_or_else(|e| panic!("{} {}: {e}", w.what, c.name)))
                .collect();
            let out = Command::new(BIN)
                .args(&expanded)
                .arg("--help")
                .output()
                .expect("ovnkit runs");
            assert!(
                out.status.success(),
                "{} {}: `ovnkit {}` refuses its arguments: {}",
                w.what,
                c.name,
                expanded.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 2, "the controller and the agent");
}

#[test]
fn the_controllers_settings_pass_its_checks_and_it_stops_only_for_want_of_a_cluster() {
    let documents = load();
    let image = dockerfile();
    let w = workload(&documents, "controller");
    let (c, words) = ovnkit_containers(&w, &image.binary)
        .into_iter()
        .next()
        .expect("the controller's container");
    let env = environment(&documents, w.namespace, c);
    let args: Vec<String> = words.iter().map(|a| expand(a, &env).unwrap()).collect();
    // No kubeconfig and not in a cluster: the controller reads its flags, builds and checks its
    // configuration, then fails to find an API server (before it dials the NB).
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args(&args)
        .env_clear()
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("no-such-kubeconfig"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ovnkit runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`ovnkit {}` did not stop without a cluster", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no Kubernetes client configuration"),
        "`ovnkit {}` failed for another reason than the missing cluster: {stderr}",
        args.join(" ")
    );
}
