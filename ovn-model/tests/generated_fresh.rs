//! The checked-in models are exactly what `ovsdb-codegen` makes from the vendored schemas
//! (`codegen/*.ovsschema`), and the schemas installed with OVN and Open vSwitch are compatible
//! with the vendored ones.
//!
//! A hand edit of `src/nb.rs`, `src/sb.rs` or `src/vswitch.rs` fails the first test. To
//! regenerate after a schema or override change: `OVNKIT_BLESS=1 cargo test -p ovnkit-model
//! --test generated_fresh`.

use std::path::Path;

use ovsdb::DatabaseSchema;

/// Vendored schema, override table, generated module, installed schema.
const MODELS: &[(&str, &str, &str, &str)] = &[
    (
        "codegen/ovn-nb.ovsschema",
        "codegen/nb.json",
        "src/nb.rs",
        ovn_testbed::schemas::NB,
    ),
    (
        "codegen/ovn-sb.ovsschema",
        "codegen/sb.json",
        "src/sb.rs",
        ovn_testbed::schemas::SB,
    ),
    (
        "codegen/vswitch.ovsschema",
        "codegen/vswitch.json",
        "src/vswitch.rs",
        ovn_testbed::schemas::VSWITCH,
    ),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn generated_models_match_the_vendored_schemas() {
    let bless = std::env::var("OVNKIT_BLESS").is_ok_and(|v| v == "1");
    for (schema, overrides, out, _) in MODELS {
        let schema_text = std::fs::read_to_string(root().join(schema)).unwrap();
        let overrides_text = std::fs::read_to_string(root().join(overrides)).unwrap();
        let table = ovsdb_codegen::Overrides::from_json_str(&overrides_text).unwrap();
        let fresh = ovsdb_codegen::generate(&schema_text, &table).unwrap();
        let path = root().join(out);
        if bless {
            std::fs::write(&path, &fresh).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current != fresh {
            let line = current
                .lines()
                .zip(fresh.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| current.lines().count().min(fresh.lines().count()));
            panic!(
                "{out} differs from what ovsdb-codegen generates from {schema} (first difference at \
                 line {}); generated files must not be edited by hand: change {overrides} or the \
                 generator and run OVNKIT_BLESS=1 cargo test -p ovnkit-model --test generated_fresh",
                line + 1
            );
        }
    }
}

#[test]
fn installed_schemas_are_compatible_with_the_vendored_ones() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for (vendored, _, _, installed) in MODELS {
        let model = DatabaseSchema::from_slice(&std::fs::read(root().join(vendored)).unwrap())
            .unwrap_or_else(|e| panic!("{vendored}: {e}"));
        let bytes = match std::fs::read(installed) {
            Ok(bytes) => bytes,
            Err(e) => {
                assert!(
                    !ci,
                    "CI=true and {installed} cannot be read ({e}): CI must install OVN/OVS \
                     (cargo xtask install)"
                );
                eprintln!(
                    "SKIPPED: {installed} cannot be read ({e}); install ovn-central, ovn-host and \
                     openvswitch-switch to compare it with {vendored}"
                );
                continue;
            }
        };
        let server =
            DatabaseSchema::from_slice(&bytes).unwrap_or_else(|e| panic!("{installed}: {e}"));
        let report = ovn_model::compat::check(&model, &server);
        assert!(
            report.is_compatible(),
            "{installed} (version {}) lacks what {vendored} (version {}) has: {:?}",
            server.version,
            model.version,
            report.problems
        );
        if model.version != server.version {
            eprintln!(
                "{installed} is version {}, {vendored} {}: {} added tables, {} added columns",
                server.version,
                model.version,
                report.added_tables.len(),
                report.added_columns.len()
            );
        }
    }
}
