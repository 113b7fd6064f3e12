//! `ovn-trace --detailed` output -> a [`Trace`]: the sections a packet went through (a
//! datapath's ingress or egress pipeline, a connection-tracking fork), the logical flows that
//! matched in each, and where it ended: sent out of a port, or dropped at a stage.
//!
//! The text is what `ovn-trace` prints, which this module treats as untrusted input: any line
//! it does not know is skipped, a stage line that does not parse is kept as an action line, and
//! nothing panics (a fuzz target checks that).

/// One logical flow that matched: `4. ls_out_acl (northd.c:6543): <match>, priority 2000, uuid 4bf45acc`
/// and the actions printed under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// The table number in its pipeline.
    pub table: u32,
    /// The stage's name (`ls_in_acl`, `lr_in_ip_routing`, ...).
    pub name: String,
    /// The flow's match.
    pub match_: String,
    /// The flow's priority.
    pub priority: u32,
    /// The first hex digits of the southbound logical flow's UUID.
    pub uuid: String,
    /// The actions and comments printed under the flow, trimmed.
    pub actions: Vec<String>,
}

impl Stage {
    /// Whether the flow drops the packet (`drop;`, or a commit that marks the connection
    /// blocked, which is how a stateful ACL drops an established flow).
    #[must_use]
    pub fn drops(&self) -> bool {
        self.actions
            .iter()
            .any(|a| a == "drop;" || a.contains("ct_mark.blocked = 1"))
    }
}

/// What a section is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    /// A datapath's ingress pipeline: `ingress(dp="ovn-default", inport="default.a")`.
    Ingress {
        /// The datapath (logical switch or router).
        datapath: String,
        /// The port the packet entered by.
        inport: String,
    },
    /// A datapath's egress pipeline.
    Egress {
        /// The datapath.
        datapath: String,
        /// The port the packet entered by.
        inport: String,
        /// The port it leaves by.
        outport: String,
    },
    /// What follows a connection-tracking action: `ct_next(ct_state=new|trk)`,
    /// `ct_lb_mark /* default (use --ct to customize) */`, ...
    Conntrack {
        /// The header as printed.
        header: String,
    },
}

/// A section: a header and the flows that matched under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What it is.
    pub kind: SectionKind,
    /// The flows, in order.
    pub stages: Vec<Stage>,
}

/// How a trace ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Sent out of a port: `/* output to "default.b", type "" */` as the last output. `type`
    /// is the port's type (`""` for a VIF, `patch`, `localnet`, ...).
    Output {
        /// The port.
        port: String,
        /// Its type.
        port_type: String,
    },
    /// Dropped by the last flow that matched (index into the sections and stages).
    Dropped {
        /// The section.
        section: usize,
        /// The stage in it.
        stage: usize,
    },
    /// A stage matched nothing (`no match (implicit drop)`).
    NoMatch {
        /// The section.
        section: usize,
        /// The stage's name.
        stage: String,
    },
    /// The trace ended without an output or a drop that this parser recognises.
    Unknown,
}

/// A parsed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// The microflow as `ovn-trace` read it (the `# ...` line), without the `#`.
    pub flow: String,
    /// The sections, in order.
    pub sections: Vec<Section>,
    /// How it ended.
    pub end: End,
}

impl Trace {
    /// The stage `end` points at, if it is a drop.
    #[must_use]
    pub fn dropping_stage(&self) -> Option<&Stage> {
        match self.end {
            End::Dropped { section, stage } => self.sections.get(section)?.stages.get(stage),
            _ => None,
        }
    }
}

