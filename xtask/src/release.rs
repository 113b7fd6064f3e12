//! Checks that keep the crates publishable and the declared `rust-version` honest:
//!
//! - [`dependency_msrv`]: no package in the lock file declares a `rust-version` above the
//!   workspace's (clippy's `incompatible_msrv` lint covers the std items our own code uses).
//! - [`package`]: `cargo package` accepts every publishable crate, and each crate's file list
//!   has what a published crate needs and nothing it must not carry.

use std::cmp::Ordering;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::run;

/// crates.io refuses crates above this size.
const MAX_CRATE_BYTES: u64 = 10 * 1024 * 1024;

/// `cargo metadata` for the whole lock file (every feature, every platform).
fn metadata(cargo: &str) -> Result<Value, String> {
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--all-features",
            "--locked",
        ])
        .output()
        .map_err(|e| format!("could not start cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
}

/// `1.88`, `1.88.0` as comparable numbers (a missing part is 0).
fn version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.split('.').map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next().unwrap_or(Ok(0)).ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    parts.next().is_none().then_some((major, minor, patch))
}

fn workspace_members(meta: &Value) -> Vec<&Value> {
    let ids: Vec<&str> = meta["workspace_members"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    packages(meta)
        .filter(|p| ids.contains(&p["id"].as_str().unwrap_or_default()))
        .collect()
}

fn packages(meta: &Value) -> impl Iterator<Item = &Value> {
    meta["packages"].as_array().into_iter().flatten()
}

/// The packages of the lock file whose `rust-version` is above `ours`, as `name version
/// (rust-version)`.
fn above<'a>(ours: (u64, u64, u64), packages: impl Iterator<Item = &'a Value>) -> Vec<String> {
    let mut found: Vec<String> = packages
        .filter_map(|p| {
            let declared = p["rust_version"].as_str()?;
            let newer = version(declared).is_none_or(|v| v.cmp(&ours) == Ordering::Greater);
            newer.then(|| {
                format!(
                    "{} {} (rust-version {declared})",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                )
            })
        })
        .collect();
    found.sort();
    found
}

/// Fails when a package of the lock file declares a `rust-version` above the workspace's.
pub(crate) fn dependency_msrv(cargo: &str) -> Result<(), String> {
    let meta = metadata(cargo)?;
    let members = workspace_members(&meta);
    let ours: Vec<&str> = members
        .iter()
        .filter_map(|p| p["rust_version"].as_str())
        .collect();
    let Some(first) = ours.first() else {
        return Err("no workspace member declares a rust-version".into());
    };
    if let Some(other) = ours.iter().find(|v| *v != first) {
        return Err(format!(
            "workspace members declare different rust-versions: {first} and {other}"
        ));
    }
    let declared =
        version(first).ok_or_else(|| format!("rust-version {first} is not a version"))?;
    let member_ids: Vec<&Value> = members.iter().map(|p| &p["id"]).collect();
    let dependencies = packages(&meta).filter(|p| !member_ids.contains(&&p["id"]));
    let too_new = above(declared, dependencies);
    if too_new.is_empty() {
        println!(
            "xtask: no dependency in Cargo.lock declares a rust-version above {first} ({} packages)",
            packages(&meta).count()
        );
        Ok(())
    } else {
        Err(format!(
            "dependencies in Cargo.lock need a newer Rust than the workspace's rust-version \
             {first}: {}; raise rust-version or pin them (cargo update -p NAME --precise VERSION)",
            too_new.join(", ")
        ))
    }
}

