//! Webhooks: what a request to `POST /hooks/<agent>/<hook>` must carry to be queued, and the
//! message made of its payload.
//!
//! - **The signature.** The body's HMAC-SHA256 under the hook's secret, in GitHub's form:
//!   `X-Hub-Signature-256: sha256=<64 hex digits>` ([`verify`], constant time through `hmac`).
//!   Nothing else is authentication: no bearer token is asked for.
//! - **The size.** At most [`MAX_BODY_BYTES`] are read; a larger body is refused unread.
//! - **The delivery id.** `X-GitHub-Delivery` or `X-Berth-Delivery` becomes the item's
//!   idempotency key ([`delivery_key`]): a delivery sent again queues nothing.
//! - **The message.** Without a template, the body as it is (UTF-8 text). With one, every
//!   `{{.a.b}}` is replaced by that field of the JSON payload ([`render`]): a string as it is,
//!   anything else as JSON, a missing field as nothing; `{{.}}` is the whole payload.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The largest body a hook reads, in bytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The headers a delivery id is taken from, in order.
pub const DELIVERY_HEADERS: [&str; 2] = ["x-github-delivery", "x-berth-delivery"];
/// The header the signature is in.
pub const SIGNATURE_HEADER: &str = "x-hub-signature-256";
/// The name of a hook made without `--name`.
pub const DEFAULT_NAME: &str = "default";
/// The longest delivery id taken as a key, in bytes.
pub const MAX_DELIVERY_BYTES: usize = 100;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The signature header's value for `body` under `secret` (what a sender computes).
pub fn sign(secret: &str, body: &[u8]) -> String {
    let digest = mac(secret, body).map(|m| hex(&m.finalize().into_bytes()));
    format!("sha256={}", digest.unwrap_or_default())
}

/// The MAC of `body` under `secret` (HMAC takes a key of any length: never `None` in fact).
fn mac(secret: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(body);
    Some(mac)
}

/// Whether `header` (`sha256=<hex>`) is the signature of `body` under `secret`, compared in
/// constant time. A header of another form is no signature.
pub fn verify(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(given) = header.trim().strip_prefix("sha256=").and_then(unhex) else {
        return false;
    };
    mac(secret, body).is_some_and(|m| m.verify_slice(&given).is_ok())
}

/// The idempotency key of a delivery: the hook's name and the sender's delivery id. `None`
/// for an id that is empty, too long, or not printable ASCII (it is then not deduplicated).
pub fn delivery_key(hook: &str, delivery: &str) -> Option<String> {
    let ok = !delivery.is_empty()
        && delivery.len() <= MAX_DELIVERY_BYTES
        && delivery.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| format!("hook:{hook}:{delivery}"))
}

/// Why a template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("the template has a `{{{{` without its `}}}}`")]
    Unclosed,
    #[error("`{{{{{0}}}}}` is not a field: write `{{{{.field.inner}}}}` or `{{{{.}}}}`")]
    NotAField(String),
}

/// Checks a template before it is stored.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    render_with(template, &serde_json::Value::Null).map(|_| ())
}

/// The message a template makes of a JSON payload.
pub fn render(template: &str, payload: &serde_json::Value) -> Result<String, TemplateError> {
    render_with(template, payload)
}

fn render_with(template: &str, payload: &serde_json::Value) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or(TemplateError::Unclosed)?;
        let field = after[..close].trim();
        out.push_str(&lookup(field, payload)?);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `.a.b` in `payload`; an array is indexed by number (`.commits.0.message`).
fn lookup(field: &str, payload: &serde_json::Value) -> Result<String, TemplateError> {
    let path = field
        .strip_prefix('.')
        .ok_or_else(|| TemplateError::NotAField(field.to_string()))?;
    let mut at = Some(payload);
    if !path.is_empty() {
        for part in path.split('.') {
            if part.is_empty() {
                return Err(TemplateError::NotAField(field.to_string()));
            }
            at = at.and_then(|v| match v {
                serde_json::Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => v.get(part),
            });
        }
    }
    Ok(match at {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signs_as_github_does() {
        // GitHub's documented example: secret "It's a Secret to Everybody", body "Hello, World!".
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn verifies_only_the_right_signature_of_the_same_body() {
        let header = sign("s3cret", b"{\"a\":1}");
        assert!(verify("s3cret", b"{\"a\":1}", &header));
        assert!(verify("s3cret", b"{\"a\":1}", &format!(" {header} ")));
        assert!(!verify("other", b"{\"a\":1}", &header), "another secret");
        assert!(!verify("s3cret", b"{\"a\":2}", &header), "another body");
        let upper = header.replacen("sha256=", "SHA256=", 1);
        assert!(
            !verify("s3cret", b"{\"a\":1}", &upper),
            "SHA256= is not the form"
        );
        for bad in [
            "",
            "sha256=",
            "sha1=abcd",
            "sha256=zz",
            "sha256=abc",
            &header[..header.len() - 2],
            "sha256=\u{e9}\u{e9}",
        ] {
            assert!(!verify("s3cret", b"{\"a\":1}", bad), "{bad:?}");
        }
    }

    #[test]
    fn delivery_ids_become_keys_when_they_are_sane() {
        assert_eq!(
            delivery_key("ci", "72d3162e-cc78-11e3-81ab-4c9367dc0958").as_deref(),
            Some("hook:ci:72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        assert_eq!(delivery_key("ci", ""), None);
        assert_eq!(delivery_key("ci", "a b"), None);
        assert_eq!(delivery_key("ci", &"x".repeat(101)), None);
    }

    #[test]
    fn templates_take_fields_of_the_payload() {
        let payload = json!({
            "action": "opened",
            "number": 42,
            "pull_request": { "title": "Fix the parser", "draft": false, "labels": ["bug"] },
            "commits": [{ "message": "first" }],
            "nothing": null
        });
        let r = |t: &str| render(t, &payload).unwrap();
        assert_eq!(
            r("PR #{{.number}} {{.action}}: {{ .pull_request.title }}"),
            "PR #42 opened: Fix the parser"
        );
        assert_eq!(
            r("{{.pull_request.draft}} {{.pull_request.labels}}"),
            "false [\"bug\"]"
        );
        assert_eq!(r("{{.commits.0.message}}"), "first");
        assert_eq!(
            r("[{{.missing.field}}][{{.nothing}}][{{.commits.7}}]"),
            "[][][]"
        );
        assert_eq!(r("plain"), "plain");
        assert_eq!(render("{{.}}", &json!({"a":1})).unwrap(), "{\"a\":1}");
        assert_eq!(render("{{.a}}", &json!("text")).unwrap(), "");
    }

    #[test]
    fn bad_templates_are_refused() {
        assert_eq!(check_template("{{.a"), Err(TemplateError::Unclosed));
        assert!(matches!(
            check_template("{{a}}"),
            Err(TemplateError::NotAField(_))
        ));
        assert!(matches!(
            check_template("{{.a..b}}"),
            Err(TemplateError::NotAField(_))
        ));
        assert!(check_template("{{.a.b}} and {{.}}").is_ok());
        assert!(check_template("no fields }} at all").is_ok());
    }

    #[test]
    fn hex_reads_back() {
        assert_eq!(hex(&[0, 1, 0xab, 0xff]), "0001abff");
        assert_eq!(unhex("0001abff"), Some(vec![0, 1, 0xab, 0xff]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("g0"), None);
    }
}
