//! Endpoint logs: what components write with the `log` import or print to
//! stdout/stderr, and the host's notes on failed calls. Kept in memory, the
//! newest [`KEEP`] lines per endpoint (`mcp-factory endpoints logs`).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// Lines kept per endpoint.
pub const KEEP: usize = 1000;
/// Longest line kept, in characters.
const MAX_LINE: usize = 4096;

/// One log line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Line {
    pub at: String,
    pub level: &'static str,
    /// `log` (the import), `stdout`, `stderr` or `host`.
    pub source: &'static str,
    pub request_id: String,
    pub message: String,
}

#[derive(Default)]
pub struct Logs {
    by_endpoint: Mutex<HashMap<(String, String), VecDeque<Line>>>,
}

impl Logs {
    pub fn push(
        &self,
        (ws, slug): (&str, &str),
        level: &'static str,
        source: &'static str,
        request_id: &str,
        message: &str,
    ) {
        let mut message: String = message.chars().take(MAX_LINE).collect();
        message.truncate(message.trim_end().len());
        let line = Line {
            at: jiff::Timestamp::now().to_string(),
            level,
            source,
            request_id: request_id.to_string(),
            message,
        };
        let mut map = super::lock(&self.by_endpoint);
        let q = map.entry((ws.to_string(), slug.to_string())).or_default();
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// Drops an endpoint's lines.
    pub fn forget(&self, ws: &str, slug: &str) {
        super::lock(&self.by_endpoint).remove(&(ws.to_string(), slug.to_string()));
    }

    /// The newest `limit` lines, oldest first.
    pub fn tail(&self, ws: &str, slug: &str, limit: usize) -> Vec<Line> {
        let map = super::lock(&self.by_endpoint);
        map.get(&(ws.to_string(), slug.to_string()))
            .map(|q| {
                q.iter()
                    .skip(q.len().saturating_sub(limit))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}
