//! The `tools/call` fast path of endpoint routes: a plain request/response
//! call answered here as one `application/json` body, without rmcp's
//! transport (its second body parse, per-request tasks, the session
//! worker's channels and SSE framing).
//!
//! It is taken only for a request this module fully understands, on either
//! revision:
//!
//! - **2025-11-25 session**: `Mcp-Session-Id` of a live session that this
//!   caller's token opened on this route, no per-request version in `_meta`
//!   and no progress token;
//! - **2026-07-28 stateless**: no session, `MCP-Protocol-Version`, `_meta`
//!   `protocolVersion` both `2026-07-28`, `clientCapabilities` (and
//!   `clientInfo` if given) well formed, exactly one `Mcp-Method:
//!   tools/call` and one `Mcp-Name` naming the tool, no `Mcp-Param-*`, no
//!   progress token.
//!
//! Anything else — another method, a batch, an unknown field, an odd id, a
//! header this module does not check — goes to rmcp unchanged, so every
//! refusal and every other feature stays rmcp's. Authentication, Host and
//! Origin checks and session ownership ran before (`http::mcp`), and the
//! call itself is [`super::endpoint::call_result`], the same code the rmcp
//! handler runs: both paths give the same result
//! (tests/all/mcp_2026.rs compares them).
//!
//! Not served here: `notifications/cancelled` for a fast call (the call is
//! bounded by the endpoint's time limit).

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use rmcp::model::{ClientCapabilities, Implementation};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::McpCaller;

/// Which revision a fast call came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// A 2025-11-25 session (`Mcp-Session-Id`).
    Session,
    /// A 2026-07-28 stateless request.
    Stateless,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message<'a> {
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    method: &'a str,
    #[serde(borrow)]
    params: Params<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    // Decoded whole, as rmcp decodes them: text it would refuse (a lone
    // surrogate, a number out of range, nesting past the limit) makes the
    // body fail here too, and rmcp answers it.
    #[serde(default)]
    arguments: Option<Map<String, Value>>,
    #[serde(rename = "_meta", default)]
    meta: Option<Map<String, Value>>,
}

/// A `tools/call` the fast path serves.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub era: Era,
    /// The JSON-RPC id, as sent (a string or an integer).
    pub id: &'a str,
    pub name: Cow<'a, str>,
    /// The arguments object, empty when absent or null.
    pub arguments: Map<String, Value>,
}

const VERSION_KEY: &str = "io.modelcontextprotocol/protocolVersion";
const CAPABILITIES_KEY: &str = "io.modelcontextprotocol/clientCapabilities";
const CLIENT_INFO_KEY: &str = "io.modelcontextprotocol/clientInfo";
const RESERVED_PREFIX: &str = "io.modelcontextprotocol/";
/// The 2025 versions a session request may name in its header.
const SESSION_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// The one value of header `name`; `None` if absent, `Some(None)` if it is
/// there more than once or is not text.
fn single<'h>(headers: &'h HeaderMap, name: &str) -> Option<Option<&'h str>> {
    let mut all = headers.get_all(name).iter();
    let first = all.next()?;
    if all.next().is_some() {
        return Some(None);
    }
    Some(first.to_str().ok())
}

/// The media type of one `Accept` or `Content-Type` entry, without its
/// parameters; `None` when its `q` is 0 (not acceptable).
fn media_type(entry: &str) -> Option<&str> {
    let mut parts = entry.split(';');
    let ty = parts.next()?.trim();
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("q")
            && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        {
            return None;
        }
    }
    Some(ty)
}

fn accepts_json_and_sse(headers: &HeaderMap) -> bool {
    let mut json = false;
    let mut sse = false;
    for v in headers.get_all(header::ACCEPT) {
        for entry in v.to_str().unwrap_or("").split(',') {
            let ty = media_type(entry).unwrap_or("");
            json |= ty.eq_ignore_ascii_case("application/json");
            sse |= ty.eq_ignore_ascii_case("text/event-stream");
        }
    }
    json && sse
}

