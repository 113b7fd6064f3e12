//! The checked-in models are exactly what `ovsdb-codegen` makes from the installed schemas.
//!
//! A hand edit of `src/nb.rs`, `src/sb.rs` or `src/vswitch.rs` fails this test. To regenerate
//! after a schema or override change: `OVNKIT_BLESS=1 cargo test -p ovnkit-model --test generated_fresh`.

use std::path::Path;

const MODELS: &[(&str, &str, &str)] = &[
    (ovn_testbed::schemas::NB, "codegen/nb.json", "src/nb.rs"),
    (ovn_testbed::schemas::SB, "codegen/sb.json", "src/sb.rs"),
    (
        ovn_testbed::schemas::VSWITCH,
        "codegen/vswitch.json",
        "src/vswitch.rs",
    ),
];

#[test]
fn generated_models_match_the_installed_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let bless = std::env::var("OVNKIT_BLESS").is_ok_and(|v| v == "1");
    for (schema, overrides, out) in MODELS {
        let Ok(schema_text) = std::fs::read_to_string(schema) else {
            assert!(
                !ci,
                "{schema} is missing: CI must install OVN/OVS (cargo xtask install)"
            );
            eprintln!("skipping: {schema} is not installed");
            return;
        };
        let overrides_text = std::fs::read_to_string(root.join(overrides)).unwrap();
        let table = ovsdb_codegen::Overrides::from_json_str(&overrides_text).unwrap();
        let fresh = ovsdb_codegen::generate(&schema_text, &table).unwrap();
        let path = root.join(out);
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
