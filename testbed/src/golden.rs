//! Golden files for the planners' test suites: [`check`] compares what a test rendered (a
//! plan's review text, say) with the file checked in beside the test, or rewrites the file
//! when the test runs with `OVNKIT_BLESS=1`, for a person to review the diff.

use std::path::Path;

/// The environment variable that rewrites golden files instead of comparing them.
pub const BLESS: &str = "OVNKIT_BLESS";

/// Compares `actual` with the file `dir/name.txt`, or writes it there when [`BLESS`] is `1`.
///
/// # Panics
/// When the file differs from `actual` or is missing (the message says how to regenerate
/// it), or cannot be written while blessing.
pub fn check(dir: &Path, name: &str, actual: &str) {
    let path = dir.join(format!("{name}.txt"));
    if std::env::var(BLESS).is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with {BLESS}=1", path.display()));
    assert_eq!(
        actual,
        expected,
        "{name} differs from {} ({BLESS}=1 regenerates it; review the diff)",
        path.display()
    );
}
