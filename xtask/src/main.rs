//! The project's two commands, runnable on a fresh Debian machine as root:
//!
//! - `cargo xtask sandbox`: installs what is missing (OVN/OVS, containerd, runc, the CNI
//!   plugins, busybox for the local images, protoc), builds `ovnkit`, runs
//!   `ovnkit sandbox up` on the default manifests (a 3-node lab, the controller, an agent and
//!   containerd per node, pods through CRI), prints the report and tears everything down; its
//!   exit code is the report's verdict. Arguments after `sandbox` go to `ovnkit sandbox up`.
//! - `cargo xtask test`: installs OVN/OVS when missing, then runs `cargo fmt --check`, clippy with
//!   `-D warnings` (`incompatible_msrv` included), the release checks of [`release`], the doc
//!   build with warnings denied, the README's library example (`sdk_quickstart`) and every test
//!   (the real-OVN ones included).
//!
//! `cargo xtask install` only does the install step; `cargo xtask package` only the release
//! checks that `test` also runs (dependencies' `rust-version`s, `cargo package`);
//! `cargo xtask tour` runs the lab tour example (the testbed alone, without the plugin).

use std::env;
use std::path::Path;
use std::process::{Command, ExitCode};

mod release;

/// The Debian packages the lab needs: the testbed's list, the one source of it.
fn packages() -> Vec<&'static str> {
    ovn_testbed::PACKAGES.split_whitespace().collect()
}

/// One binary of each package, to tell whether it is installed (a test checks that every package
/// of [`packages`] has one).
const PROBES: &[(&str, &str)] = &[
    ("openvswitch-switch", "ovs-vswitchd"),
    ("openvswitch-switch", "ovsdb-server"),
    ("ovn-central", "ovn-northd"),
    ("ovn-host", "ovn-controller"),
    ("iputils-ping", "ping"),
    ("ethtool", "ethtool"),
    ("iproute2", "ip"),
    ("nftables", "nft"),
    ("containerd", "containerd"),
    ("runc", "runc"),
    ("containernetworking-plugins", "/usr/lib/cni/ptp"),
    ("busybox-static", "busybox"),
    ("protobuf-compiler", "protoc"),
    ("bind9-dnsutils", "dig"),
];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("install") => install(),
        Some("sandbox") => install().and_then(|()| sandbox(&args[1..])),
        Some("tour") => install().and_then(|()| tour(&args[1..])),
        Some("test") => install().and_then(|()| test()),
        Some("package") => release_checks(&cargo()),
        _ => {
            eprintln!("usage: cargo xtask <sandbox|test|install|package|tour>");
            eprintln!(
                "  sandbox  install what is missing, run the plugin on a 3-node lab: report, verdict"
            );
            eprintln!("  test     install OVN/OVS if missing, then fmt, clippy, all tests, docs");
            eprintln!("  install  only install OVN/OVS (Debian packages) if missing");
            eprintln!("  package  only the rust-version and cargo package checks of `test`");
            eprintln!("  tour     install OVN/OVS if missing, run the lab tour example");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn on_path(binary: &str) -> bool {
    if binary.starts_with('/') {
        return std::path::Path::new(binary).is_file();
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|dir| dir.join(binary).is_file())
}

fn missing_packages() -> Vec<&'static str> {
    let mut missing: Vec<&str> = PROBES
        .iter()
        .filter(|(_, binary)| !on_path(binary))
        .map(|(package, _)| *package)
        .collect();
    missing.dedup();
    missing
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs the lab's Debian packages when any is missing. Starts no daemon: init scripts are
/// kept from running by `policy-rc.d` (created if absent), because the lab starts its own.
fn install() -> Result<(), String> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let list = ovn_testbed::PACKAGES;
    if !is_root() {
        return Err(format!(
            "OVN/OVS is not installed (missing: {}). As root, run:\n  \
             apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
             --no-install-recommends {list}",
            missing.join(", ")
        ));
    }
    println!(
        "xtask: installing Debian packages: {list} (missing: {})",
        missing.join(", ")
    );
    let policy = Path::new("/usr/sbin/policy-rc.d");
    if !policy.exists() {
        println!(
            "xtask: writing {} so that package init scripts start no daemon",
            policy.display()
        );
        std::fs::write(policy, "#!/bin/sh\nexit 101\n")
            .map_err(|e| format!("writing {}: {e}", policy.display()))?;
        run(Command::new("chmod").args(["+x", "/usr/sbin/policy-rc.d"]))?;
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages()))?;
    let still = missing_packages();
    if !still.is_empty() {
        return Err(format!(
            "apt-get ran but these are still missing: {}",
            still.join(", ")
        ));
    }
    Ok(())
}

