//! The operator's page: static files compiled into the binary and served on the local API's address.
//!
//! No build step and nothing fetched at run time: plain HTML, CSS and one JavaScript module that uses the local
//! API only (`docs/openapi.yaml`). The files carry no secret, so they are served without the API token. The page
//! gets the token in one of two ways, keeps it in the tab's session storage and sends it as a bearer token on every
//! API call:
//!
//! - `POST /` with the form field `token`: what the handover file of `tamga page --open` submits (see
//!   [`crate::cli::page`]). The answer is the page with the token in `<meta name="tamga-key">`, never cached; the
//!   page moves it to session storage, removes the element and replaces the address with `/`, so a reload is a GET.
//!   Nothing is checked or changed on the agent's side: whoever posts a key only hands it to a tab of their own, and
//!   the API checks it on every call. Anything but hexadecimal digits is ignored.
//! - the address's fragment (`/#token=...`, which a browser never sends to a server), as `tamga page` prints it.
//!
//! The Host check that guards the API guards the page too (DNS rebinding), and a strict Content-Security-Policy
//! allows nothing but this origin.

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
    ("/", INDEX.0, INDEX.1),
    (
        "/ui/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../ui/app.js"),
    ),
    (
        "/ui/app.css",
        "text/css; charset=utf-8",
        include_str!("../ui/app.css"),
    ),
    (
        "/ui/i18n/en.json",
        "application/json",
        include_str!("../ui/i18n/en.json"),
    ),
    (
        "/ui/i18n/ru.json",
        "application/json",
        include_str!("../ui/i18n/ru.json"),
    ),
    (
        "/ui/i18n/kk.json",
        "application/json",
        include_str!("../ui/i18n/kk.json"),
    ),
    ("/favicon.svg", "image/svg+xml", include_str!("../ui/favicon.svg")),
];

/// What the page may load and connect to: this origin, and the images it makes from API responses (`blob:`).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page's headers: its media type, the CSP, and how it may be cached.
fn headers(media_type: &'static str, cache: &'static str) -> [(header::HeaderName, &'static str); 5] {
    [
        (header::CONTENT_TYPE, media_type),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, cache),
    ]
}

/// The longest key the handover takes (the daemon's is 64 hexadecimal digits).
const MAX_KEY: usize = 512;

