//! Read-only SQL (`POST /v1/{ws}/sql`, `mcp-factory sql`): the seed's
//! ClickHouse-style queries verbatim, per-collection views, joins,
//! isolation between workspaces, the read-only policy and the limits.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, stderr, stdout};

const DEALS: &str = "deals";

async fn crm(s: &Server) {
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "crm"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    let deal = json!({"type": "object", "properties": {"title": {"type": "string"}, "stage": {"type": "string"}, "value": {"type": "number"}}});
    let invoice = json!({"type": "object", "properties": {"customer": {"type": "string"}, "amount": {"type": "number"}, "status": {"type": "string"}, "lines": {"type": "integer"}}});
    for (name, schema) in [
        (DEALS, deal),
        ("invoices", invoice),
        ("contacts", json!({"type": "object"})),
    ] {
        s.ok(
            Method::PUT,
            &format!("/v1/crm--dev/collections/{name}"),
            Some(json!({"schema": schema})),
        )
        .await;
    }
    s.ok(
        Method::POST,
        "/v1/workspaces/crm/promote",
        Some(json!({"from": "crm--dev"})),
    )
    .await;
    let mut ops = Vec::new();
    for (i, (title, stage, value)) in [
        ("Big", "negotiation", 500.0),
        ("Small", "negotiation", 50.5),
        ("Mid", "won", 200.0),
        ("Lost", "lost", 10.0),
    ]
    .iter()
    .enumerate()
    {
        ops.push(json!({"type": "upsert_record", "collection": DEALS, "external_id": format!("d{i}"), "data": {"title": title, "stage": stage, "value": value}}));
    }
    for (i, (customer, amount, status)) in [
        ("acme", 100.0, "open"),
        ("acme", 50.0, "open"),
        ("globex", 70.0, "open"),
        ("acme", 999.0, "paid"),
    ]
    .iter()
    .enumerate()
    {
        ops.push(json!({"type": "upsert_record", "collection": "invoices", "external_id": format!("i{i}"), "data": {"customer": customer, "amount": amount, "status": status, "lines": 2}}));
    }
    ops.push(json!({"type": "upsert_record", "collection": "contacts", "external_id": "c_001", "data": {"name": "Jane Doe"}}));
    ops.push(json!({"type": "upsert_relationship", "rel_type": "owns", "source_collection": "contacts", "source_id": "c_001", "target_collection": DEALS, "target_id": "d0"}));
    ops.push(json!({"type": "upsert_relationship", "rel_type": "owns", "source_collection": "contacts", "source_id": "c_001", "target_collection": DEALS, "target_id": "d2"}));
    s.ok(
        Method::POST,
        "/v1/crm/batch",
        Some(json!({"operations": ops})),
    )
    .await;
    // A deleted deal that must not show up where `deleted = false`.
    s.ok(Method::DELETE, "/v1/crm/records/deals/d3", None).await;
}

async fn sql(s: &Server, ws: &str, token: &str, query: &str) -> (StatusCode, Value) {
    s.call(
        Method::POST,
        &format!("/v1/{ws}/sql"),
        Some(token),
        Some(json!({"query": query})),
    )
    .await
}

async fn rows(s: &Server, query: &str) -> Vec<Vec<Value>> {
    let (st, v) = sql(s, "crm", &s.admin, query).await;
    assert_eq!(st, StatusCode::OK, "{query}\n{v}");
    serde_json::from_value(v["rows"].clone()).unwrap()
}

#[tokio::test]
async fn the_seed_queries_run_verbatim() {
    let s = Server::start();
    crm(&s).await;
    // Discovery pattern, step 3.
    let r = rows(&s, "SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'contacts' AND deleted = false LIMIT 10").await;
    assert_eq!(r.len(), 1);
    let (_, full) = sql(&s, "crm", &s.admin, "SELECT * FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'contacts' AND deleted = false LIMIT 10").await;
    assert_eq!(full["columns"][0], "id");
    assert!(full["columns"].as_array().unwrap().contains(&json!("data")));
    // Filter + sort.
    let r = rows(&s, "SELECT data.title.:String as deal, CAST(data.value, 'Float64') as value FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'deals' AND data.stage.:String = 'negotiation' AND deleted = false ORDER BY value DESC LIMIT 20").await;
    assert_eq!(
        r,
        vec![
            vec![json!("Big"), json!(500.0)],
            vec![json!("Small"), json!(50.5)]
        ]
    );
    // Aggregate.
    let mut r = rows(&s, "SELECT data.stage.:String as stage, sum(CAST(data.value, 'Float64')) as pipeline FROM records FINAL WHERE workspace_id = {workspace_id:String} AND collection = 'deals' AND deleted = false GROUP BY stage").await;
    r.sort_by_key(|row| row[0].as_str().unwrap().to_string());
    assert_eq!(
        r,
        vec![
            vec![json!("negotiation"), json!(550.5)],
            vec![json!("won"), json!(200.0)]
        ],
        "the deleted 'lost' deal is excluded"
    );
}

