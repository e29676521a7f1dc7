//! Endpoint logs: what components write with the `log` import or print to
//! stdout/stderr, and the host's notes on calls. Kept in memory, the newest
//! [`KEEP`] lines per endpoint (`mcp-factory endpoints logs`).
//!
//! A [`Log`] belongs to one endpoint entry of the runtime (one incarnation of
//! a workspace/slug), not to a name: a call still running when its endpoint
//! is deleted writes into the log it started with, which goes away with it,
//! so an endpoint made later under the same name starts with an empty log.

use std::collections::VecDeque;
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

/// The newest [`KEEP`] lines of one endpoint.
#[derive(Default)]
pub struct Log {
    lines: Mutex<VecDeque<Line>>,
}

impl Log {
    pub fn push(&self, level: &'static str, source: &'static str, request_id: &str, message: &str) {
        let mut message: String = message.chars().take(MAX_LINE).collect();
        message.truncate(message.trim_end().len());
        let line = Line {
            at: jiff::Timestamp::now().to_string(),
            level,
            source,
            request_id: request_id.to_string(),
            message,
        };
        let mut q = super::lock(&self.lines);
        if q.len() == KEEP {
            q.pop_front();
        }
        q.push_back(line);
    }

    /// The newest `limit` lines, oldest first.
    pub fn tail(&self, limit: usize) -> Vec<Line> {
        let q = super::lock(&self.lines);
        q.iter()
            .skip(q.len().saturating_sub(limit))
            .cloned()
            .collect()
    }
}
