//! The `ovsdb-codegen` binary: from a schema file, and (feature `server`) from a live server.

use std::process::Command;

const DEMO: &str = r#"{"name":"Demo","version":"1.0.0","tables":{
    "Bridge":{"isRoot":true,"columns":{"name":{"type":"string"}}}}}"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ovsdb-codegen"))
}

#[test]
fn writes_a_model_from_a_schema_file_with_overrides() {
    let dir = std::env::temp_dir().join(format!("ovsdb-codegen-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let schema = dir.join("demo.ovsschema");
    let overrides = dir.join("overrides.json");
    let out = dir.join("demo.rs");
    std::fs::write(&schema, DEMO).unwrap();
    std::fs::write(
        &overrides,
        r#"{"Bridge.name": {"type": "crate::BridgeName", "codec": "crate::codec::name"}}"#,
    )
    .unwrap();
    let status = bin()
        .arg("--schema")
        .arg(&schema)
        .arg("--overrides")
        .arg(&overrides)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let src = std::fs::read_to_string(&out).unwrap();
    assert!(src.starts_with("// @generated"));
    assert!(src.contains("pub name: crate::BridgeName"));
    // The same input gives the same bytes.
    let again = ovsdb_codegen::generate(
        DEMO,
        &ovsdb_codegen::Overrides::from_json_str(&std::fs::read_to_string(&overrides).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(src, again);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_missing_schema_file_is_an_error_naming_it() {
    let out = bin()
        .args(["--schema", "/nonexistent.ovsschema", "--out", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.ovsschema"));
}

#[cfg(feature = "server")]
#[test]
fn reads_the_schema_from_a_live_server() {
    let Some(lab) = ovn_testbed::Lab::for_test() else {
        return;
    };
    let server = lab
        .start_ovsdb_server(ovn_testbed::OvsdbServerOptions::new(
            ovn_testbed::schemas::NB,
        ))
        .unwrap();
    let out = lab.dir().join("nb.rs");
    let status = bin()
        .args([
            "--server",
            &server.unix_remote(),
            "--db",
            "OVN_Northbound",
            "--out",
        ])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let from_server = std::fs::read_to_string(&out).unwrap();
    let from_file = ovsdb_codegen::generate(
        &std::fs::read_to_string(ovn_testbed::schemas::NB).unwrap(),
        &ovsdb_codegen::Overrides::new(),
    )
    .unwrap();
    // The server writes its schema JSON slightly differently (no checksum, explicit
    // defaults), so only the embedded JSON may differ: every type and impl is the same.
    let code = |src: &str| -> Vec<String> {
        src.lines()
            .filter(|l| !l.starts_with("pub const SCHEMA_JSON"))
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (code(&from_server), code(&from_file));
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(a == b, "generated code differs at line {first:?}");
}