/// The workspace members `cargo publish` would publish (not `publish = false`), by name.
fn publishable(meta: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = workspace_members(meta)
        .into_iter()
        .filter(|p| !p["publish"].as_array().is_some_and(Vec::is_empty))
        .map(|p| {
            (
                p["name"].as_str().unwrap_or_default().to_owned(),
                p["version"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// What is wrong with a crate's file list (as `cargo package --list` prints it).
fn file_list_problems(files: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for needed in ["Cargo.toml", "Cargo.toml.orig", "README.md", "src/lib.rs"] {
        if !files.contains(&needed) {
            problems.push(format!("{needed} is missing"));
        }
    }
    for file in files {
        let forbidden = file.starts_with("target/")
            || file.split('/').any(|part| part == "target")
            || file.ends_with(".crate")
            || file.starts_with("fuzz/");
        if forbidden {
            problems.push(format!("{file} must not be published"));
        }
    }
    problems
}

/// `cargo package` (without the verify build) for every publishable crate at once, so that
/// crates depending on unpublished workspace crates resolve against the freshly packaged ones;
/// then every crate's file list and size.
pub(crate) fn package(cargo: &str) -> Result<(), String> {
    let meta = metadata(cargo)?;
    let crates = publishable(&meta);
    if crates.is_empty() {
        return Err("no publishable crate in the workspace".into());
    }
    let mut command = Command::new(cargo);
    command.args(["package", "--no-verify", "--locked", "--allow-dirty"]);
    for (name, _) in &crates {
        command.args(["--package", name]);
    }
    run(&mut command)?;

    let target = meta["target_directory"]
        .as_str()
        .ok_or("cargo metadata has no target_directory")?;
    let mut problems = Vec::new();
    for (name, version) in &crates {
        let out = Command::new(cargo)
            .args([
                "package",
                "--list",
                "--locked",
                "--allow-dirty",
                "--package",
            ])
            .arg(name)
            .output()
            .map_err(|e| format!("could not start cargo package --list: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo package --list --package {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let files: Vec<&str> = text.lines().collect();
        problems.extend(
            file_list_problems(&files)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        let archive = Path::new(target)
            .join("package")
            .join(format!("{name}-{version}.crate"));
        match std::fs::metadata(&archive) {
            Ok(m) if m.len() > MAX_CRATE_BYTES => problems.push(format!(
                "{name}: {} is {} bytes, above crates.io's {MAX_CRATE_BYTES}",
                archive.display(),
                m.len()
            )),
            Ok(m) => println!(
                "xtask: {name} {version}: {} files, {} bytes",
                files.len(),
                m.len()
            ),
            Err(e) => problems.push(format!("{name}: {}: {e}", archive.display())),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("packaging problems:\n  {}", problems.join("\n  ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_compare_with_missing_parts_as_zero() {
        assert_eq!(version("1.88"), Some((1, 88, 0)));
        assert_eq!(version("1.85.1"), Some((1, 85, 1)));
        assert_eq!(version("1"), Some((1, 0, 0)));
        assert_eq!(version("1.x"), None);
        assert_eq!(version("1.2.3.4"), None);
        assert!(version("1.88").unwrap() < version("1.88.1").unwrap());
    }

    #[test]
    fn only_dependencies_above_the_msrv_are_reported() {
        let packages = [
            json!({"name": "old", "version": "1.0.0", "rust_version": "1.63"}),
            json!({"name": "same", "version": "2.0.0", "rust_version": "1.88.0"}),
            json!({"name": "none", "version": "0.1.0", "rust_version": null}),
            json!({"name": "new", "version": "3.1.0", "rust_version": "1.89"}),
            json!({"name": "odd", "version": "0.2.0", "rust_version": "next"}),
        ];
        assert_eq!(
            above((1, 88, 0), packages.iter()),
            [
                "new 3.1.0 (rust-version 1.89)",
                "odd 0.2.0 (rust-version next)"
            ]
        );
    }

    #[test]
    fn publish_false_members_are_not_publishable() {
        let meta = json!({
            "workspace_members": ["a", "b", "c"],
            "packages": [
                {"id": "a", "name": "lib-a", "version": "0.1.0", "publish": null},
                {"id": "b", "name": "tool", "version": "0.1.0", "publish": []},
                {"id": "c", "name": "lib-c", "version": "0.2.0", "publish": ["crates-io"]},
                {"id": "d", "name": "dep", "version": "1.0.0", "publish": null}
            ]
        });
        assert_eq!(
            publishable(&meta),
            [
                ("lib-a".to_owned(), "0.1.0".to_owned()),
                ("lib-c".to_owned(), "0.2.0".to_owned())
            ]
        );
    }

    #[test]
    fn a_file_list_without_readme_or_with_build_output_is_refused() {
        let good = ["Cargo.toml", "Cargo.toml.orig", "README.md", "src/lib.rs"];
        assert!(file_list_problems(&good).is_empty());
        let problems = file_list_problems(&[
            "Cargo.toml",
            "Cargo.toml.orig",
            "src/lib.rs",
            "target/debug/x",
        ]);
        assert_eq!(
            problems,
            [
                "README.md is missing",
                "target/debug/x must not be published"
            ]
        );
    }
}
