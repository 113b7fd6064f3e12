//! Fuzzes the `ovn-trace --detailed` output parser (`ovnkit_kube::trace::parse`): whatever the
//! text, it parses without panicking, a drop points at a stage that exists and drops, and every
//! stage has a name without spaces.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ovnkit_kube::trace::parse::{End, parse};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let trace = parse(&text);
    if let End::Dropped { .. } = trace.end {
        let stage = trace.dropping_stage().expect("a drop names its stage");
        assert!(stage.drops());
    }
    for stage in trace.sections.iter().flat_map(|s| &s.stages) {
        assert!(!stage.name.is_empty() && !stage.name.contains(char::is_whitespace));
    }
});
