//! The console's files, embedded in the binary at compile time: `cargo build` alone makes a
//! daemon that serves the page. Third-party code (xterm.js) sits in `console/vendor/`, copied
//! from the npm registry at pinned versions by `scripts/vendor-console`.

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use hyper::StatusCode;

struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $mime:literal) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("vendor/xterm.mjs", "text/javascript; charset=utf-8"),
    asset!("vendor/xterm.css", "text/css; charset=utf-8"),
    asset!("vendor/addon-fit.mjs", "text/javascript; charset=utf-8"),
];

/// What the console's pages may load and where they may connect: only this origin. Scripts only
/// from the embedded files; inline styles are allowed because xterm.js sizes its terminal with
/// `<style>` elements it makes (styles cannot run code).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The page itself (`GET /`).
pub async fn index() -> Response {
    file("index.html")
}

/// A file under `/assets/`.
pub async fn asset(Path(name): Path<String>) -> Response {
    file(&name)
}

fn file(name: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such file in the console").into_response();
    };
    let mut resp = asset.body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
    // Always revalidated, so a new daemon's page is never mixed with an old one's script.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        let script = std::str::from_utf8(ASSETS[1].body).unwrap();
        for text in [page, script] {
            for (i, _) in text.match_indices("/assets/") {
                let rest = &text[i + "/assets/".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | '`' | ')' | ' '))
                    .collect();
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} is named but not embedded"
                );
            }
        }
    }
}
