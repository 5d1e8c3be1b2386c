//! The operator's page: static files compiled into the binary and served on the local API's address.
//!
//! No build step and nothing fetched at run time: plain HTML, CSS and one JavaScript module that uses the local
//! API only (`docs/openapi.yaml`). The files carry no secret, so they are served without the API token; the page
//! takes the token from its address's fragment (`/#token=...`, which a browser never sends to a server), keeps it
//! in the tab's session storage and sends it as a bearer token on every API call. The Host check that guards the
//! API guards the page too (DNS rebinding), and a strict Content-Security-Policy allows nothing but this origin.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

/// The languages the page has message files for.
pub const LANGUAGES: [&str; 3] = ["en", "ru", "kk"];

/// (path, media type, contents).
static FILES: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../ui/index.html")),
    ("/ui/app.js", "text/javascript; charset=utf-8", include_str!("../ui/app.js")),
    ("/ui/app.css", "text/css; charset=utf-8", include_str!("../ui/app.css")),
    ("/ui/i18n/en.json", "application/json", include_str!("../ui/i18n/en.json")),
    ("/ui/i18n/ru.json", "application/json", include_str!("../ui/i18n/ru.json")),
    ("/ui/i18n/kk.json", "application/json", include_str!("../ui/i18n/kk.json")),
    ("/favicon.svg", "image/svg+xml", include_str!("../ui/favicon.svg")),
];

/// What the page may load and connect to: this origin, and the images it makes from API responses (`blob:`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's files, behind the Host check.
pub fn router(hosts: Vec<String>) -> Router {
    let mut r = Router::new();
    for &(path, media_type, body) in FILES {
        r = r.route(
            path,
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, media_type),
                        (header::CONTENT_SECURITY_POLICY, CSP),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                        (header::REFERRER_POLICY, "no-referrer"),
                        (header::CACHE_CONTROL, "no-cache"),
                    ],
                    body,
                )
            }),
        );
    }
    r.layer(axum::middleware::from_fn_with_state(Arc::new(hosts), host_check))
}

async fn host_check(State(hosts): State<Arc<Vec<String>>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if hosts.iter().any(|h| h == host) {
        return next.run(req).await;
    }
    let mut r = (
        StatusCode::MISDIRECTED_REQUEST,
        format!("Host `{host}` is not this workstation's page: open http://127.0.0.1 with the configured port\n"),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message file has exactly the English keys, none empty, and every key the page uses exists.
    #[test]
    fn message_files_are_complete() {
        let parse = |lang: &str| -> serde_json::Map<String, serde_json::Value> {
            let (_, _, body) = FILES
                .iter()
                .find(|(p, _, _)| *p == format!("/ui/i18n/{lang}.json"))
                .unwrap();
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{lang}.json: {e}"))
        };
        let en = parse("en");
        for lang in LANGUAGES {
            let m = parse(lang);
            let mut a: Vec<_> = m.keys().collect();
            let mut b: Vec<_> = en.keys().collect();
            a.sort();
            b.sort();
            let extra: Vec<_> = a.iter().filter(|k| !b.contains(k)).collect();
            let lacking: Vec<_> = b.iter().filter(|k| !a.contains(k)).collect();
            assert!(extra.is_empty() && lacking.is_empty(), "{lang}: extra {extra:?}, lacking {lacking:?}");
            for (k, v) in &m {
                assert!(v.as_str().is_some_and(|s| !s.trim().is_empty()), "{lang}: `{k}` is empty");
            }
        }
        // Keys used by the page: t("key") in app.js and data-i18n="key" in index.html.
        let sources = [include_str!("../ui/app.js"), include_str!("../ui/index.html")];
        for src in sources {
            for pat in ["t(\"", "data-i18n=\""] {
                for piece in src.split(pat).skip(1) {
                    let key = piece.split('"').next().unwrap();
                    assert!(en.contains_key(key), "the page uses `{key}`, which en.json lacks");
                }
            }
        }
    }
}