/// Parses `ovn-trace --detailed` output.
#[must_use]
pub fn parse(text: &str) -> Trace {
    let mut flow = String::new();
    let mut sections: Vec<Section> = Vec::new();
    let mut last_output: Option<(String, String)> = None;
    let mut no_match: Option<(usize, String)> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.chars().all(|c| c == '-') {
            continue;
        }
        if let Some(f) = line.strip_prefix('#') {
            if flow.is_empty() {
                f.trim().clone_into(&mut flow);
            }
            continue;
        }
        if let Some(kind) = section_header(line) {
            sections.push(Section {
                kind,
                stages: Vec::new(),
            });
            continue;
        }
        if let Some(stage) = stage_line(line) {
            if let Some(s) = sections.last_mut() {
                s.stages.push(stage);
            }
            continue;
        }
        if let Some((name, rest)) = no_match_line(line) {
            let _ = rest;
            no_match = Some((sections.len().saturating_sub(1), name));
            continue;
        }
        if let Some(out) = output_comment(line) {
            last_output = Some(out);
        }
        if let Some(stage) = sections.last_mut().and_then(|s| s.stages.last_mut()) {
            stage.actions.push(line.to_owned());
        }
    }
    let end = ending(&sections, last_output, no_match);
    Trace {
        flow,
        sections,
        end,
    }
}

/// How the trace ended: the last section's last stage decides.
fn ending(
    sections: &[Section],
    last_output: Option<(String, String)>,
    no_match: Option<(usize, String)>,
) -> End {
    if let Some((section, stage)) = no_match
        && section + 1 >= sections.len()
    {
        return End::NoMatch { section, stage };
    }
    let Some((si, section)) = sections.iter().enumerate().next_back() else {
        return End::Unknown;
    };
    if let Some((ti, stage)) = section.stages.iter().enumerate().next_back() {
        if stage.drops() {
            return End::Dropped {
                section: si,
                stage: ti,
            };
        }
        if let Some((port, port_type)) = stage.actions.iter().rev().find_map(|a| output_comment(a))
        {
            return End::Output { port, port_type };
        }
    }
    match last_output {
        Some((port, port_type)) if port_type != "patch" => End::Output { port, port_type },
        _ => End::Unknown,
    }
}

/// `ingress(dp="X", inport="Y")`, `egress(dp="X", inport="Y", outport="Z")`, `ct_next(...)`,
/// `ct_lb...`.
fn section_header(line: &str) -> Option<SectionKind> {
    if let Some(args) = line
        .strip_prefix("ingress(")
        .and_then(|l| l.strip_suffix(')'))
    {
        return Some(SectionKind::Ingress {
            datapath: quoted_arg(args, "dp")?,
            inport: quoted_arg(args, "inport")?,
        });
    }
    if let Some(args) = line
        .strip_prefix("egress(")
        .and_then(|l| l.strip_suffix(')'))
    {
        return Some(SectionKind::Egress {
            datapath: quoted_arg(args, "dp")?,
            inport: quoted_arg(args, "inport")?,
            outport: quoted_arg(args, "outport")?,
        });
    }
    let ct = line.starts_with("ct_next(")
        || line.starts_with("ct_lb")
        || line.starts_with("ct_dnat")
        || line.starts_with("ct_snat");
    (ct && !line.ends_with(';')).then(|| SectionKind::Conntrack {
        header: line.to_owned(),
    })
}