/// The key in a handover form body (`token=<hex>`), if it holds one.
fn handed_key(body: &[u8]) -> Option<&str> {
    std::str::from_utf8(body)
        .ok()?
        .split('&')
        .find_map(|field| field.strip_prefix("token="))
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY && k.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `POST /`: the page, with the handed-over key in the document for the page to take (see the module documentation).
/// Only a handover file may hand a key over: a form posted from a file has the Origin `null` (or none); one posted
/// by a web site names the site, and its key is ignored (a site cannot put a key of its choosing into the
/// operator's tab).
async fn handover(headers_in: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    let page = INDEX.1;
    let from_a_file = headers_in
        .get(header::ORIGIN)
        .is_none_or(|o| o.as_bytes() == b"null");
    let page = match handed_key(&body).filter(|_| from_a_file) {
        Some(key) => page.replacen(
            "<head>\n",
            &format!("<head>\n<meta name=\"tamga-key\" content=\"{key}\">\n"),
            1,
        ),
        None => page.to_owned(),
    };
    (headers(INDEX.0, "no-store"), page).into_response()
}

/// (media type, contents) of `/`.
const INDEX: (&str, &str) = ("text/html; charset=utf-8", include_str!("../ui/index.html"));

/// The page's files, behind the Host check.
pub fn router(hosts: Vec<String>) -> Router {
    let mut r = Router::new();
    for &(path, media_type, body) in FILES {
        let files = get(move || async move { (headers(media_type, "no-cache"), body) });
        r = r.route(path, if path == "/" { files.post(handover) } else { files });
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
        format!(
            "Host `{host}` is not this workstation's page: open http://127.0.0.1 with the configured port\n"
        ),
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

    fn messages(lang: &str) -> serde_json::Map<String, serde_json::Value> {
        let (_, _, body) = FILES
            .iter()
            .find(|(p, _, _)| *p == format!("/ui/i18n/{lang}.json"))
            .unwrap();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{lang}.json: {e}"))
    }

    /// Every message file has exactly the English keys, none empty, with the same placeholders.
    #[test]
    fn message_files_match_english() {
        let en = messages("en");
        let placeholders = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(k, _)| k.to_owned()))
                .collect();
            v.sort();
            v
        };
        for lang in LANGUAGES {
            let m = messages(lang);
            let extra: Vec<_> = m.keys().filter(|k| !en.contains_key(*k)).collect();
            let lacking: Vec<_> = en.keys().filter(|k| !m.contains_key(*k)).collect();
            assert!(
                extra.is_empty() && lacking.is_empty(),
                "{lang}: extra {extra:?}, lacking {lacking:?}"
            );
            for (k, v) in &m {
                let v = v.as_str().unwrap_or_default();
                assert!(!v.trim().is_empty(), "{lang}: `{k}` is empty");
                assert_eq!(
                    placeholders(v),
                    placeholders(en[k].as_str().unwrap_or_default()),
                    "{lang}: `{k}` has other placeholders than English"
                );
            }
        }
    }

    /// Every key the page names literally exists, and so does every key it builds from a value the agent sends
    /// (finger positions, exception reasons, scanner retry reasons, quality findings, photo checks, MRZ warnings
    /// and checks, device states, error codes the operator can meet).
    #[test]
    fn the_page_has_a_message_for_everything_it_shows() {
        let en = messages("en");
        let mut keys: Vec<String> = Vec::new();
        let js = include_str!("../ui/app.js");
        let html = include_str!("../ui/index.html");
        for (src, pat) in [(js, "t('"), (html, "data-i18n=\"")] {
            for (at, _) in src.match_indices(pat) {
                // `t(` as a call of its own, not the end of `get(` or `split(`.
                if src[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '.') {
                    continue;
                }
                let rest = &src[at + pat.len()..];
                let end = if pat.ends_with('"') { '"' } else { '\'' };
                keys.push(rest.split(end).next().unwrap_or_default().to_owned());
            }
        }
        let name = |v: serde_json::Value| v.as_str().unwrap().to_owned();
        use crate::capture::fingers::{ExceptionReason, FingerPosition};
        use tamga_drivers::zfm::command::RetryReason;
        use tamga_quality::fingerprint::Finding;
        for p in FingerPosition::ALL {
            keys.push(format!("finger.{}", name(serde_json::to_value(p).unwrap())));
        }
        for r in [
            ExceptionReason::Amputated,
            ExceptionReason::Bandaged,
            ExceptionReason::UnableToCapture,
        ] {
            keys.push(format!("reason.{}", name(serde_json::to_value(r).unwrap())));
        }
        for r in [
            RetryReason::NoFinger,
            RetryReason::CaptureFailed,
            RetryReason::TooDry,
            RetryReason::TooWet,
            RetryReason::PoorImage,
        ] {
            keys.push(format!("scanner.{}", name(serde_json::to_value(r).unwrap())));
        }
        for f in [
            Finding::NoFinger,
            Finding::SmallArea,
            Finding::OffCentre,
            Finding::LowContrast,
            Finding::TooWet,
            Finding::TooDry,
            Finding::UnclearRidges,
        ] {
            keys.push(format!("finding.{}", name(serde_json::to_value(f).unwrap())));
        }
        // The photo checks, as the checker names them: a portrait runs them all, an empty frame the rest.
        let portrait = image::load_from_memory(include_bytes!(
            "../../quality/tests/fixtures/photos/astronaut.png"
        ))
        .unwrap();
        let policy = tamga_quality::photo::PhotoPolicy::default();
        let blank = image::DynamicImage::new_rgb8(64, 64);
        for img in [&portrait, &blank] {
            for c in tamga_quality::photo::check_photo(img, &policy).checks {
                keys.push(format!("photo.{}", c.name));
                keys.push(match c.name {
                    "brightness" | "head_height" => format!("photo.advice.{}_low", c.name),
                    "face_count" => "photo.advice.face_count_none".to_owned(),
                    n => format!("photo.advice.{n}"),
                });
            }
        }
        use tamga_mrz::Warning;
        for w in [
            Warning::Expired,
            Warning::Minor,
            Warning::UnknownIssuingState,
            Warning::UnknownNationality,
            Warning::BirthDateUnknownParts,
            Warning::InvalidBirthDate,
            Warning::InvalidExpiryDate,
            Warning::InvalidSex,
            Warning::InvalidCharacters,
            Warning::UnexpectedDocumentCode,
            Warning::NameTruncated,
            Warning::NameRepaired,
        ] {
            keys.push(format!("mrz.warning.{}", name(serde_json::to_value(w).unwrap())));
        }
        let checks = serde_json::to_value(tamga_mrz::Checks {
            document_number: Some(true),
            birth_date: Some(true),
            expiry_date: Some(true),
            optional_data: Some(true),
            composite: Some(true),
        })
        .unwrap();
        for k in checks.as_object().unwrap().keys() {
            keys.push(format!("mrz.check.{k}"));
        }
        for st in ["ready", "busy", "unplugged", "unresponsive", "missing", "unknown"] {
            keys.push(format!("state.{st}"));
        }
        for st in ["queued", "sending", "delivered", "quarantined"] {
            keys.push(format!("bundle.{st}"));
        }
        for code in [
            "device_failed",
            "device_busy",
            "no_device",
            "incomplete",
            "disk_reserve",
            "no_session",
            "internal",
            "agent_down",
            "unauthorized",
        ] {
            keys.push(format!("error.{code}"));
            keys.push(format!("todo.{code}"));
        }
        let lacking: Vec<_> = keys.iter().filter(|k| !en.contains_key(k.as_str())).collect();
        assert!(lacking.is_empty(), "en.json lacks {lacking:?}");
        assert!(
            keys.len() > 150,
            "only {} keys found: is the scan broken?",
            keys.len()
        );
    }
}
