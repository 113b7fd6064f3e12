//! `ovn-trace` as a library: what OVN's logical pipeline does with one packet, and which ACLs
//! decided it, traced back to the NB rows (and so to the objects whose owner tags they carry).
//!
//! [`parse`] reads `ovn-trace`'s detailed output (pure); [`run`] and [`acl_external_ids`] call
//! `ovn-trace`, `ovn-sbctl` and `ovn-nbctl`. A logical flow made from an ACL carries the
//! ACL's UUID prefix in `external_ids:stage-hint`, which is how a hit is traced to its ACL.
//!
//! ```no_run
//! use ovnkit_kube::trace;
//!
//! let flow = trace::microflow("x.a", ("0a:00:00:00:00:01", "10.16.0.10"),
//!     ("0a:00:00:00:00:02", "10.16.0.11"), "tcp", 80);
//! let t = trace::run("unix:/run/ovn/ovnsb_db.sock", "ovn-default", &flow)?;
//! if let Some(acl) = t.deciding_acl() {
//!     let ids = trace::acl_external_ids("unix:/run/ovn/ovnnb_db.sock",
//!         "unix:/run/ovn/ovnsb_db.sock", acl)?;
//!     println!("{:?} by {:?}", t.verdict(), ids.get("ovnkit.io/object"));
//! }
//! # Ok::<(), trace::TraceError>(())
//! ```

use std::collections::BTreeMap;
use std::process::Command;

/// The difference between a logical flow's priority and the priority of the ACL it was made
/// from (northd adds it).
const ACL_FLOW_OFFSET: i64 = 1000;

/// What happened to the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered to this logical port.
    Output(String),
    /// Dropped (by an ACL or otherwise: no output).
    Drop,
}

/// A logical flow of an ACL stage that matched, made from an ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclHit {
    /// The stage (`ls_out_acl`, `ls_in_acl_after_lb`, ...).
    pub stage: String,
    /// The ACL's priority (the flow's, less northd's offset).
    pub priority: i64,
    /// The flow's match as printed (the ACL's match within northd's guard).
    pub match_: String,
    /// The logical flow's UUID prefix.
    pub flow: String,
    /// The flow's first action (`next;`, `drop;`, `ct_commit { ... };`).
    pub action: String,
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The ACL flows the packet hit, in order.
    pub acls: Vec<AclHit>,
    /// The ports it was output to.
    pub outputs: Vec<String>,
}

impl Trace {
    /// Output to the first port it reached, or drop.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.outputs
            .first()
            .map_or(Verdict::Drop, |p| Verdict::Output(p.clone()))
    }

    /// The last ACL hit: the one that decided (an allow lets the packet on, a drop ends it).
    #[must_use]
    pub fn deciding_acl(&self) -> Option<&AclHit> {
        self.acls.last()
    }
}

/// Why a trace could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// A tool could not run or failed.
    #[error("{command}: {message}")]
    Tool {
        /// The command line.
        command: String,
        /// What it said, or why it did not run.
        message: String,
    },
    /// A tool's output was not what was expected.
    #[error("unexpected output of {command}: {output}")]
    Output {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
}

/// A microflow for a packet from `src` to `dst` (each a MAC and an IP) entering at logical
/// port `inport`, of `protocol` (`tcp`, `udp`, `sctp`) to port `dport`.
#[must_use]
pub fn microflow(
    inport: &str,
    src: (&str, &str),
    dst: (&str, &str),
    protocol: &str,
    dport: u16,
) -> String {
    let family = if src.1.contains(':') { "ip6" } else { "ip4" };
    let ttl = if family == "ip4" {
        "ip.ttl == 64"
    } else {
        "ip.hoplimit == 64"
    };
    format!(
        "inport == \"{inport}\" && eth.src == {} && eth.dst == {} && {family}.src == {} && {family}.dst == {} && {ttl} && {protocol}.src == 40000 && {protocol}.dst == {dport}",
        src.0, dst.0, src.1, dst.1
    )
}

/// Parses `ovn-trace`'s default (detailed) output.
#[must_use]
pub fn parse(text: &str) -> Trace {
    let mut acls = Vec::new();
    let mut outputs = Vec::new();
    let mut pending: Option<AclHit> = None;
    for line in text.lines() {
        let t = line.trim();
        if let Some(hit) = pending.as_mut()
            && hit.action.is_empty()
            && !t.is_empty()
        {
            hit.action = t.to_owned();
            acls.extend(pending.take());
            continue;
        }
        if let Some(rest) = t.strip_prefix("/* output to \"") {
            if let Some((port, _)) = rest.split_once('"') {
                outputs.push(port.to_owned());
            }
            continue;
        }
        if let Some(hit) = flow_line(t) {
            pending = Some(hit);
        }
    }
    Trace { acls, outputs }
}

/// `4. ls_out_acl (northd.c:6470): <match>, priority 3001, uuid 04cf7b39` for ACL stages.
fn flow_line(t: &str) -> Option<AclHit> {
    let (num, rest) = t.split_once(". ")?;
    num.parse::<u32>().ok()?;
    let (stage, rest) = rest.split_once(' ')?;
    if !stage.starts_with("ls_") || !stage.contains("_acl") || stage.contains("_acl_hint") {
        return None;
    }
    let (_, rest) = rest.split_once("): ")?;
    let (rest, flow) = rest.rsplit_once(", uuid ")?;
    let (match_, priority) = rest.rsplit_once(", priority ")?;
    let priority: i64 = priority.trim().parse().ok()?;
    // Flows of ACLs sit at the ACL's priority plus the offset; northd's own flows (replies,
    // defaults) are below it or at 34000 and up.
    if !(ACL_FLOW_OFFSET..ACL_FLOW_OFFSET + 32768).contains(&priority) {
        return None;
    }
    Some(AclHit {
        stage: stage.to_owned(),
        priority: priority - ACL_FLOW_OFFSET,
        match_: match_.to_owned(),
        flow: flow.trim().to_owned(),
        action: String::new(),
    })
}

