//! Standard Webhooks (<https://www.standardwebhooks.com>) signatures: how
//! trigger deliveries are signed and how hook ingest requests may be
//! authenticated.
//!
//! A signature is HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`
//! with the secret (`whsec_` + base64), sent as `webhook-signature: v1,<b64>`;
//! several space-separated signatures let a secret be rotated (during the
//! grace period both the old and the new secret sign, and a receiver accepts
//! either). The HMAC and the encoding are the `standardwebhooks` crate's;
//! the time check is here, with the clock passed in, so it can be tested.

use axum::http::HeaderMap;
use base64::Engine;
use rand::RngCore;

pub const ID: &str = "webhook-id";
pub const TIMESTAMP: &str = "webhook-timestamp";
pub const SIGNATURE: &str = "webhook-signature";

/// How far a signed timestamp may be from the receiver's clock.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A new secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// Why a signature or secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the secret is not `whsec_` followed by base64")]
    BadSecret,
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {0} header is not valid")]
    Invalid(&'static str),
    #[error("the webhook-timestamp is more than 5 minutes old (replayed or delayed)")]
    TooOld,
    #[error(
        "the webhook-timestamp is more than 5 minutes in the future (check the sender's clock)"
    )]
    TooNew,
    #[error("no signature in webhook-signature matches the body with this secret")]
    NoMatch,
    #[error("the body is not UTF-8 text")]
    NotText,
}

fn webhook(secret: &str) -> Result<standardwebhooks::Webhook, Refused> {
    standardwebhooks::Webhook::new(secret).map_err(|_| Refused::BadSecret)
}

/// The `webhook-signature` value for `body` sent as `id` at `timestamp`
/// (Unix seconds), one `v1,…` per secret.
pub fn sign(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Result<String, Refused> {
    let mut out = Vec::with_capacity(secrets.len());
    for s in secrets {
        out.push(
            webhook(s)?
                .sign(id, timestamp, body)
                .map_err(|_| Refused::NotText)?,
        );
    }
    Ok(out.join(" "))
}

/// Checks a request's Standard Webhooks headers against any of `secrets` at
/// time `now` (Unix seconds); returns its `webhook-id`.
pub fn verify<'h>(
    secrets: &[&str],
    headers: &'h HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<&'h str, Refused> {
    let header = |name: &'static str| {
        headers
            .get(name)
            .ok_or(Refused::Missing(name))?
            .to_str()
            .map_err(|_| Refused::Invalid(name))
    };
    let (id, timestamp, signatures) = (header(ID)?, header(TIMESTAMP)?, header(SIGNATURE)?);
    verify_parts(secrets, id, timestamp, signatures, body, now)?;
    Ok(id)
}

/// [`check_time`] and then the signatures: whether `signatures` (the
/// `webhook-signature` value) holds one made by any of `secrets` over
/// `id.timestamp.body`.
pub fn verify_parts(
    secrets: &[&str],
    id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    let timestamp = check_time(timestamp, now)?;
    for secret in secrets {
        let expected = webhook(secret)?
            .sign(id, timestamp, body)
            .map_err(|_| Refused::NotText)?;
        let matches = signatures
            .split(' ')
            .filter(|s| !s.is_empty())
            .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()));
        if matches {
            return Ok(());
        }
    }
    Err(Refused::NoMatch)
}

/// Parses a `webhook-timestamp` and checks it is within the tolerance of
/// `now` (checked before anything is looked up).
pub fn check_time(timestamp: &str, now: i64) -> Result<i64, Refused> {
    let timestamp: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refused::Invalid(TIMESTAMP))?;
    if now.saturating_sub(timestamp) > TOLERANCE_SECS {
        return Err(Refused::TooOld);
    }
    if timestamp.saturating_sub(now) > TOLERANCE_SECS {
        return Err(Refused::TooNew);
    }
    Ok(timestamp)
}

