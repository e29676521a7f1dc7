//! A model-based test of "who may do what", in the style of redb's fuzzing
//! against a `BTreeMap`: random endpoint configurations, random tokens
//! (collection-scoped, read-only, preview-only, production-only, children,
//! revoked parents) and random operations through three doors — the REST
//! API, the Admin MCP and an endpoint's host imports (the hostile
//! component's raw `store` tool, which claims to be read-only) — each
//! outcome checked against a small reference model of the rules. At the
//! end, every collection holds exactly what the model says.
//!
//! The seed is printed and named in every failure; replay one with
//! `MCP_FACTORY_MODEL_SEED=<seed> cargo test --test all trust_model`.
//! `MCP_FACTORY_MODEL_CASES` sets the number of operations (default 4000).

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Server, build_component, digest};
use crate::custom_components::upload;
use crate::mcp_auth::Rpc;

const WS: &str = "m--dev";
const COLLS: [&str; 3] = ["a", "b", "c"];
const RELS: [&str; 2] = ["r1", "r2"];
const COLL_OPS: [&str; 5] = ["create", "get", "list", "update", "delete"];
const REL_OPS: [&str; 3] = ["create", "list", "delete"];
const PERMS: [&str; 4] = [
    "read:records",
    "write:records",
    "read:relationships",
    "write:relationships",
];

/// SplitMix64: small, seedable, good enough to pick cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }
    /// A non-empty random subset, in `from`'s order.
    fn subset<T: Clone>(&mut self, from: &[T]) -> Vec<T> {
        loop {
            let out: Vec<T> = from.iter().filter(|_| self.chance(50)).cloned().collect();
            if !out.is_empty() {
                return out;
            }
        }
    }
}

/// One grant of a token, as the model reads it.
#[derive(Debug, Clone)]
struct G {
    /// Reaches `m--dev` (names it or `m`, and no environment excludes previews).
    reaches: bool,
    collections: Option<Vec<String>>,
    perms: Vec<String>,
}

#[derive(Debug, Clone)]
struct Token {
    secret: String,
    grants: Vec<G>,
    /// Revoked, or made by a token that was revoked: nothing works.
    dead: bool,
    label: String,
}

impl Token {
    /// The token holds `perm` on the workspace, or on `coll` if given.
    fn can(&self, coll: Option<&str>, perm: &str) -> bool {
        self.grants.iter().any(|g| {
            g.reaches
                && coll.is_none_or(|c| {
                    g.collections
                        .as_ref()
                        .is_none_or(|l| l.iter().any(|x| x == c))
                })
                && g.perms.iter().any(|p| p == perm)
        })
    }
}

/// An endpoint configuration, as the model reads it.
#[derive(Debug, Clone)]
struct E {
    slug: String,
    tools: BTreeMap<String, BTreeSet<String>>,
    rels: BTreeMap<String, BTreeSet<String>>,
    batch: Option<BTreeMap<String, BTreeSet<String>>>,
    sql: bool,
    config: Value,
}

impl E {
    fn random(rng: &mut Rng, slug: String, component: &str) -> E {
        let mut tools = BTreeMap::new();
        let mut rels = BTreeMap::new();
        for c in COLLS {
            if rng.chance(60) {
                let ops: Vec<&str> = rng.subset(&COLL_OPS);
                tools.insert(c.to_string(), ops.iter().map(|s| s.to_string()).collect());
            }
        }
        for r in RELS {
            if rng.chance(50) {
                let ops: Vec<&str> = rng.subset(&REL_OPS);
                rels.insert(r.to_string(), ops.iter().map(|s| s.to_string()).collect());
            }
        }
        let batch = rng.chance(60).then(|| {
            let mut m = BTreeMap::new();
            for c in COLLS {
                if rng.chance(50) {
                    let ops: Vec<&str> = rng.subset(&["create", "update", "delete"]);
                    m.insert(c.to_string(), ops.iter().map(|s| s.to_string()).collect());
                }
            }
            for r in RELS {
                if rng.chance(40) {
                    let ops: Vec<&str> = rng.subset(&["create", "delete"]);
                    m.insert(r.to_string(), ops.iter().map(|s| s.to_string()).collect());
                }
            }
            m
        });
        let sql = rng.chance(50);
        let mut config = json!({
            "component": component,
            "tools": tools.iter().map(|(c, ops)| json!({"collection": c, "operations": ops})).collect::<Vec<_>>(),
            "relationships": rels.iter().map(|(r, ops)| json!({"rel_type": r, "operations": ops})).collect::<Vec<_>>(),
            "sql_query": sql,
        });
        if let Some(b) = &batch {
            config["batch"] = json!({"enabled": true, "operations": b});
        }
        E {
            slug,
            tools,
            rels,
            batch,
            sql,
            config,
        }
    }