#[tokio::test]
async fn views_joins_params_and_the_cli() {
    let s = Server::start();
    crm(&s).await;
    let r = rows(&s, "SELECT customer, sum(amount) FROM invoices WHERE status = 'open' GROUP BY customer ORDER BY customer").await;
    assert_eq!(
        r,
        vec![
            vec![json!("acme"), json!(150.0)],
            vec![json!("globex"), json!(70.0)]
        ]
    );
    // Columns are typed from the schema.
    let r = rows(
        &s,
        "SELECT typeof(amount), typeof(lines), typeof(customer) FROM invoices LIMIT 1",
    )
    .await;
    assert_eq!(
        r,
        vec![vec![json!("real"), json!("integer"), json!("text")]]
    );
    // Records joined through relationships.
    let r = rows(
        &s,
        "SELECT c.data->>'$.name', d.data->>'$.title' FROM relationships r \
         JOIN records c ON c.id = r.source_id JOIN records d ON d.id = r.target_id \
         WHERE r.rel_type = 'owns' ORDER BY 2",
    )
    .await;
    assert_eq!(
        r,
        vec![
            vec![json!("Jane Doe"), json!("Big")],
            vec![json!("Jane Doe"), json!("Mid")]
        ]
    );
    let r = rows(
        &s,
        "SELECT count(*) FROM deals d JOIN relationships r ON r.target_id = d.id",
    )
    .await;
    assert_eq!(r, vec![vec![json!(2)]]);
    // {name:Type} parameters from the request.
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/sql",
            Some(&s.admin),
            Some(json!({"query": "SELECT title FROM deals WHERE value > {min:Float64} ORDER BY title", "params": {"min": 100}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["rows"], json!([["Big"], ["Mid"]]));
    let (st, v) = sql(&s, "crm", &s.admin, "SELECT {nope:String}").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("{nope:String}"),
        "{v}"
    );
    // Other tables.
    assert_eq!(
        rows(&s, "SELECT id, kind FROM workspaces").await,
        vec![vec![json!("crm"), json!("production")]]
    );
    assert_eq!(
        rows(&s, "SELECT count(*) FROM collections").await,
        vec![vec![json!(3)]]
    );
    let ops = rows(
        &s,
        "SELECT operation, count(*) FROM operations_log GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert!(
        ops.contains(&vec![json!("create_record"), json!(9)]),
        "{ops:?}"
    );

    // The CLI prints a table, or the REST body with --json.
    let o = s.cli_in(
        &[
            "sql",
            "--workspace",
            "crm",
            "SELECT customer, sum(amount) AS total FROM invoices GROUP BY customer",
        ],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("globex") && stdout(&o).contains("2 rows"),
        "{}",
        stdout(&o)
    );
    let o = s.cli_in(
        &["--json", "sql", "--workspace", "crm", "SELECT 1 AS one"],
        None,
    );
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["rows"], json!([[1]]));
    assert_eq!(v["truncated"], false);
}