/// `ovnkit sandbox up` on the default manifests (plus `extra` arguments): the report on
/// stdout, everything torn down at the end, the verdict as the result.
fn sandbox(extra: &[String]) -> Result<(), String> {
    if !is_root() {
        return Err(
            "the sandbox creates network namespaces and runs daemons: run it as root".into(),
        );
    }
    run(Command::new(cargo()).args(["build", "--package", "ovnkit", "--bin", "ovnkit"]))?;
    let mut command = Command::new(cargo());
    command
        .args([
            "run",
            "--quiet",
            "--package",
            "ovnkit",
            "--bin",
            "ovnkit",
            "--",
        ])
        .args(["sandbox", "up"])
        .args(extra);
    let shown = format!("{command:?}").replace('"', "");
    println!("xtask: running {shown}");
    let status = command
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    match status.code() {
        Some(0) => {
            println!("xtask: the sandbox passed every check");
            Ok(())
        }
        Some(1) => Err("the sandbox ran, and some checks failed (see the report above)".into()),
        _ => Err(format!("the sandbox could not run ({status})")),
    }
}

fn tour(extra: &[String]) -> Result<(), String> {
    run(Command::new(cargo())
        .args([
            "run",
            "--package",
            "examples",
            "--example",
            "testbed_tour",
            "--",
        ])
        .args(extra))
}

fn test() -> Result<(), String> {
    let cargo = cargo();
    run(Command::new(&cargo).args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new(&cargo).args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    release_checks(&cargo)?;
    run(Command::new(&cargo).args(["test", "--workspace", "--all-features", "--doc"]))?;
    run(Command::new(&cargo)
        .env("RUSTDOCFLAGS", "-D warnings")
        .args(["doc", "--workspace", "--all-features", "--no-deps"]))?;
    // The README's library program, as a user runs it.
    run(Command::new(&cargo).args([
        "run",
        "--package",
        "examples",
        "--example",
        "sdk_quickstart",
    ]))?;
    // The test runs come last, so that their summary closes the output.
    if nextest_available(&cargo) {
        run(Command::new(&cargo).args([
            "nextest",
            "run",
            "--workspace",
            "--all-features",
            "--no-fail-fast",
        ]))?;
    } else {
        run(Command::new(&cargo).args([
            "test",
            "--workspace",
            "--all-features",
            "--lib",
            "--bins",
            "--tests",
            "--examples",
            "--no-fail-fast",
        ]))?;
    }
    println!("xtask: all checks passed");
    Ok(())
}

/// No dependency needs a newer Rust than `rust-version`, and `cargo package` accepts every
/// publishable crate with the files it needs.
fn release_checks(cargo: &str) -> Result<(), String> {
    release::dependency_msrv(cargo)?;
    release::package(cargo)
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn nextest_available(cargo: &str) -> bool {
    Command::new(cargo)
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}").replace('"', "");
    println!("xtask: running {shown}");
    let status = command
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_package_has_a_probe_and_every_probe_a_package() {
        let packages = packages();
        for package in &packages {
            assert!(
                PROBES.iter().any(|(p, _)| p == package),
                "no probe for {package}"
            );
        }
        for (package, binary) in PROBES {
            assert!(
                packages.contains(package),
                "probe {binary} names {package}, which is not in ovn_testbed::PACKAGES"
            );
        }
    }
}