    /// The collections the endpoint names (tools and batch keys).
    fn collections(&self) -> BTreeSet<&str> {
        let mut out: BTreeSet<&str> = self.tools.keys().map(String::as_str).collect();
        for k in self.batch.iter().flat_map(|b| b.keys()) {
            if COLLS.contains(&k.as_str()) {
                out.insert(k);
            }
        }
        out
    }

    fn tool(&self, coll: &str, op: &str) -> bool {
        let ops = self.tools.get(coll);
        let has = |o: &str| ops.is_some_and(|s| s.contains(o));
        match op {
            "get" => has("get") || has("update") || has("delete"),
            _ => has(op),
        }
    }

    fn rel(&self, rel: &str, op: &str) -> bool {
        self.rels.get(rel).is_some_and(|s| s.contains(op))
    }

    fn batch(&self, key: &str, op: &str) -> bool {
        self.batch
            .as_ref()
            .is_some_and(|b| b.get(key).is_some_and(|s| s.contains(op)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Door {
    Rest,
    Admin,
    Endpoint(usize),
}

#[derive(Debug, Clone)]
enum Op {
    Create(&'static str),
    Get(&'static str, String),
    List(&'static str),
    Update(&'static str, String),
    Delete(&'static str, String),
    Link(&'static str, (&'static str, String), (&'static str, String)),
    Unlink(String),
    /// A batch upsert: `Some(id)` updates, `None` creates (`"id": null`).
    BatchUpsert(&'static str, Option<String>),
    /// Counts the live records of a collection through SQL.
    Sql(&'static str),
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Ok(Value),
    Denied,
    Unauthenticated,
}

/// The state the model keeps: live records and relationships.
#[derive(Default)]
struct Model {
    records: BTreeMap<&'static str, Vec<String>>,
    /// id → (rel_type, source collection, target collection)
    rels: BTreeMap<String, (&'static str, &'static str, &'static str)>,
}

impl Model {
    /// What the model says the caller may do: `None` for unauthenticated.
    fn allows(&self, t: &Token, door: Door, eps: &[E], op: &Op) -> Option<bool> {
        if t.dead {
            return None;
        }
        let ep = match door {
            Door::Endpoint(i) => Some(&eps[i]),
            _ => None,
        };
        // An endpoint call starts with the client reading the endpoint.
        if ep.is_some() && !t.can(None, "read:records") {
            return Some(false);
        }
        let ends_ok = |e: &E, c: &str| e.collections().contains(c);
        Some(match op {
            Op::Create(c) | Op::List(c) | Op::Get(c, _) | Op::Update(c, _) | Op::Delete(c, _) => {
                let (name, perm) = match op {
                    Op::Create(_) => ("create", "write:records"),
                    Op::Get(..) => ("get", "read:records"),
                    Op::List(_) => ("list", "read:records"),
                    Op::Update(..) => ("update", "write:records"),
                    _ => ("delete", "write:records"),
                };
                t.can(Some(c), perm) && ep.is_none_or(|e| e.tool(c, name))
            }
            Op::Link(r, (ca, _), (cb, _)) => {
                t.can(None, "write:relationships")
                    && t.can(Some(ca), "write:relationships")
                    && t.can(Some(cb), "write:relationships")
                    && ep.is_none_or(|e| e.rel(r, "create") && ends_ok(e, ca) && ends_ok(e, cb))
            }
            Op::Unlink(id) => {
                let (r, ca, cb) = self.rels[id];
                t.can(None, "write:relationships")
                    && t.can(Some(ca), "write:relationships")
                    && t.can(Some(cb), "write:relationships")
                    && ep.is_none_or(|e| e.rel(r, "delete") && ends_ok(e, ca) && ends_ok(e, cb))
            }
            Op::BatchUpsert(c, id) => {
                let name = if id.is_some() { "update" } else { "create" };
                t.can(Some(c), "write:records")
                    && ep.is_none_or(|e| e.batch.is_some() && e.batch(c, name))
            }
            Op::Sql(_) => t.can(None, "read:records") && ep.is_none_or(|e| e.sql),
        })
    }

    /// Whether SQL shows collection `c` to the caller (when it may query).
    fn sql_sees(&self, t: &Token, door: Door, eps: &[E], c: &str) -> bool {
        t.can(Some(c), "read:records")
            && match door {
                // Endpoint SQL reads a collection the endpoint may list or get.
                Door::Endpoint(i) => eps[i]
                    .tools
                    .get(c)
                    .is_some_and(|ops| ops.contains("list") || ops.contains("get")),
                _ => true,
            }
    }

    fn apply(&mut self, op: &Op, ok: &Value) {
        match op {
            Op::Create(c) | Op::BatchUpsert(c, None) => {
                let id = ok["id"]
                    .as_str()
                    .or_else(|| ok["results"][0]["result"]["id"].as_str())
                    .unwrap_or_else(|| panic!("no id in {ok}"));
                self.records.entry(c).or_default().push(id.to_string());
            }
            Op::Delete(c, id) => {
                self.records.entry(c).or_default().retain(|x| x != id);
            }
            Op::Link(r, (ca, _), (cb, _)) => {
                let id = ok["id"].as_str().unwrap_or_else(|| panic!("no id in {ok}"));
                self.rels.insert(id.to_string(), (r, ca, cb));
            }
            Op::Unlink(id) => {
                self.rels.remove(id);
            }
            _ => {}
        }
    }
}

/// Reads a door's answer as allowed / denied / unauthenticated; anything
/// else is a failure of its own.
fn outcome(door: Door, status: StatusCode, body: &Value, ctx: &str) -> Outcome {
    if status == StatusCode::UNAUTHORIZED {
        return Outcome::Unauthenticated;
    }
    if status == StatusCode::FORBIDDEN {
        return Outcome::Denied;
    }
    let forbidden_in_batch = |e: &Value| {
        e["details"]["failed"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x["code"] == "FORBIDDEN"))
    };
    match door {
        Door::Rest => {
            if status.is_success() {
                return Outcome::Ok(body.clone());
            }
            if forbidden_in_batch(&body["error"]) {
                return Outcome::Denied;
            }
        }
        Door::Admin => {
            let r = &body["result"];
            if r["isError"] == false {
                return Outcome::Ok(r["structuredContent"].clone());
            }
            let e = &r["structuredContent"]["error"];
            if e["code"] == "FORBIDDEN" || forbidden_in_batch(e) {
                return Outcome::Denied;
            }
        }
        Door::Endpoint(_) => {
            let c = &body["content"];
            if status.is_success() && c["ok"].is_object() {
                return Outcome::Ok(c["ok"].clone());
            }
            let kind = &c["refused"]["kind"];
            let message = c["refused"]["message"].as_str().unwrap_or("");
            if kind == "denied" || (kind == "invalid" && message.contains("\"FORBIDDEN\"")) {
                return Outcome::Denied;
            }
        }
    }
    panic!("{ctx}: unexpected answer {status}: {body}");
}

struct World<'a> {
    s: &'a Server,
    eps: Vec<E>,
    /// One Admin MCP session per token.
    admin: BTreeMap<String, Rpc<'a>>,
}

impl<'a> World<'a> {
    async fn run(&mut self, t: &Token, door: Door, op: &Op) -> (StatusCode, Value) {
        let s = self.s;
        let tok = Some(t.secret.as_str());
        let sql = |c: &str| {
            format!("SELECT count(*) AS n FROM records WHERE collection = '{c}' AND deleted = 0")
        };
        match door {
            Door::Rest => {
                let rec = |c: &str| format!("/v1/{WS}/records/{c}");
                let (m, path, body) = match op {
                    Op::Create(c) => (Method::PUT, rec(c), Some(json!({"data": {}}))),
                    Op::Get(c, id) => (Method::GET, format!("{}/{id}", rec(c)), None),
                    Op::List(c) => (Method::GET, rec(c), None),
                    Op::Update(c, id) => (
                        Method::PATCH,
                        format!("{}/{id}", rec(c)),
                        Some(json!({"data": {"u": 1}})),
                    ),
                    Op::Delete(c, id) => (Method::DELETE, format!("{}/{id}", rec(c)), None),
                    Op::Link(r, (ca, a), (cb, b)) => (
                        Method::PUT,
                        format!("/v1/{WS}/relationships"),
                        Some(link_body(r, ca, a, cb, b)),
                    ),
                    Op::Unlink(id) => {
                        (Method::DELETE, format!("/v1/{WS}/relationships/{id}"), None)
                    }
                    Op::BatchUpsert(c, id) => (
                        Method::POST,
                        format!("/v1/{WS}/batch"),
                        Some(json!({"operations": [batch_op(c, id.as_deref())]})),
                    ),
                    Op::Sql(c) => (
                        Method::POST,
                        format!("/v1/{WS}/sql"),
                        Some(json!({"query": sql(c)})),
                    ),
                };
                s.call(m, &path, tok, body).await
            }
            Door::Admin => {
                let rpc = self
                    .admin
                    .entry(t.secret.clone())
                    .or_insert_with(|| Rpc::new(s, "/mcp", Some(&t.secret)));
                if rpc.session_id().is_none() {
                    let (st, body) = rpc.initialize().await;
                    if st != StatusCode::OK {
                        return (st, Value::String(body));
                    }
                }
                let rec = |action: &str, c: &str| json!({"action": action, "workspace_id": WS, "collection": c});
                let (tool, args) = match op {
                    Op::Create(c) => ("manage_record", with(rec("upsert", c), json!({"data": {}}))),
                    Op::Get(c, id) => ("manage_record", with(rec("get", c), json!({"id": id}))),
                    Op::List(c) => ("manage_record", rec("query", c)),
                    Op::Update(c, id) => (
                        "manage_record",
                        with(rec("update", c), json!({"id": id, "data": {"u": 1}})),
                    ),
                    Op::Delete(c, id) => {
                        ("manage_record", with(rec("delete", c), json!({"id": id})))
                    }
                    Op::Link(r, (ca, a), (cb, b)) => (
                        "manage_relationship",
                        with(
                            json!({"action": "upsert", "workspace_id": WS}),
                            link_body(r, ca, a, cb, b),
                        ),
                    ),
                    Op::Unlink(id) => (
                        "manage_relationship",
                        json!({"action": "delete", "workspace_id": WS, "id": id}),
                    ),
                    Op::BatchUpsert(c, id) => (
                        "batch_operations",
                        json!({"workspace_id": WS, "operations": [batch_op(c, id.as_deref())]}),
                    ),
                    Op::Sql(c) => ("sql_query", json!({"workspace_id": WS, "query": sql(c)})),
                };
                let (st, body, msg) = rpc.call(tool, args).await;
                if st != StatusCode::OK {
                    return (st, Value::String(body));
                }
                (st, msg)
            }
            Door::Endpoint(i) => {
                let args = match op {
                    Op::Create(c) => {
                        json!({"op": "upsert", "collection": c, "request": {"data": {}}})
                    }
                    Op::Get(c, id) => json!({"op": "get", "collection": c, "id": id}),
                    Op::List(c) => json!({"op": "query", "collection": c}),
                    Op::Update(c, id) => {
                        json!({"op": "update", "collection": c, "id": id, "patch": {"u": 1}})
                    }
                    Op::Delete(c, id) => json!({"op": "delete", "collection": c, "id": id}),
                    Op::Link(r, (ca, a), (cb, b)) => {
                        json!({"op": "link", "request": link_body(r, ca, a, cb, b)})
                    }
                    Op::Unlink(id) => json!({"op": "unlink", "id": id}),
                    Op::BatchUpsert(c, id) => {
                        json!({"op": "batch", "operations": [batch_op(c, id.as_deref())]})
                    }
                    Op::Sql(c) => json!({"op": "sql", "query": sql(c)}),
                };
                let path = format!("/v1/{WS}/endpoints/{}/tools/store", self.eps[i].slug);
                s.call(Method::POST, &path, tok, Some(args)).await
            }
        }
    }
}

fn with(mut a: Value, b: Value) -> Value {
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn link_body(r: &str, ca: &str, a: &str, cb: &str, b: &str) -> Value {
    json!({"rel_type": r, "source_collection": ca, "source_id": a, "target_collection": cb, "target_id": b})
}

fn batch_op(c: &str, id: Option<&str>) -> Value {
    json!({"type": "upsert_record", "collection": c, "id": id, "data": {"b": 1}})
}

/// The count an SQL answer carries, from whichever door.
fn sql_count(door: Door, ok: &Value) -> u64 {
    let _ = door;
    ok["rows"][0][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no count in {ok}"))
}

fn random_token_grants(rng: &mut Rng) -> (Value, Vec<G>) {
    let n = 1 + rng.below(2);
    let mut wire = Vec::new();
    let mut model = Vec::new();
    for _ in 0..n {
        let ws = *rng.pick(&["m--dev", "m"]);
        let env = match rng.below(4) {
            0 => Some("preview"),
            1 => Some("production"),
            _ => None,
        };
        let colls = rng.chance(40).then(|| {
            rng.subset(&COLLS)
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
        });
        let perms: Vec<String> = rng.subset(&PERMS).iter().map(|s| s.to_string()).collect();
        let mut scope = json!({"workspaces": [ws]});
        if let Some(e) = env {
            scope["environments"] = json!([e]);
        }
        if let Some(c) = &colls {
            scope["collections"] = json!(c);
        }
        wire.push(json!({"scope": scope, "permissions": perms}));
        model.push(G {
            reaches: env != Some("production"),
            collections: colls,
            perms,
        });
    }
    (Value::Array(wire), model)
}

#[tokio::test]
async fn every_door_agrees_with_the_reference_model() {
    let seed: u64 = std::env::var("MCP_FACTORY_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let cases: usize = std::env::var("MCP_FACTORY_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    eprintln!(
        "trust model: seed {seed}, {cases} operations (replay: MCP_FACTORY_MODEL_SEED={seed})"
    );
    let mut rng = Rng(seed);

    let wasm = build_component("tests/hostile", "hostile");
    let s = Server::start();
    s.ok(Method::POST, "/v1/workspaces", Some(json!({"id": "m"})))
        .await;
    s.ok(
        Method::POST,
        "/v1/workspaces/m/previews",
        Some(json!({"name": "dev"})),
    )
    .await;
    for c in COLLS {
        s.ok(
            Method::PUT,
            &format!("/v1/{WS}/collections/{c}"),
            Some(json!({"schema": {"type": "object"}})),
        )
        .await;
    }
    let (st, v) = upload(&s, WS, std::fs::read(&wasm).unwrap()).await;
    assert!(st.is_success(), "{v}");
    let component = digest(&wasm);

    let mut model = Model::default();
    for c in COLLS {
        for _ in 0..3 {
            let v = s
                .ok(
                    Method::PUT,
                    &format!("/v1/{WS}/records/{c}"),
                    Some(json!({"data": {}})),
                )
                .await;
            model
                .records
                .entry(c)
                .or_default()
                .push(v["id"].as_str().unwrap().to_string());
        }
    }

    let mut eps = Vec::new();
    for i in 0..5 {
        let e = E::random(&mut rng, format!("e{i}"), &component);
        let (st, v) = s
            .call(
                Method::PUT,
                &format!("/v1/{WS}/endpoints/{}", e.slug),
                Some(&s.admin),
                Some(e.config.clone()),
            )
            .await;
        assert!(st.is_success(), "seed {seed}: endpoint {}: {v}", e.config);
        eps.push(e);
    }

    let mut tokens = Vec::new();
    for i in 0..8 {
        let (grants, model_grants) = random_token_grants(&mut rng);
        let secret = s.token(&format!("t{i}"), grants.clone()).await;
        tokens.push(Token {
            secret,
            grants: model_grants,
            dead: false,
            label: format!("t{i} {grants}"),
        });
    }
    // A child of a live token (same grants), and a revoked parent's child.
    for (i, revoke) in [(0usize, false), (1, true)] {
        let parent = tokens[i].clone();
        let grants = s.ok(Method::GET, "/v1/tokens", None).await["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == format!("t{i}"))
            .unwrap()["grants"]
            .clone();
        let (st, child) = s
            .call(
                Method::POST,
                "/v1/tokens",
                Some(&parent.secret),
                Some(json!({"name": format!("child of t{i}"), "grants": grants})),
            )
            .await;
        if st != StatusCode::CREATED {
            // A parent without the permission to see its own grants'
            // workspace still may mint; anything else is a failure.
            panic!("seed {seed}: child of t{i}: {st} {child}");
        }
        let mut t = Token {
            secret: child["token"].as_str().unwrap().to_string(),
            label: format!("child of t{i}"),
            ..parent.clone()
        };
        if revoke {
            let id = s.ok(Method::GET, "/v1/tokens", None).await["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == format!("t{i}"))
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string();
            s.ok(Method::DELETE, &format!("/v1/tokens/{id}"), None)
                .await;
            tokens[i].dead = true;
            t.dead = true;
        }
        tokens.push(t);
    }

    let mut world = World {
        s: &s,
        eps,
        admin: BTreeMap::new(),
    };
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for n in 0..cases {
        let t = rng.pick(&tokens).clone();
        let door = match rng.below(4) {
            0 => Door::Rest,
            1 => Door::Admin,
            _ => Door::Endpoint(rng.below(world.eps.len())),
        };
        let c = *rng.pick(&COLLS);
        let live = model.records.get(c).cloned().unwrap_or_default();
        let any_id = |rng: &mut Rng| (!live.is_empty()).then(|| rng.pick(&live).clone());
        let op = match rng.below(9) {
            0 => Op::Create(c),
            1 => match any_id(&mut rng) {
                Some(id) => Op::Get(c, id),
                None => Op::List(c),
            },
            2 => Op::List(c),
            3 => match any_id(&mut rng) {
                Some(id) => Op::Update(c, id),
                None => Op::Create(c),
            },
            4 if live.len() > 2 => Op::Delete(c, any_id(&mut rng).unwrap()),
            5 => {
                let c2 = *rng.pick(&COLLS);
                let other = model.records.get(c2).cloned().unwrap_or_default();
                match (any_id(&mut rng), other.is_empty()) {
                    (Some(a), false) => {
                        let b = rng.pick(&other).clone();
                        let r = RELS[rng.below(RELS.len())];
                        Op::Link(r, (c, a), (c2, b))
                    }
                    _ => Op::List(c),
                }
            }
            6 if !model.rels.is_empty() => {
                let ids: Vec<&String> = model.rels.keys().collect();
                Op::Unlink(rng.pick(&ids).to_string())
            }
            7 => Op::BatchUpsert(
                c,
                if rng.chance(50) {
                    any_id(&mut rng)
                } else {
                    None
                },
            ),
            _ => Op::Sql(c),
        };
        let ctx = format!(
            "seed {seed}, case {n}: token {}, door {door:?}{}, op {op:?}",
            t.label,
            match door {
                Door::Endpoint(i) => format!(" (config {})", world.eps[i].config),
                _ => String::new(),
            }
        );
        let expected = model.allows(&t, door, &world.eps, &op);
        let (st, body) = world.run(&t, door, &op).await;
        let got = outcome(door, st, &body, &ctx);
        match (&expected, &got) {
            (None, Outcome::Unauthenticated) => *tally.entry("unauthenticated").or_default() += 1,
            (Some(false), Outcome::Denied) => *tally.entry("denied").or_default() += 1,
            (Some(true), Outcome::Ok(ok)) => {
                *tally.entry("allowed").or_default() += 1;
                if let Op::Sql(c) = &op {
                    let want = if model.sql_sees(&t, door, &world.eps, c) {
                        model.records.get(c).map_or(0, Vec::len) as u64
                    } else {
                        0
                    };
                    assert_eq!(sql_count(door, ok), want, "{ctx}: SQL count");
                }
                model.apply(&op, ok);
            }
            _ => panic!(
                "{ctx}: the model expected {expected:?} (None: 401), the server answered {st}: {body}"
            ),
        }
    }
    // Nothing denied was written, nothing allowed was lost.
    for c in COLLS {
        let v = s
            .ok(
                Method::GET,
                &format!("/v1/{WS}/records/{c}?limit=1000"),
                None,
            )
            .await;
        let mut got: Vec<String> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        let mut want = model.records.get(c).cloned().unwrap_or_default();
        got.sort();
        want.sort();
        assert_eq!(got, want, "seed {seed}: records of '{c}'");
    }
    eprintln!("trust model: seed {seed}: {tally:?}");
    for kind in ["allowed", "denied", "unauthenticated"] {
        assert!(
            tally.get(kind).copied().unwrap_or(0) > 0,
            "seed {seed}: no '{kind}' case: {tally:?}"
        );
    }
}