#[tokio::test]
async fn a_workspace_never_sees_another_workspaces_rows() {
    let s = Server::start();
    crm(&s).await;
    s.setup("other", "secrets", json!({"type": "object"})).await;
    let b = s
        .ok(
            Method::PUT,
            "/v1/other/records/secrets",
            Some(json!({"external_id": "s1", "data": {"code": "TOPSECRET"}})),
        )
        .await;
    let bid = b["id"].as_str().unwrap();
    let a_token = s
        .token(
            "crm-reader",
            json!([{"scope": {"workspaces": ["crm"]}, "permissions": ["read:records"]}]),
        )
        .await;
    for q in [
        format!("SELECT * FROM records WHERE id = '{bid}'"),
        "SELECT * FROM records WHERE workspace_id = 'other'".to_string(),
        "SELECT * FROM records WHERE collection = 'secrets'".to_string(),
        "SELECT * FROM records WHERE data LIKE '%TOPSECRET%'".to_string(),
        format!(
            "SELECT * FROM records WHERE id IN (SELECT id FROM records WHERE workspace_id = 'other' OR id = '{bid}')"
        ),
        "SELECT * FROM workspaces WHERE id = 'other'".to_string(),
        "SELECT (SELECT count(*) FROM records WHERE workspace_id = 'other') AS n".to_string(),
        "SELECT * FROM secrets".to_string(),
    ] {
        let (st, v) = sql(&s, "crm", &a_token, &q).await;
        let text = v.to_string();
        assert!(
            !text.contains("TOPSECRET") && !text.contains(bid),
            "{q} leaked: {text}"
        );
        if st == StatusCode::OK {
            let n = v["rows"].as_array().unwrap();
            assert!(n.is_empty() || n == &vec![json!([0])], "{q}: {v}");
        }
    }
    // The workspace parameter is always the caller's, whatever is sent.
    let (st, v) = s
        .call(
            Method::POST,
            "/v1/crm/sql",
            Some(&a_token),
            Some(json!({"query": "SELECT count(*) FROM records WHERE workspace_id = {workspace_id:String} AND collection = 'secrets'", "params": {"workspace_id": "other"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["rows"], json!([[0]]));
    // And the token cannot query B's workspace at all.
    let (st, v) = sql(&s, "other", &a_token, "SELECT * FROM records").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(!v.to_string().contains("TOPSECRET"));
    // A token limited to one collection sees only it.
    let deals_only = s.token("deals", json!([{"scope": {"workspaces": ["crm"], "collections": ["deals"]}, "permissions": ["read:records"]}])).await;
    let (_, v) = sql(
        &s,
        "crm",
        &deals_only,
        "SELECT DISTINCT collection FROM records",
    )
    .await;
    assert_eq!(v["rows"], json!([["deals"]]));
    let (_, v) = sql(&s, "crm", &deals_only, "SELECT count(*) FROM relationships").await;
    assert_eq!(
        v["rows"],
        json!([[0]]),
        "links to other collections are hidden"
    );
    let (st, _) = sql(&s, "crm", &deals_only, "SELECT * FROM invoices").await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "no view for a collection outside the grants"
    );
}

#[tokio::test]
async fn only_one_select_and_every_refusal_names_what_it_refused() {
    let s = Server::start_with(&["--sql-timeout-ms", "700"]);
    crm(&s).await;
    let before = rows(&s, "SELECT count(*) FROM records").await;
    for (q, named) in [
        ("INSERT INTO records (id) VALUES ('x')", "INSERT"),
        ("UPDATE records SET deleted = 1", "UPDATE"),
        ("DELETE FROM records", "DELETE"),
        ("WITH x AS (SELECT 1) DELETE FROM records", "DELETE"),
        ("CREATE TABLE t(x)", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("DROP TABLE records", "DROP TABLE"),
        ("ALTER TABLE records RENAME TO r2", "ALTER TABLE"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
        ("DETACH DATABASE x", "DETACH"),
        ("PRAGMA table_info(records)", "PRAGMA"),
        ("PRAGMA writable_schema = 1", "PRAGMA"),
        ("VACUUM", "VACUUM"),
        ("SELECT 1; SELECT 2", "only one statement"),
        ("SELECT 1; DELETE FROM records", "only one statement"),
        ("SELECT load_extension('/tmp/evil.so')", "load_extension()"),
    ] {
        let (st, v) = sql(&s, "crm", &s.admin, q).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(
            msg.contains(named),
            "{q}: message does not name {named}: {msg}"
        );
    }
    assert_eq!(
        rows(&s, "SELECT count(*) FROM records").await,
        before,
        "nothing changed"
    );
    let (st, v) = sql(&s, "crm", &s.admin, "SELEC nonsense").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    // A runaway query is stopped at the time limit with a clear error.
    let t = Instant::now();
    let (st, v) = sql(
        &s,
        "crm",
        &s.admin,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    )
    .await;
    let took = t.elapsed();
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("time limit"),
        "{v}"
    );
    assert!(took < Duration::from_secs(5), "stopped after {took:?}");
    // Rows past 1,000 are cut and flagged.
    let (_, v) = sql(&s, "crm", &s.admin, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500) SELECT x FROM c").await;
    assert_eq!(
        (v["row_count"].as_u64(), v["truncated"].as_bool()),
        (Some(1000), Some(true)),
        "{}",
        v["row_count"]
    );
    let (_, v) = sql(&s, "crm", &s.admin, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT x FROM c").await;
    assert_eq!(
        (v["row_count"].as_u64(), v["truncated"].as_bool()),
        (Some(1000), Some(false))
    );
    assert!(v["elapsed_ms"].as_f64().is_some());
    // A huge string is refused, not built.
    let (st, v) = sql(&s, "crm", &s.admin, "SELECT length(zeroblob(100000000))").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // Still serving.
    assert_eq!(rows(&s, "SELECT 1").await, vec![vec![json!(1)]]);
}

#[tokio::test]
async fn collection_and_id_constraints_are_pushed_down_to_the_store() {
    let s = Server::start();
    crm(&s).await;
    // 9 records in all: 4 deals, 4 invoices, 1 contact.
    let scanned = |v: &Value| v["rows_scanned"].as_u64().unwrap();
    let (_, all) = sql(&s, "crm", &s.admin, "SELECT count(*) FROM records").await;
    assert_eq!(scanned(&all), 9);
    let (_, one) = sql(
        &s,
        "crm",
        &s.admin,
        "SELECT count(*) FROM records WHERE collection = 'contacts'",
    )
    .await;
    assert_eq!(one["rows"], json!([[1]]));
    assert_eq!(scanned(&one), 1, "only the collection's key range is read");
    let (_, view) = sql(&s, "crm", &s.admin, "SELECT count(*) FROM invoices").await;
    assert_eq!(scanned(&view), 4, "views push their collection down too");
    let id = rows(
        &s,
        "SELECT id FROM records WHERE collection = 'deals' LIMIT 1",
    )
    .await[0][0]
        .as_str()
        .map(|i| format!("'{i}'"))
        .unwrap();
    let (_, by_id) = sql(
        &s,
        "crm",
        &s.admin,
        &format!("SELECT collection FROM records WHERE id = {id}"),
    )
    .await;
    assert_eq!(by_id["rows"], json!([["deals"]]));
    assert!(
        scanned(&by_id) <= 1,
        "a lookup by id is a point read: {}",
        scanned(&by_id)
    );
    // A case-insensitive comparison is not an exact key: SQLite decides.
    let (_, nocase) = sql(
        &s,
        "crm",
        &s.admin,
        "SELECT count(*) FROM records WHERE collection = 'CONTACTS' COLLATE NOCASE",
    )
    .await;
    assert_eq!(nocase["rows"], json!([[1]]), "{nocase}");
}

/// `data ->> '…'` read by the table (hidden columns, grouping without a
/// sort) answers exactly what SQLite's own expression answers: values,
/// types, groups and distinct values, over data built to tell them apart.
/// `(data) ->> …` is the same expression in a spelling left to SQLite.
#[tokio::test]
async fn extracts_and_groups_read_by_the_table_equal_sqlites_own() {
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "x"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/x/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    // Untyped first, so that any data goes in; typed below for the view.
    s.ok(
        Method::PUT,
        "/v1/x--dev/collections/mixed",
        Some(json!({"schema": {"type": "object"}})),
    )
    .await;
    let values = [
        json!(1),
        json!(1.0),
        json!(1.5),
        json!(-0.0),
        json!("1"),
        json!("12abc"),
        json!(true),
        json!(false),
        json!(null),
        json!("a"),
        json!("a\"b\\c\u{e9}\n"),
        json!(9_007_199_254_740_993_i64),
        json!(18_446_744_073_709_551_615_u64),
        json!(-9_223_372_036_854_775_808_i64),
        json!(1e300),
        json!({"k": [1, {"z": "y"}]}),
        json!([1, "two"]),
        json!(""),
    ];
    let mut ops = Vec::new();
    for (i, v) in values.iter().enumerate() {
        // `v` under several keys, one nested and one with a space, and a
        // second record with the same value (groups of two).
        for copy in 0..2 {
            ops.push(json!({"type": "upsert_record", "collection": "mixed",
                "external_id": format!("r{i}-{copy}"),
                "data": {"v": v, "n": {"deep": v}, "sp ace": v, "i": i % 3, "t": if copy == 0 {"x"} else {"y"}}}));
        }
    }
    ops.push(json!({"type": "upsert_record", "collection": "mixed", "external_id": "none", "data": {"other": 1}}));
    s.ok(
        Method::POST,
        "/v1/x--dev/batch",
        Some(json!({"operations": ops})),
    )
    .await;
    s.ok(Method::DELETE, "/v1/x--dev/records/mixed/r0-1", None)
        .await;
    let q = |sql: String| {
        let s = &s;
        async move {
            let (st, v) = sql_of(s, &sql).await;
            assert_eq!(st, StatusCode::OK, "{sql}\n{v}");
            v["rows"].clone()
        }
    };
    let from = "FROM records WHERE collection = 'mixed'";
    for path in [
        "$.v",
        "v",
        "$.n.deep",
        "$.\"sp ace\"",
        "$.\"n\".deep",
        "$.missing",
    ] {
        for form in [
            "{e}, typeof({e})".to_string(),
            "CAST({e} AS REAL), CAST({e} AS INTEGER)".to_string(),
        ] {
            let fast = form.replace("{e}", &format!("data->>'{path}'"));
            let slow = form.replace("{e}", &format!("(data)->>'{path}'"));
            let a = q(format!("SELECT id, {fast} {from} ORDER BY id")).await;
            let b = q(format!("SELECT id, {slow} {from} ORDER BY id")).await;
            assert_eq!(a, b, "{fast}");
            assert_eq!(a.as_array().map(Vec::len), Some(values.len() * 2 + 1));
        }
        // Grouped by the table vs sorted by SQLite; then several keys,
        // kept columns of every kind, the deleted flag pushed down. (Which
        // row of a group a bare column shows is SQLite's choice, and 1 and
        // 1.0 are one group: only what does not depend on it is compared.)
        for shape in [
            "SELECT min(typeof({e})), max(typeof({e})), min(quote({e})), max(quote({e})), count(*) {from} GROUP BY {e}",
            "SELECT count(*) FROM (SELECT DISTINCT {e} {from})",
            "SELECT max(quote({e})), data->>'$.t', count(*), min(id), max(data), sum(version) {from} AND deleted = 0 GROUP BY {e}, data->>'$.t'",
            "SELECT max(quote({e})), collection, deleted, count(*) {from} AND deleted = 1 GROUP BY {e}, collection, deleted",
            "SELECT max(quote({e})), count(*) FROM records GROUP BY {e}, workspace_id",
            // Comparisons convert as the expression's (lack of) affinity says.
            "SELECT id {from} AND {e} = '1'",
            "SELECT id {from} AND {e} = 1",
            "SELECT id {from} AND {e} > '10'",
            "SELECT id {from} AND {e} IN ('a', 1, 1.5, '02')",
        ] {
            let shape = shape.replace("{from}", from);
            let fast = shape.replace("{e}", &format!("data->>'{path}'"));
            let slow = shape
                .replace("{e}", &format!("(data)->>'{path}'"))
                .replace("data->>'$.t'", "(data)->>'$.t'");
            let (a, b) = (q(fast.clone()).await, q(slow).await);
            let filtered = fast.contains("AND data->>");
            assert!(
                filtered || !a.as_array().expect("rows").is_empty(),
                "{fast}"
            );
            assert_eq!(sorted_rows(a), sorted_rows(b), "{fast}");
        }
    }
    // Groups come out in the order SQLite's sorter gives them: LIMIT
    // picks the same ones.
    for path in ["$.v", "$.n.deep", "$.t"] {
        let a = q(format!(
            "SELECT max(quote(data->>'{path}')), count(*) {from} GROUP BY data->>'{path}' LIMIT 7"
        ))
        .await;
        let b = q(format!("SELECT max(quote((data)->>'{path}')), count(*) {from} GROUP BY (data)->>'{path}' LIMIT 7")).await;
        assert_eq!(a, b, "{path}");
    }
    // Where `data` is not `records.data` (a CTE, a subquery, a view), or an
    // outer `records` could capture the name, the query runs as written.
    for sql in [
        "WITH x AS (SELECT * FROM records WHERE collection = 'mixed') SELECT {e}, count(*) FROM x GROUP BY 1",
        "SELECT id FROM (SELECT * FROM records) WHERE {e} = 'x'",
        "SELECT {e} FROM mixed",
        "SELECT count(*) FROM records WHERE collection = 'mixed' AND id IN (SELECT {e} FROM mixed)",
        "SELECT id, (SELECT {e} FROM (SELECT '{\"t\":\"zz\"}' AS data)) FROM records",
    ] {
        let a = q(sql.replace("{e}", "data->>'$.t'")).await;
        let b = q(sql.replace("{e}", "(data)->>'$.t'")).await;
        assert_eq!(a, b, "{sql}");
    }
    // SQLite's OR optimisation scans once per branch and drops rows whose
    // rowid it saw: rowids are the records' own, not positions in a scan.
    let all = q(format!("SELECT count(*) {from}")).await;
    let id = q(format!("SELECT id {from} ORDER BY id LIMIT 1 OFFSET 5")).await;
    let or = q(format!(
        "SELECT count(*) FROM records WHERE id = '{}' OR collection = 'mixed'",
        id[0][0].as_str().expect("id")
    ))
    .await;
    assert_eq!(or, all);
    // 1, 1.0 and true are one group in SQLite; "1" is another; null and
    // a missing key are one.
    let g = q(format!(
        "SELECT count(*) {from} AND deleted = 0 GROUP BY data->>'$.v' \
         HAVING max(data->>'$.v') = 1 OR max(data->>'$.v') IS NULL ORDER BY 1"
    ))
    .await;
    assert_eq!(g, json!([[3], [5]]), "{g}");

    // Typed view columns read by the table equal the casts they stand for.
    s.ok(
        Method::PUT,
        "/v1/x--dev/collections/mixed",
        Some(json!({"schema": {"type": "object", "properties": {
            "v": {"type": "number"}, "i": {"type": "integer"}, "t": {"type": "string"},
            "n": {"type": "object"}}}})),
    )
    .await;
    let live = "FROM records WHERE collection = 'mixed' AND deleted = 0";
    for (view, expr) in [
        ("v", "CAST((data)->>'$.\"v\"' AS REAL)"),
        ("i", "CAST((data)->>'$.\"i\"' AS INTEGER)"),
        ("t", "(data)->>'$.\"t\"'"),
        ("n", "(data)->'$.\"n\"'"),
    ] {
        let a = q(format!(
            "SELECT id, {view}, typeof({view}) FROM mixed ORDER BY id"
        ))
        .await;
        let b = q(format!(
            "SELECT id, {expr}, typeof({expr}) {live} ORDER BY id"
        ))
        .await;
        assert_eq!(a, b, "{view}");
        let a = q(format!(
            "SELECT {view}, count(*), sum(i) FROM mixed GROUP BY 1 ORDER BY 1"
        ))
        .await;
        let b = q(format!("SELECT {expr}, count(*), sum(CAST((data)->>'$.i' AS INTEGER)) {live} GROUP BY 1 ORDER BY 1")).await;
        assert_eq!(a, b, "GROUP BY {view} ORDER BY");
        let a = q(format!(
            "SELECT max(quote({view})), count(*), sum(i) FROM mixed GROUP BY {view}"
        ))
        .await;
        let b = q(format!("SELECT max(quote({expr})), count(*), sum(CAST((data)->>'$.i' AS INTEGER)) {live} GROUP BY {expr}")).await;
        assert_eq!(sorted_rows(a), sorted_rows(b), "GROUP BY {view}");
    }
    // A query the rewrite would break runs as written.
    let r = q("SELECT count(*) FROM (SELECT metadata AS data FROM relationships) WHERE data->>'$.a' IS NULL".into()).await;
    assert_eq!(r, json!([[0]]));
}

/// A result's rows, each as JSON text, sorted (for results whose order SQL
/// leaves open).
fn sorted_rows(v: Value) -> Vec<String> {
    let mut rows: Vec<String> = v
        .as_array()
        .expect("rows")
        .iter()
        .map(Value::to_string)
        .collect();
    rows.sort();
    rows
}

async fn sql_of(s: &Server, query: &str) -> (StatusCode, Value) {
    sql(s, "x--dev", &s.admin, query).await
}