/// The request as a fast call, or `None` (then rmcp serves it). `session`:
/// the request's `Mcp-Session-Id` names a live session of this caller on
/// this route (checked by the caller of this function).
pub(crate) fn parse<'a>(headers: &HeaderMap, body: &'a [u8], session: bool) -> Option<Call<'a>> {
    let json_body = single(headers, header::CONTENT_TYPE.as_str())
        .flatten()
        .and_then(media_type)
        .is_some_and(|t| t.eq_ignore_ascii_case("application/json"));
    if !json_body || !accepts_json_and_sse(headers) || headers.contains_key("last-event-id") {
        return None;
    }
    let m: Message<'a> = serde_json::from_slice(body).ok()?;
    if m.jsonrpc != "2.0" || m.method != "tools/call" {
        return None;
    }
    let id = m.id.get();
    let id_ok = match id.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(id).is_ok(),
        // `-0` would come back from rmcp as `0`: leave it to rmcp.
        Some(b'-' | b'0'..=b'9') => !id.starts_with("-0") && id.parse::<i64>().is_ok(),
        _ => false,
    };
    if !id_ok {
        return None;
    }
    let meta = m.params.meta.unwrap_or_default();
    if meta.contains_key("progressToken") {
        return None;
    }
    let era = if session {
        if meta.keys().any(|k| k.starts_with(RESERVED_PREFIX))
            || headers.contains_key("mcp-method")
            || headers.contains_key("mcp-name")
        {
            return None;
        }
        match single(headers, "mcp-protocol-version") {
            None => {}
            Some(Some(v)) if SESSION_VERSIONS.contains(&v) => {}
            Some(_) => return None,
        }
        Era::Session
    } else {
        if headers.contains_key("mcp-session-id")
            || single(headers, "mcp-protocol-version") != Some(Some("2026-07-28"))
            || single(headers, "mcp-method") != Some(Some("tools/call"))
            || headers.keys().any(|k| k.as_str().starts_with("mcp-param-"))
        {
            return None;
        }
        // Exactly as rmcp compares it (hyper has trimmed the value).
        if single(headers, "mcp-name") != Some(Some(m.params.name.as_ref())) {
            return None;
        }
        if meta.get(VERSION_KEY).and_then(Value::as_str) != Some("2026-07-28") {
            return None;
        }
        let capabilities = meta.get(CAPABILITIES_KEY)?;
        if !capabilities.as_object().is_some_and(Map::is_empty) {
            ClientCapabilities::deserialize(capabilities).ok()?;
        }
        if let Some(info) = meta.get(CLIENT_INFO_KEY) {
            Implementation::deserialize(info).ok()?;
        }
        Era::Stateless
    };
    Some(Call {
        era,
        id,
        name: m.params.name,
        arguments: m.params.arguments.unwrap_or_default(),
    })
}