fn tool(program: &str, args: &[&str]) -> Result<String, TraceError> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| TraceError::Tool {
            command: command.clone(),
            message: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(TraceError::Tool {
            command,
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Traces `microflow` on logical datapath `datapath` with the SB at `sb`, every connection
/// tracking lookup seeing a new connection (`--ct=new`), as the first packet of a
/// connection does.
///
/// # Errors
/// [`TraceError::Tool`] when `ovn-trace` fails (a bad microflow, an unknown datapath).
pub fn run(sb: &str, datapath: &str, microflow: &str) -> Result<Trace, TraceError> {
    let db = format!("--db={sb}");
    let text = tool(
        "ovn-trace",
        &[
            &db, "--ct=new", "--ct=new", "--ct=new", "--ct=new", datapath, microflow,
        ],
    )?;
    Ok(parse(&text))
}

/// The `external_ids` of the ACL `hit` was made from (through the flow's stage hint).
///
/// # Errors
/// [`TraceError`] when a tool fails or the flow names no ACL.
pub fn acl_external_ids(
    nb: &str,
    sb: &str,
    hit: &AclHit,
) -> Result<BTreeMap<String, String>, TraceError> {
    let sb_db = format!("--db={sb}");
    let hint = tool(
        "ovn-sbctl",
        &[
            &sb_db,
            "get",
            "Logical_Flow",
            &hit.flow,
            "external_ids:stage-hint",
        ],
    )?;
    let hint = hint.trim().trim_matches('"').to_owned();
    let nb_db = format!("--db={nb}");
    let args = [
        nb_db.as_str(),
        "--format=json",
        "--columns=external_ids",
        "list",
        "ACL",
        &hint,
    ];
    let json = tool("ovn-nbctl", &args)?;
    let bad = || TraceError::Output {
        command: format!("ovn-nbctl {}", args.join(" ")),
        output: json.clone(),
    };
    let v: serde_json::Value = serde_json::from_str(&json).map_err(|_| bad())?;
    let pairs = v["data"][0][0][1].as_array().ok_or_else(bad)?;
    Ok(pairs
        .iter()
        .filter_map(|p| Some((p[0].as_str()?.to_owned(), p[1].as_str()?.to_owned())))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOWED: &str = r#"# tcp,reg14=0x2,...
ingress(dp="sw", inport="p2")
-----------------------------
 0. ls_in_check_port_sec (northd.c:8432): 1, priority 50, uuid c69252c7
    reg0[15] = check_in_port_sec();
    next;
 7. ls_in_acl_hint (northd.c:6190): ct.new && !ct.est, priority 7, uuid 98be4b18
    reg0[7] = 1;
    next;
 8. ls_in_acl (northd.c:6802): ip && !ct.est, priority 1, uuid 4e66799d
    reg0[1] = 1;
    next;
25. ls_in_l2_lkup (northd.c:9122): eth.dst == 0a:00:00:00:00:01, priority 50, uuid 4f4e5b87
    outport = "p1";
    output;

egress(dp="sw", inport="p2", outport="p1")
------------------------------------------
 4. ls_out_acl (northd.c:6470): reg0[7] == 1 && (outport == @np_a && ip4.src == $np_a_i0_0_4 && tcp.dst == 80), priority 3001, uuid 04cf7b39
    reg0[1] = 1;
    next;
 9. ls_out_apply_port_sec (northd.c:5777): 1, priority 0, uuid 7ff14b31
    output;
    /* output to "p1", type "" */
"#;

    const DROPPED: &str = r#"egress(dp="sw", inport="p2", outport="p1")
------------------------------------------
 3. ls_out_acl_hint (northd.c:6190): ct.new && !ct.est, priority 7, uuid 98be4b18
    reg0[9] = 1;
    next;
 4. ls_out_acl (northd.c:6543): reg0[9] == 1 && (outport == @np_a && ip), priority 3000, uuid b9ddf47e
    drop;
"#;

    #[test]
    fn an_allowed_packet_is_output_and_its_acl_is_the_allow() {
        let t = parse(ALLOWED);
        assert_eq!(t.verdict(), Verdict::Output("p1".into()));
        assert_eq!(
            t.acls,
            [AclHit {
                stage: "ls_out_acl".into(),
                priority: 2001,
                match_:
                    "reg0[7] == 1 && (outport == @np_a && ip4.src == $np_a_i0_0_4 && tcp.dst == 80)"
                        .into(),
                flow: "04cf7b39".into(),
                action: "reg0[1] = 1;".into(),
            }]
        );
    }

    #[test]
    fn a_dropped_packet_names_the_drop() {
        let t = parse(DROPPED);
        assert_eq!(t.verdict(), Verdict::Drop);
        let acl = t.deciding_acl().unwrap();
        assert_eq!((acl.priority, acl.action.as_str()), (2000, "drop;"));
        assert_eq!(acl.flow, "b9ddf47e");
    }

    #[test]
    fn microflows_name_every_field_a_switch_needs() {
        assert_eq!(
            microflow(
                "x.a",
                ("0a:00:00:00:00:01", "10.0.0.1"),
                ("0a:00:00:00:00:02", "10.0.0.2"),
                "udp",
                53
            ),
            r#"inport == "x.a" && eth.src == 0a:00:00:00:00:01 && eth.dst == 0a:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && ip.ttl == 64 && udp.src == 40000 && udp.dst == 53"#
        );
    }
}