/// The value of `key="..."` in `args`.
fn quoted_arg(args: &str, key: &str) -> Option<String> {
    let pattern = format!("{key}=\"");
    let at = args.find(&pattern)? + pattern.len();
    let rest = &args[at..];
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

/// `4. ls_out_acl (northd.c:6543): reg0[9] == 1 && (ip4.dst == 10.17.0.0/24), priority 2000, uuid 4bf45acc`
fn stage_line(line: &str) -> Option<Stage> {
    let (table, rest) = line.split_once(". ")?;
    let table: u32 = table.trim().parse().ok()?;
    let (head, rest) = rest.split_once(": ")?;
    let name = head.split_whitespace().next()?.to_owned();
    let (rest, uuid) = rest.rsplit_once(", uuid ")?;
    let (match_, priority) = rest.rsplit_once(", priority ")?;
    Some(Stage {
        table,
        name,
        match_: match_.to_owned(),
        priority: priority.trim().parse().ok()?,
        uuid: uuid.trim().to_owned(),
        actions: Vec::new(),
    })
}

/// `13. lr_in_ip_routing: no match (implicit drop)` -> the stage's name.
fn no_match_line(line: &str) -> Option<(String, &str)> {
    let at = line.find("no match")?;
    let head = line[..at].trim_end().trim_end_matches(':');
    let name = head.split_whitespace().last()?.to_owned();
    Some((name, &line[at..]))
}

/// `/* output to "default.b", type "" */` -> (`default.b`, ``).
fn output_comment(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("/* output to \"")?;
    let (port, rest) = rest.split_once('"')?;
    let port_type = rest
        .split_once("type \"")
        .and_then(|(_, t)| t.split_once('"'))
        .map_or("", |(t, _)| t);
    Some((port.to_owned(), port_type.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packet_to_a_pod_of_the_same_switch_is_output_to_its_port() {
        let t = parse(include_str!("testdata/delivered_new.txt"));
        assert!(t.flow.starts_with("tcp,reg14="), "{}", t.flow);
        assert_eq!(t.sections.len(), 2);
        assert_eq!(
            t.sections[1].kind,
            SectionKind::Egress {
                datapath: "ovn-default".into(),
                inport: "default.a".into(),
                outport: "default.b".into()
            }
        );
        assert_eq!(t.sections[0].stages[1].name, "ls_in_l2_lkup");
        assert_eq!(t.sections[0].stages[1].priority, 50);
        assert_eq!(
            t.sections[0].stages[1].match_,
            "eth.dst == 0a:d7:6c:c1:09:aa"
        );
        assert_eq!(
            t.end,
            End::Output {
                port: "default.b".into(),
                port_type: String::new()
            }
        );
    }

    #[test]
    fn a_new_connection_into_a_private_subnet_is_dropped_by_its_acl() {
        let t = parse(include_str!("testdata/private_new.txt"));
        let names: Vec<String> = t
            .sections
            .iter()
            .map(|s| match &s.kind {
                SectionKind::Ingress { datapath, .. } => format!("in {datapath}"),
                SectionKind::Egress { datapath, .. } => format!("out {datapath}"),
                SectionKind::Conntrack { header } => header.clone(),
            })
            .collect();
        assert_eq!(
            names,
            [
                "in ovn-default",
                "out ovn-default",
                "in ovn-cluster",
                "out ovn-cluster",
                "in web",
                "out web",
                "ct_next(ct_state=new|trk)"
            ]
        );
        let drop = t.dropping_stage().expect("dropped");
        assert_eq!(drop.name, "ls_out_acl");
        assert_eq!(drop.priority, 2000);
        assert_eq!(drop.match_, "reg0[9] == 1 && (ip4.dst == 10.17.0.0/24)");
        assert_eq!(drop.actions, ["drop;"]);
    }

    #[test]
    fn an_established_flow_into_a_private_subnet_is_blocked_by_a_commit() {
        let t = parse(include_str!("testdata/private_est.txt"));
        let drop = t.dropping_stage().expect("dropped");
        assert_eq!(drop.name, "ls_out_acl");
        assert!(drop.actions[0].contains("ct_mark.blocked = 1"));
    }

    #[test]
    fn a_stage_without_a_match_is_an_implicit_drop_and_junk_is_skipped() {
        let text = "# ip,reg14=0x1\n\
            ingress(dp=\"r\", inport=\"p\")\n\
            ---\n\
             0. lr_in_admission (northd.c:1): 1, priority 50, uuid 1234abcd\n\
                next;\n\
            13. lr_in_ip_routing: no match (implicit drop)\n";
        let t = parse(text);
        assert_eq!(
            t.end,
            End::NoMatch {
                section: 0,
                stage: "lr_in_ip_routing".into()
            }
        );
        let junk = parse("ingress(dp=\"x\"\n 1. half: line\n/* output to \"\n\u{0}");
        assert_eq!(junk.end, End::Unknown);
    }
}
