//! Fuzzes the sandbox's reading of the daemons' `/metrics` (`ovnkit::sandbox::metrics`):
//! whatever the text, it parses or names a line that exists; every series parsed has a valid
//! name and sorted, distinct labels; printing the samples again (labels escaped) parses back
//! to the same samples; a histogram's quantile is one of its bounds (or `+Inf`) and grows with
//! the quantile; and the report's figures can be made from any samples.
#![no_main]

use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use ovnkit::sandbox::metrics::{Samples, agent_metrics, controller_metrics, parse};

fn print(samples: &Samples) -> String {
    let mut out = String::from("# TYPE any untyped\n");
    for (series, value) in &samples.0 {
        out.push_str(&series.name);
        if !series.labels.is_empty() {
            let labels: Vec<String> = series
                .labels
                .iter()
                .map(|(k, v)| {
                    let v = v
                        .replace('\\', "\\\\")
                        .replace('"', "\\\"")
                        .replace('\n', "\\n");
                    format!("{k}=\"{v}\"")
                })
                .collect();
            let _ = write!(out, "{{{}}}", labels.join(","));
        }
        let value = if value.is_nan() {
            "NaN".to_owned()
        } else if *value == f64::INFINITY {
            "+Inf".to_owned()
        } else if *value == f64::NEG_INFINITY {
            "-Inf".to_owned()
        } else {
            format!("{value:e}")
        };
        let _ = writeln!(out, " {value}");
    }
    out.push_str("# EOF\n");
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let samples = match parse(&text) {
        Ok(s) => s,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.lines().count(), "{e}");
            assert!(!e.what.is_empty());
            return;
        }
    };
    for series in samples.0.keys() {
        let mut chars = series.name.chars();
        let first = chars.next().expect("a name");
        assert!(first.is_ascii_alphabetic() || first == '_' || first == ':');
        assert!(chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        assert!(series.labels.windows(2).all(|w| w[0].0 < w[1].0));
    }
    let again = parse(&print(&samples)).expect("printed samples parse");
    assert_eq!(again.0.len(), samples.0.len());
    for ((a, x), (b, y)) in samples.0.iter().zip(&again.0) {
        assert_eq!(a, b);
        assert!(x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()) || x == y);
    }
    for series in samples.0.keys() {
        let Some(base) = series.name.strip_suffix("_bucket") else {
            continue;
        };
        let labels: Vec<(&str, &str)> = series
            .labels
            .iter()
            .filter(|(k, _)| k != "le")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let Some(h) = samples.histogram(base, &labels) else {
            continue;
        };
        let mut last = f64::NEG_INFINITY;
        for q in [0.0, 0.5, 0.9, 0.99, 1.0] {
            let Some(v) = h.quantile(q) else {
                assert!(!(h.count > 0.0));
                continue;
            };
            assert!(v == f64::INFINITY || h.buckets.iter().any(|(le, _)| *le == v));
            assert!(v >= last || h.buckets.iter().any(|(_, n)| n.is_nan()));
            last = v;
        }
    }
    let _ = controller_metrics(&samples);
    let _ = agent_metrics("node1", &samples);
});
