//! The CLI's HTTP client of the REST API: server URL and token resolution
//! (flag, environment, credentials file), requests, and error messages that
//! say what to do.

use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const DEFAULT_URL: &str = "http://127.0.0.1:8787";

/// What `serve` saves on first start, for the CLI to use by default.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    pub url: String,
    pub token: String,
}

pub fn credentials_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mcp-factory").join("credentials.json"))
}

pub fn read_credentials() -> Option<Credentials> {
    let path = credentials_path()?;
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the credentials file with mode 0600.
pub fn write_credentials(c: &Credentials) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let path = credentials_path().context("no config directory for this user")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(&serde_json::to_vec_pretty(c)?)?;
    Ok(path)
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(server: Option<String>, token: Option<String>) -> Client {
        let saved = read_credentials();
        let base = server
            .or_else(|| saved.as_ref().map(|c| c.url.clone()))
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let token = token.or_else(|| saved.map(|c| c.token));
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    /// Sends a request; returns the JSON body of a 2xx, or an error carrying
    /// the server's message.
    /// The server address this client talks to.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req, &url).await
    }

    /// Posts raw bytes (a component) to `path`.
    pub async fn upload(
        &self,
        path: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let req = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
        self.send(req, &url).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder, url: &str) -> anyhow::Result<Value> {
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach the mcp-factory server at {}: connection refused.\n\
                     Start it with `mcp-factory serve` (it listens on {DEFAULT_URL} by default), \
                     or point --server / MCP_FACTORY_URL at a running one.",
                    self.base
                )
            } else {
                anyhow!("request to {url} failed: {e}")
            }
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        let code = body["error"]["code"].as_str().unwrap_or("ERROR");
        let message = body["error"]["message"].as_str().unwrap_or("(no message)");
        let mut out = format!("{code} ({}): {message}", status.as_u16());
        if let Some(d) = body["error"].get("details") {
            out.push_str(&format!(
                "\ndetails: {}",
                serde_json::to_string_pretty(d).unwrap_or_default()
            ));
        }
        if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
            out.push_str("\nNo token: pass --token, set MCP_FACTORY_TOKEN, or run `mcp-factory serve` once to create the admin credentials.");
        }
        bail!(out)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }
}

/// Percent-encodes one path segment.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A JSON argument: inline JSON, or `@file` to read it from a file.
pub fn json_arg(what: &str, s: &str) -> anyhow::Result<Value> {
    let text = match s.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {what} from {path}"))?
        }
        None => s.to_string(),
    };
    serde_json::from_str(&text).with_context(|| format!("{what} is not valid JSON"))
}