/// Runs `call` for `caller` and answers it as one JSON-RPC response body.
pub(crate) async fn serve(
    service: &crate::service::Service,
    runtime: &std::sync::Arc<crate::runtime::Runtime>,
    caller: &McpCaller,
    call: Call<'_>,
) -> Response {
    // The arguments as the rmcp path passes them: a component sees the same
    // text either way.
    let arguments = Value::Object(call.arguments).to_string();
    let out = super::endpoint::call_result(service, runtime, caller, &call.name, &arguments).await;
    let mut body = String::with_capacity(256);
    body.push_str(r#"{"jsonrpc":"2.0","id":"#);
    body.push_str(call.id);
    let written = match out {
        Ok(mut result) => {
            if call.era == Era::Session {
                // 2025 peers do not know `resultType` (rmcp strips it too).
                result.result_type = None;
            }
            body.push_str(r#","result":"#);
            serde_json::to_string(&result)
        }
        Err(e) => {
            body.push_str(r#","error":"#);
            serde_json::to_string(&e)
        }
    };
    match written {
        Ok(json) => body.push_str(&json),
        Err(e) => {
            tracing::error!(error = %e, "could not serialize an MCP response");
            return internal();
        }
    }
    body.push('}');
    let mut r = Response::new(Body::from(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn internal() -> Response {
    let mut r = Response::new(Body::from(
        r#"{"error":{"code":"INTERNAL","message":"internal error; the server log has the details"}}"#,
    ));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const BASE: [(&str, &str); 2] = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];

    fn stateless_headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut all: Vec<(&'static str, &'static str)> = BASE.to_vec();
        all.extend([
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "get_items"),
        ]);
        all.extend_from_slice(extra);
        headers(&all)
    }

    const STATELESS: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_items","arguments":{"id":"x"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"}}}}"#;

    #[test]
    fn plain_calls_of_both_revisions_are_taken() {
        let c = parse(&stateless_headers(&[]), STATELESS.as_bytes(), false)
            .expect("a plain stateless call is taken");
        assert_eq!(c.era, Era::Stateless);
        assert_eq!((c.id, c.name.as_ref()), ("7", "get_items"));
        assert_eq!(Value::Object(c.arguments).to_string(), r#"{"id":"x"}"#);

        let body =
            r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"get_items"}}"#;
        let h = headers(&[
            BASE[0],
            BASE[1],
            ("mcp-session-id", "s"),
            ("mcp-protocol-version", "2025-11-25"),
        ]);
        let c = parse(&h, body.as_bytes(), true).expect("a plain session call is taken");
        assert_eq!(c.era, Era::Session);
        assert_eq!(c.id, r#""a-1""#);
        assert!(c.arguments.is_empty());
    }

    #[test]
    fn everything_else_is_left_to_rmcp() {
        let h = stateless_headers(&[]);
        let session = headers(&[BASE[0], BASE[1], ("mcp-session-id", "s")]);
        for (what, h, body, session_ok) in [
            (
                "another method",
                &h,
                STATELESS.replace("tools/call", "tools/list"),
                false,
            ),
            ("a batch", &h, format!("[{STATELESS}]"), false),
            (
                "an unknown field",
                &h,
                STATELESS.replace(r#""id":7"#, r#""id":7,"x":1"#),
                false,
            ),
            (
                "a task",
                &h,
                STATELESS.replace(r#""arguments""#, r#""task":{},"arguments""#),
                false,
            ),
            (
                "a float id",
                &h,
                STATELESS.replace(r#""id":7"#, r#""id":7.5"#),
                false,
            ),
            (
                "a null id",
                &h,
                STATELESS.replace(r#""id":7"#, r#""id":null"#),
                false,
            ),
            (
                "array arguments",
                &h,
                STATELESS.replace(r#"{"id":"x"}"#, "[1]"),
                false,
            ),
            (
                "a progress token",
                &h,
                STATELESS.replace(r#""_meta":{"#, r#""_meta":{"progressToken":1,"#),
                false,
            ),
            (
                "another _meta version",
                &h,
                STATELESS.replace(r#"Version":"2026-07-28""#, r#"Version":"2025-11-25""#),
                false,
            ),
            (
                "no capabilities",
                &h,
                STATELESS.replace(r#""io.modelcontextprotocol/clientCapabilities":{},"#, ""),
                false,
            ),
            (
                "bad client info",
                &h,
                STATELESS.replace(r#"{"name":"t","version":"1"}"#, "7"),
                false,
            ),
            (
                "another Mcp-Name",
                &h,
                STATELESS.replace(r#""name":"get_items""#, r#""name":"list_items""#),
                false,
            ),
            ("not JSON", &h, "{".to_string(), false),
            (
                "a lone surrogate",
                &h,
                STATELESS.replace(r#""x"}"#, r#""\ud800"}"#),
                false,
            ),
            (
                "a number out of range",
                &h,
                STATELESS.replace(r#"{"id":"x"}"#, r#"{"id":1e400}"#),
                false,
            ),
            (
                "out-of-range _meta",
                &h,
                STATELESS.replace(r#""_meta":{"#, r#""_meta":{"x":1e400,"#),
                false,
            ),
            (
                "a -0 id",
                &h,
                STATELESS.replace(r#""id":7"#, r#""id":-0"#),
                false,
            ),
            (
                "a 2026 call in a session",
                &session,
                STATELESS.to_string(),
                true,
            ),
        ] {
            assert!(parse(h, body.as_bytes(), session_ok).is_none(), "{what}");
        }
        for (what, extra) in [
            ("two Mcp-Method headers", vec![("mcp-method", "tools/call")]),
            ("a session id", vec![("mcp-session-id", "s")]),
            ("an Mcp-Param header", vec![("mcp-param-region", "eu")]),
            ("Last-Event-ID", vec![("last-event-id", "1")]),
        ] {
            assert!(
                parse(&stateless_headers(&extra), STATELESS.as_bytes(), false).is_none(),
                "{what}"
            );
        }
        for (what, accept, ctype) in [
            (
                "q=0 JSON",
                "application/json;q=0, text/event-stream",
                "application/json",
            ),
            (
                "jsonx",
                "application/jsonx, text/event-stream",
                "application/json",
            ),
            (
                "json-seq body",
                "application/json, text/event-stream",
                "application/json-seq",
            ),
        ] {
            let h = headers(&[
                ("content-type", ctype),
                ("accept", accept),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "get_items"),
            ]);
            assert!(parse(&h, STATELESS.as_bytes(), false).is_none(), "{what}");
        }
        let no_sse = headers(&[
            ("content-type", "application/json"),
            ("accept", "application/json"),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "get_items"),
        ]);
        assert!(
            parse(&no_sse, STATELESS.as_bytes(), false).is_none(),
            "Accept without SSE"
        );
        // A session request with a session this caller does not own.
        let body =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_items"}}"#;
        assert!(
            parse(&session, body.as_bytes(), false).is_none(),
            "unowned session"
        );
    }
}
