//! What `deploy_flags.rs` and `deploy_image.rs` share: the `ovnkit` binary, the containers of
//! the manifests that run it, ConfigMap JSON, flag values and what the Dockerfile says.

#![allow(dead_code)] // Each test binary uses its own part of this module.

use std::collections::BTreeSet;
use std::process::Command;

use k8s_openapi::api::core::v1::Container;
use serde_json::Value;

use crate::deploy_common::{Document, Workload, config_map, deploy_dir};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ovnkit");

/// The containers that run the image's binary, with the subcommand and the arguments after
/// it.
pub fn ovnkit_containers<'a>(
    w: &'a Workload<'a>,
    binary: &str,
) -> Vec<(&'a Container, Vec<String>)> {
    w.containers()
        .filter_map(|c| {
            let words: Vec<String> = c
                .command
                .iter()
                .flatten()
                .chain(c.args.iter().flatten())
                .cloned()
                .collect();
            (words.first().map(String::as_str) == Some(binary)).then(|| (c, words[1..].to_vec()))
        })
        .collect()
}

/// The JSON of ConfigMap key `name`/`key` of the manifests.
pub fn config_json(documents: &[Document], namespace: &str, name: &str, key: &str) -> Value {
    let map = config_map(documents, namespace, name);
    let text = map
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .unwrap_or_else(|| panic!("no key {key} in ConfigMap {name}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("ConfigMap {name} {key}: not JSON: {e}"))
}

/// The agent's `--flag=value`.
pub fn agent_flag(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("--{flag}=")))
        .map(str::to_owned)
}

/// The default of a flag of a subcommand (`[default: ...]` in its help).
pub fn default_of(subcommand: &str, flag: &str) -> String {
    let out = Command::new(BIN)
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("--{flag} ")))
        .unwrap_or_else(|| panic!("no --{flag}"));
    line.split("[default: ")
        .nth(1)
        .and_then(|d| d.strip_suffix(']'))
        .unwrap_or_else(|| panic!("--{flag} has no default"))
        .to_owned()
}

/// What the Dockerfile says about the image.
pub struct Image {
    /// Where the final stage puts the binary.
    pub binary: String,
    /// The packages the final stage installs.
    pub packages: BTreeSet<String>,
    /// The builder's Rust (`1.89`).
    pub rust: String,
}

/// The Dockerfile's instructions per stage (continuation lines joined, comments dropped).
pub fn dockerfile_stages() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).expect("deploy/Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for i in instructions {
        if let Some(from) = i.strip_prefix("FROM ") {
            stages.push((from.trim().to_owned(), Vec::new()));
        } else {
            stages
                .last_mut()
                .expect("instructions after a FROM")
                .1
                .push(i);
        }
    }
    stages
}

pub fn dockerfile() -> Image {
    let stages = dockerfile_stages();
    assert!(stages.len() >= 2, "a multi-stage build");
    let (_, last) = stages.last().unwrap();
    let copy: Vec<&str> = last
        .iter()
        .find_map(|i| i.strip_prefix("COPY --from="))
        .expect("the final stage copies from the builder")
        .split_whitespace()
        .collect();
    let [stage, source, binary] = copy.as_slice() else {
        panic!("COPY --from=STAGE SOURCE DEST, not {copy:?}");
    };
    let (from, builder) = stages
        .iter()
        .find(|(from, _)| from.ends_with(&format!(" AS {stage}")))
        .unwrap_or_else(|| panic!("no stage {stage}"));
    // The builder makes the binary where the final stage takes it.
    let workdir = builder
        .iter()
        .filter_map(|i| i.strip_prefix("WORKDIR "))
        .next_back()
        .expect("the builder's WORKDIR");
    let build = builder
        .iter()
        .find(|i| i.contains("cargo build"))
        .expect("the builder runs cargo build");
    for word in ["--release", "--locked", "-p ovnkit"] {
        assert!(build.contains(word), "{build:?} lacks {word}");
    }
    assert_eq!(
        *source,
        format!("{}/target/release/ovnkit", workdir.trim()),
        "the final stage copies what the builder built"
    );
    if let Some(entry) = last.iter().find_map(|i| i.strip_prefix("ENTRYPOINT ")) {
        let entry: Vec<String> = serde_json::from_str(entry).expect("ENTRYPOINT [..]");
        assert_eq!(entry, [binary.to_string()], "ENTRYPOINT is the binary");
    }
    let rust = from
        .strip_prefix("rust:")
        .and_then(|t| t.split('-').next())
        .expect("a rust:<version>-<debian> builder")
        .to_owned();
    let packages = last
        .iter()
        .filter_map(|i| i.split("apt-get install").nth(1))
        .flat_map(|rest| {
            rest.split("&&")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .filter(|w| !w.starts_with('-'))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    Image {
        binary: binary.to_string(),
        packages,
        rust,
    }
}
