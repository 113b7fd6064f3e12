//! Rows from a server whose schema is not the model's (a newer or older OVN): an unknown enum
//! value, a missing column, an extra column, a column whose type changed, an extra table. A
//! real `ovsdb-server` runs the modified schema; the rows are written and selected through the
//! `ovsdb` client and decoded with the model: nothing panics, no row is lost, every problem is a
//! warning, and writing the odd values back is refused.

use ovn_model::compat::{self, SchemaMismatch};
use ovn_model::nb::{Acl, AclAction, LoadBalancer, LoadBalancerProtocol};
use ovn_testbed::{Lab, OvsdbServerOptions};
use ovsdb::client::{ConnectConfig, connect};
use ovsdb::table::DecodeProblem;
use ovsdb::{DatabaseSchema, Datum, EncodeError, Insert, Row, Select, Table, Transaction};

/// The installed NB schema, changed the way a future OVN might change it.
fn modified_nb_schema() -> serde_json::Value {
    let text = std::fs::read_to_string(ovn_testbed::schemas::NB).expect("NB schema installed");
    let mut s: serde_json::Value = serde_json::from_str(&text).unwrap();
    s["version"] = "99.0.0".into();
    let lb = &mut s["tables"]["Load_Balancer"]["columns"];
    lb["protocol"]["type"]["key"]["enum"] =
        serde_json::json!(["set", ["tcp", "udp", "sctp", "quic"]]);
    lb.as_object_mut().unwrap().remove("selection_fields");
    lb["future_knob"] = serde_json::json!({"type": "string"});
    s["tables"]["ACL"]["columns"]["label"] = serde_json::json!({"type": "string"});
    s["tables"]["Future_Table"] =
        serde_json::json!({"columns": {"x": {"type": "integer"}}, "isRoot": true});
    s
}

#[test]
fn rows_from_a_different_schema_decode_with_warnings_and_none_is_lost() {
    let Some(lab) = Lab::for_test() else { return };
    let schema_json = modified_nb_schema();
    let path = lab.dir().join("nb-future.ovsschema");
    std::fs::write(&path, schema_json.to_string()).unwrap();
    let server = lab
        .start_ovsdb_server(OvsdbServerOptions::new(&path))
        .expect("server starts");
    let server_schema = DatabaseSchema::from_value(&schema_json).unwrap();

    // The runtime schema check tolerates what was added and reports what the model misses.
    let report = compat::check(ovn_model::nb::schema(), &server_schema);
    assert_eq!(report.added_tables, ["Future_Table"]);
    assert_eq!(
        report.added_columns,
        [("Load_Balancer".to_owned(), "future_knob".to_owned())]
    );
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert!(report.problems.iter().any(|p| matches!(p,
        SchemaMismatch::MissingColumn { table, column, .. } if table == "Load_Balancer" && column == "selection_fields")));
    assert!(report.problems.iter().any(|p| matches!(p,
        SchemaMismatch::ColumnType { table, column, .. } if table == "ACL" && column == "label")));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let rows = rt.block_on(async {
        let (driver, client, _updates) = connect(&ConnectConfig::new(server.unix_remote()))
            .await
            .unwrap();
        tokio::spawn(driver);
        let mut txn = Transaction::new("OVN_Northbound");
        for (name, proto) in [("lb-quic", "quic"), ("lb-tcp", "tcp")] {
            txn.push(Insert::new(
                "Load_Balancer",
                Row::new()
                    .with("name", name)
                    .with("protocol", Datum::set([proto]))
                    .with("future_knob", "on")
                    .with("vips", Datum::map([("10.0.0.1:80", "10.0.0.2:80")])),
            ));
        }
        // ACL is not a root table: a switch must refer to it or the server drops it.
        let acl = ovsdb::NamedUuid::new("acl").unwrap();
        txn.push(
            Insert::new(
                "ACL",
                Row::new()
                    .with("label", "not-a-number")
                    .with("priority", 10)
                    .with("direction", "to-lport")
                    .with("match", "ip4")
                    .with("action", "allow-related"),
            )
            .uuid_name(acl.clone()),
        );
        txn.push(Insert::new(
            "Logical_Switch",
            Row::new()
                .with("name", "sw")
                .with("acls", Datum::set([acl])),
        ));
        client
            .transact_validated(&server_schema, &txn)
            .await
            .expect("insert");
        let mut read = Transaction::new("OVN_Northbound");
        let lbs = read.push(Select::new("Load_Balancer"));
        let acls = read.push(Select::new("ACL"));
        let mut out = client
            .transact_validated(&server_schema, &read)
            .await
            .expect("select");
        (out.take_rows(&lbs).unwrap(), out.take_rows(&acls).unwrap())
    });

    let (lb_rows, acl_rows) = rows;
    let mut lbs: Vec<(LoadBalancer, Vec<ovsdb::DecodeWarning>)> = lb_rows
        .iter()
        .map(|r| LoadBalancer::from_row(r.uuid().unwrap(), r))
        .collect();
    lbs.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    assert_eq!(lbs.len(), 2, "no row is lost");
    let (quic, warnings) = &lbs[0];
    assert_eq!(quic.name, "lb-quic");
    assert_eq!(
        quic.protocol,
        Some(LoadBalancerProtocol::Other("quic".into()))
    );
    assert_eq!(
        quic.vips.get("10.0.0.1:80").map(String::as_str),
        Some("10.0.0.2:80")
    );
    assert!(quic.selection_fields.is_empty());
    // The only warning: the column the server does not have. The extra column is ignored.
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        (warnings[0].column, &warnings[0].problem),
        ("selection_fields", &DecodeProblem::Missing)
    );
    assert_eq!(lbs[1].0.protocol, Some(LoadBalancerProtocol::Tcp));

    assert_eq!(acl_rows.len(), 1);
    let (acl, warnings) = Acl::from_row(acl_rows[0].uuid().unwrap(), &acl_rows[0]);
    assert_eq!(
        (acl.label, acl.priority, acl.action),
        (0, 10, AclAction::AllowRelated)
    );
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].column, "label");
    assert!(matches!(
        warnings[0].problem,
        DecodeProblem::AtomType { .. }
    ));

    // Writing is strict: the value the model does not know is refused with table and column.
    let err = quic.to_row().unwrap_err();
    assert!(
        matches!(
            err,
            EncodeError::Constraint {
                table: "Load_Balancer",
                column: "protocol",
                ..
            }
        ),
        "{err}"
    );
    assert!(lbs[1].0.to_row().is_ok());
}
