//! The CRI lab's two local images, built from the static busybox without any registry.
//!
//! Both are one-layer OCI image archives sharing the same layer (busybox and its applet
//! symlinks, `/etc/passwd`, `/etc/group`, a sticky `/tmp`): [`PAUSE_IMAGE`] runs
//! `/bin/sleep infinity`, [`BUSYBOX_IMAGE`] runs `/bin/sh`. The image name travels in the
//! index's `io.containerd.image.name` annotation, which `ctr images import` reads.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::cmd;
use crate::cri::{BUSYBOX_IMAGE, PAUSE_IMAGE};
use crate::error::{Error, Result};
use crate::lab::{LabShared, find_program};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The OCI name of this machine's architecture.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    fs::write(path, bytes).map_err(io_err("writing", path))
}

fn sha256(path: &Path) -> Result<String> {
    let out = cmd::output(Command::new("sha256sum").arg(path))?;
    out.split_whitespace()
        .next()
        .filter(|h| h.len() == 64)
        .map(str::to_string)
        .ok_or_else(|| Error::Parse {
            what: format!("sha256sum {}", path.display()),
            output: out.clone(),
        })
}

/// A blob in `oci/blobs/sha256`; returns its descriptor's digest and size.
fn put_blob(oci: &Path, bytes: &[u8]) -> Result<(String, usize)> {
    let tmp = oci.join("blob.tmp");
    write(&tmp, bytes)?;
    let hex = sha256(&tmp)?;
    let dst = oci.join("blobs/sha256").join(&hex);
    fs::rename(&tmp, &dst).map_err(io_err("renaming to", &dst))?;
    Ok((format!("sha256:{hex}"), bytes.len()))
}

/// The shared layer: returns the gzipped layer's path and its diff id (the digest of the
/// uncompressed tar).
fn build_layer(dir: &Path) -> Result<(PathBuf, String)> {
    let busybox = find_program("busybox").ok_or_else(|| Error::NotInstalled {
        missing: vec!["busybox".to_string()],
    })?;
    let root = dir.join("rootfs");
    for sub in [
        "bin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "var",
    ] {
        let d = root.join(sub);
        fs::create_dir_all(&d).map_err(io_err("creating", &d))?;
    }
    let bin = root.join("bin/busybox");
    fs::copy(&busybox, &bin).map_err(io_err("copying busybox to", &bin))?;
    let applets = cmd::output(Command::new(&bin).arg("--list"))?;
    for applet in applets.lines().map(str::trim) {
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = root.join("bin").join(applet);
        symlink("busybox", &link).map_err(io_err("linking", &link))?;
    }
    write(&root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    write(&root.join("etc/group"), "root:x:0:\n")?;
    let tmp = root.join("tmp");
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).map_err(io_err("chmod", &tmp))?;
    let layer = dir.join("layer.tar");
    cmd::output(
        Command::new("tar")
            .args([
                "--sort=name",
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--mtime=@0",
                "-C",
            ])
            .arg(&root)
            .arg("-cf")
            .arg(&layer)
            .arg("."),
    )?;
    let diff_id = format!("sha256:{}", sha256(&layer)?);
    cmd::output(Command::new("gzip").args(["-n", "-1", "-f"]).arg(&layer))?;
    Ok((dir.join("layer.tar.gz"), diff_id))
}

/// Builds one image archive `dir/<file>.tar` named `name`, running `cmd`.
fn build_image(
    dir: &Path,
    file: &str,
    name: &str,
    cmd_line: &[&str],
    layer: &Path,
    diff_id: &str,
) -> Result<PathBuf> {
    let oci = dir.join(format!("oci-{file}"));
    let blobs = oci.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
    let layer_bytes = fs::read(layer).map_err(io_err("reading", layer))?;
    let (layer_digest, layer_size) = put_blob(&oci, &layer_bytes)?;
    let config = json!({
        "architecture": oci_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": cmd_line},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let (config_digest, config_size) = put_blob(&oci, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER, "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put_blob(&oci, manifest.to_string().as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MANIFEST,
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"io.containerd.image.name": name},
        }],
    });
    write(&oci.join("index.json"), index.to_string())?;
    write(&oci.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    let archive = dir.join(format!("{file}.tar"));
    cmd::output(
        Command::new("tar")
            .arg("-C")
            .arg(&oci)
            .arg("-cf")
            .arg(&archive)
            .args(["oci-layout", "index.json", "blobs"]),
    )?;
    Ok(archive)
}

impl LabShared {
    /// The lab's image archives, built on first use (once per lab).
    pub(crate) fn cri_images(&self) -> Result<Vec<PathBuf>> {
        let mut images = self.cri_images.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(built) = images.as_ref() {
            return Ok(built.clone());
        }
        let dir = self.dir.join("img");
        let _ = fs::remove_dir_all(&dir);
        let built = build(&dir)?;
        *images = Some(built.clone());
        Ok(built)
    }
}

/// Builds the pause and busybox image archives in `dir` (which must be empty or new);
/// returns their paths.
fn build(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
    let (layer, diff_id) = build_layer(dir)?;
    let pause = build_image(
        dir,
        "pause",
        PAUSE_IMAGE,
        &["/bin/sleep", "infinity"],
        &layer,
        &diff_id,
    )?;
    let busybox = build_image(
        dir,
        "busybox",
        BUSYBOX_IMAGE,
        &["/bin/sh"],
        &layer,
        &diff_id,
    )?;
    // The unpacked tree is only the source of the layer.
    let _ = fs::remove_dir_all(dir.join("rootfs"));
    Ok(vec![pause, busybox])
}