/// Whether two secrets are equal, in time that does not depend on where
/// they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    constant_time_eq(a.as_bytes(), b.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use axum::http::HeaderValue;

    use super::*;

    const NOW: i64 = 1_764_620_000;

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ID, HeaderValue::from_str(id).expect("id"));
        h.insert(
            TIMESTAMP,
            HeaderValue::from_str(&ts.to_string()).expect("ts"),
        );
        h.insert(SIGNATURE, HeaderValue::from_str(sig).expect("sig"));
        h
    }

    #[test]
    fn signatures_verify_within_the_tolerance_and_name_what_failed() {
        let (old, new) = (new_secret(), new_secret());
        assert!(old.starts_with("whsec_") && old != new);
        let body = br#"{"event":"record.created"}"#;
        let sig = sign(&[&new], "msg_1", NOW, body).expect("signed");
        let h = headers("msg_1", NOW, &sig);
        assert_eq!(verify(&[&new], &h, body, NOW), Ok("msg_1"));
        // Rotation: old and new both sign; a receiver with either accepts.
        let both = sign(&[&old, &new], "msg_1", NOW, body).expect("signed");
        assert_eq!(both.split(' ').count(), 2);
        for s in [&old, &new] {
            assert!(verify(&[s], &headers("msg_1", NOW, &both), body, NOW).is_ok());
        }
        assert_eq!(
            verify(&[&old], &h, body, NOW),
            Err(Refused::NoMatch),
            "only the new secret signed"
        );
        // The clock, at the edges of the 5 minutes.
        assert!(verify(&[&new], &h, body, NOW + TOLERANCE_SECS).is_ok());
        assert_eq!(
            verify(&[&new], &h, body, NOW + TOLERANCE_SECS + 1),
            Err(Refused::TooOld)
        );
        assert_eq!(
            verify(&[&new], &h, body, NOW - TOLERANCE_SECS - 1),
            Err(Refused::TooNew)
        );
        // Anything changed breaks it.
        assert_eq!(
            verify(&[&new], &h, br#"{"event":"record.deleted"}"#, NOW),
            Err(Refused::NoMatch)
        );
        assert_eq!(
            verify(&[&new], &headers("msg_2", NOW, &sig), body, NOW),
            Err(Refused::NoMatch)
        );
        let mut missing = h.clone();
        missing.remove(SIGNATURE);
        assert_eq!(
            verify(&[&new], &missing, body, NOW),
            Err(Refused::Missing(SIGNATURE))
        );
        let mut bad_ts = h.clone();
        bad_ts.insert(TIMESTAMP, HeaderValue::from_static("yesterday"));
        assert_eq!(
            verify(&[&new], &bad_ts, body, NOW),
            Err(Refused::Invalid(TIMESTAMP))
        );
        assert_eq!(
            verify(&["whsec_!!"], &h, body, NOW),
            Err(Refused::BadSecret)
        );
    }

    /// An absurd timestamp is refused, never an overflow (a panic in debug).
    #[test]
    fn extreme_timestamps_are_refused() {
        assert_eq!(check_time(&i64::MIN.to_string(), NOW), Err(Refused::TooOld));
        assert_eq!(check_time(&i64::MAX.to_string(), NOW), Err(Refused::TooNew));
        assert_eq!(
            check_time("99999999999999999999", NOW),
            Err(Refused::Invalid(TIMESTAMP))
        );
    }

    /// The reference implementation nobody here wrote (`standardwebhooks`
    /// from PyPI, pinned) verifies our signatures, and we verify its.
    #[test]
    fn the_python_reference_implementation_agrees() {
        const PINNED: &str = "1.1.0";
        let have = Command::new("python3")
            .args([
                "-c",
                "import importlib.metadata as m; print(m.version('standardwebhooks'))",
            ])
            .output()
            .expect("the tests need python3");
        if String::from_utf8_lossy(&have.stdout).trim() != PINNED {
            let out = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet"])
                .arg(format!("standardwebhooks=={PINNED}"))
                .output()
                .expect("pip");
            assert!(
                out.status.success(),
                "pip install standardwebhooks=={PINNED}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let secret = new_secret();
        let body = r#"{"type":"record.updated","data":{"id":"r1","name":"Zoë"}}"#;
        let ts = jiff::Timestamp::now().as_second();
        let ours = sign(&[&secret], "msg_py", ts, body.as_bytes()).expect("signed");
        let script = r#"
import sys, datetime
from standardwebhooks.webhooks import Webhook
secret, body, ts, sig = sys.argv[1:5]
wh = Webhook(secret)
wh.verify(body, {"webhook-id": "msg_py", "webhook-timestamp": ts, "webhook-signature": sig})
print(wh.sign("msg_rs", datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc), body))
"#;
        let out = Command::new("python3")
            .args(["-c", script, &secret, body, &ts.to_string(), &ours])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "the Python implementation refused our signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(theirs.starts_with("v1,"), "{theirs}");
        let h = headers("msg_rs", ts, &theirs);
        assert_eq!(verify(&[&secret], &h, body.as_bytes(), ts), Ok("msg_rs"));
    }
}
