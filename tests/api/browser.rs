//! What browsers see: security headers on every response, caching, CORS preflights, and GraphiQL
//! served from the binary, checked byte for byte and in a real headless Chromium.

use std::time::Duration;

use festapi::config::DEFAULT_CORS_ALLOWED_HEADERS;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::support::TestApp;
use crate::support::chromium::{Browser, Page};

const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";
const ALLOWED_ORIGIN: &str = "https://app.example.test";
const VENDOR_DIRECTORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/graphiql/vendor");

async fn send(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn post_json(
    app: &TestApp,
    body: impl Into<reqwest::Body>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn assert_browser_headers(headers: &HeaderMap, content_security_policy: &str, what: &str) {
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["referrer-policy"], "no-referrer", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert_eq!(
        headers["content-security-policy"], content_security_policy,
        "{what}"
    );
}

/// The value of the header `name`, or "" when it is absent.
fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map_or("", |value| value.to_str().unwrap())
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let token = alice.token.as_deref();
    let oversized = format!(
        r#"{{"query":"{{ __typename {} }}"}}"#,
        " ".repeat(festapi::http::MAX_BODY_BYTES)
    );

    let responses = [
        (
            StatusCode::OK,
            post_json(&app, r#"{"query":"{ me { id } }"}"#, token).await,
        ),
        (StatusCode::BAD_REQUEST, post_json(&app, "{", None).await),
        (
            StatusCode::UNAUTHORIZED,
            post_json(&app, r#"{"query":"{ __typename }"}"#, Some("not-a-token")).await,
        ),
        (
            StatusCode::NOT_FOUND,
            send(&app, Method::GET, "/nowhere", None).await,
        ),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            send(&app, Method::PUT, "/graphql", None).await,
        ),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            send(
                &app,
                Method::GET,
                "/graphql?query=mutation%7Blogout%7D",
                token,
            )
            .await,
        ),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            post_json(&app, oversized, None).await,
        ),
        (
            StatusCode::OK,
            send(&app, Method::GET, "/healthz", None).await,
        ),
        (
            StatusCode::OK,
            send(&app, Method::GET, "/readyz", None).await,
        ),
        (
            StatusCode::OK,
            send(&app, Method::GET, "/graphiql/init.js", None).await,
        ),
    ];
    for (status, response) in responses {
        let what = format!("{} {}", response.status(), response.url().path());
        assert_eq!(response.status(), status, "{what}");
        assert_browser_headers(response.headers(), API_POLICY, &what);
    }

    let graphiql = send(&app, Method::GET, "/", None).await;
    assert_eq!(graphiql.status(), StatusCode::OK);
    let policy = header(graphiql.headers(), "content-security-policy");
    assert_browser_headers(graphiql.headers(), policy, "GraphiQL");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

#[tokio::test]
async fn graphql_and_signed_in_responses_are_never_stored() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let token = alice.token.as_deref();
    let vendored_script = "/graphiql/vendor/react-18.3.1/react.production.min.js";

    let never_stored = [
        post_json(&app, r#"{"query":"{ posts { edges { cursor } } }"}"#, None).await,
        post_json(&app, r#"{"query":"{ me { email } }"}"#, token).await,
        post_json(&app, r#"{"query":"{ me { email } }"}"#, Some("expired")).await,
        send(&app, Method::GET, "/graphql?query=%7B__typename%7D", None).await,
        send(
            &app,
            Method::GET,
            "/graphql?query=%7Bme%7Bemail%7D%7D",
            token,
        )
        .await,
        send(&app, Method::GET, "/healthz", None).await,
        send(&app, Method::GET, "/", None).await,
        // Credentials rule out shared caching even of a file that is the same for everyone.
        send(&app, Method::GET, vendored_script, token).await,
    ];
    for response in never_stored {
        let what = format!("{} {}", response.status(), response.url());
        assert_eq!(
            header(response.headers(), "cache-control"),
            "no-store",
            "{what}"
        );
    }

    let anonymous = send(&app, Method::GET, vendored_script, None).await;
    assert_eq!(
        header(anonymous.headers(), "cache-control"),
        "public, max-age=31536000, immutable"
    );
}

/// Sends the preflight a browser at `ALLOWED_ORIGIN` sends before a POST with `headers`.
async fn preflight(app: &TestApp, headers: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, app.url("/graphql"))
        .header("origin", ALLOWED_ORIGIN)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .unwrap()
}

/// The header names a preflight response allows, lowercase.
fn allowed_headers(response: &reqwest::Response) -> Vec<String> {
    header(response.headers(), "access-control-allow-headers")
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

#[tokio::test]
async fn preflights_allow_tracing_and_apollo_headers_by_default() {
    let app = TestApp::builder()
        .with_env("CORS_ALLOWED_ORIGINS", ALLOWED_ORIGIN)
        .start()
        .await;

    let response = preflight(&app, "traceparent, authorization, content-type").await;

    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        ALLOWED_ORIGIN
    );
    let allowed = allowed_headers(&response);
    for name in DEFAULT_CORS_ALLOWED_HEADERS {
        assert!(
            allowed.iter().any(|allowed| allowed == name),
            "{name}: {allowed:?}"
        );
    }
    let unlisted = preflight(&app, "x-not-listed").await;
    assert!(!allowed_headers(&unlisted).contains(&"x-not-listed".to_owned()));
    assert_browser_headers(unlisted.headers(), API_POLICY, "a preflight");
}

#[tokio::test]
async fn preflights_follow_cors_allowed_headers() {
    let app = TestApp::builder()
        .with_env("CORS_ALLOWED_ORIGINS", ALLOWED_ORIGIN)
        .with_env(
            "CORS_ALLOWED_HEADERS",
            "Authorization, Content-Type, X-Tenant-Id",
        )
        .start()
        .await;

    let allowed = allowed_headers(&preflight(&app, "authorization, x-tenant-id").await);

    assert_eq!(allowed, ["authorization", "content-type", "x-tenant-id"]);
}

/// The values of every `attribute="..."` in `html`.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let marker = format!(" {attribute}=\"");
    html.match_indices(&marker)
        .filter_map(|(start, _)| {
            let value = &html[start + marker.len()..];
            value.split('"').next()
        })
        .collect()
}

#[tokio::test]
async fn graphiql_page_loads_only_same_origin_files_and_no_inline_script() {
    let app = TestApp::new().await;
    let response = send(&app, Method::GET, "/", None).await;
    let policy = header(response.headers(), "content-security-policy").to_owned();
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    let html = response.text().await.unwrap();

    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            policy.split("; ").any(|item| item == directive),
            "{directive}: {policy}"
        );
    }
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert!(!html.contains("://"), "no other origin: {html}");
    assert!(
        !html.contains("<style") && !html.contains(" style="),
        "{html}"
    );
    let scripts = html.matches("<script").count();
    assert_eq!(
        scripts,
        html.matches("></script>").count(),
        "inline script: {html}"
    );
    assert_eq!(scripts, attribute_values(&html, "src").len(), "{html}");
    assert!(
        attribute_values(&html, "src").contains(&"/graphiql/init.js"),
        "{html}"
    );

    let mut references = attribute_values(&html, "src");
    references.extend(attribute_values(&html, "href"));
    for reference in references {
        if reference == "data:," {
            continue;
        }
        assert!(
            reference.starts_with('/') && !reference.starts_with("//"),
            "{reference}"
        );
        let file = send(&app, Method::GET, reference, None).await;
        assert_eq!(file.status(), StatusCode::OK, "{reference}");
    }
}

#[tokio::test]
async fn graphiql_files_match_the_vendored_checksums() {
    let app = TestApp::new().await;
    let checksums = std::fs::read_to_string(format!("{VENDOR_DIRECTORY}/SHA256SUMS")).unwrap();

    let mut files = 0;
    for line in checksums.lines() {
        let (expected, path) = line.split_once("  ").unwrap();
        let response = send(&app, Method::GET, &format!("/graphiql/vendor/{path}"), None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = match path.rsplit_once('.') {
            Some((_, "js")) => "text/javascript; charset=utf-8",
            Some((_, "css")) => "text/css; charset=utf-8",
            _ => "text/plain; charset=utf-8",
        };
        assert_eq!(
            header(response.headers(), "content-type"),
            content_type,
            "{path}"
        );
        let served = response.bytes().await.unwrap();
        assert_eq!(format!("{:x}", Sha256::digest(&served)), expected, "{path}");
        files += 1;
    }
    assert_eq!(files, 7, "three packages: their builds and licences");

    for (path, content_type) in [
        ("init.js", "text/javascript; charset=utf-8"),
        ("page.css", "text/css; charset=utf-8"),
    ] {
        let response = send(&app, Method::GET, &format!("/graphiql/{path}"), None).await;
        assert_eq!(
            header(response.headers(), "content-type"),
            content_type,
            "{path}"
        );
        let on_disk = std::fs::read(format!(
            "{}/assets/graphiql/{path}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(response.bytes().await.unwrap(), on_disk, "{path}");
    }
    let missing = send(&app, Method::GET, "/graphiql/vendor/SHA256SUMS", None).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn production_serves_no_graphiql() {
    let app = TestApp::builder()
        .with_env("APP_ENV", "production")
        .start()
        .await;

    for path in [
        "/",
        "/graphiql/init.js",
        "/graphiql/vendor/graphiql-4.1.2/graphiql.min.js",
    ] {
        let response = send(&app, Method::GET, path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_browser_headers(response.headers(), API_POLICY, path);
    }
}

/// GraphiQL's editor for headers, once its Headers tab is open.
const HEADERS_EDITOR: &str =
    "section.graphiql-editor-tool[aria-label=Headers] .graphiql-editor:not(.hidden) .CodeMirror";
const QUERY_EDITOR: &str = ".graphiql-query-editor .CodeMirror";
/// The text of GraphiQL's response pane.
const RESPONSE_TEXT: &str =
    "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()";

/// Replaces the text of the CodeMirror editor at `selector` with `text`, as a paste would.
async fn paste_into(page: &mut Page, selector: &str, text: &str) {
    page.evaluate(&format!(
        "(() => {{ const editor = document.querySelector('{selector}').CodeMirror; \
         editor.focus(); editor.execCommand('selectAll'); return true; }})()"
    ))
    .await;
    page.insert_text(text).await;
}

#[tokio::test]
async fn graphiql_runs_a_query_with_a_pasted_token_in_chromium() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let app = TestApp::new().await;
    let ada = app.signed_in("ada").await;
    let token = ada.token.clone().unwrap();

    let page = &mut browser.page;
    let run = async {
        page.navigate(&app.url("/")).await;
        page.wait_for(
            "document.querySelector('.graphiql-container .graphiql-query-editor .CodeMirror')",
        )
        .await;
        page.evaluate("document.querySelector('button[data-name=headers]').click()")
            .await;
        page.wait_for(&format!("document.querySelector('{HEADERS_EDITOR}')"))
            .await;
        let headers = json!({ "Authorization": format!("Bearer {token}") });
        paste_into(page, HEADERS_EDITOR, &headers.to_string()).await;
        paste_into(page, QUERY_EDITOR, "{ me { email } }").await;
        page.evaluate("document.querySelector('.graphiql-execute-button').click()")
            .await;
        page.wait_for(&format!("{RESPONSE_TEXT}.includes('ada@example.test')"))
            .await;
        let response = page.evaluate(RESPONSE_TEXT).await;
        // Dialogs add a <style> element to lock scrolling while they are open.
        page.evaluate(
            "document.querySelector('button[aria-label=\"Open settings dialog\"]').click()",
        )
        .await;
        page.wait_for("document.querySelector('[role=dialog]')")
            .await;
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("GraphiQL answers within 20 seconds");

    let response: serde_json::Value = serde_json::from_str(response.as_str().unwrap()).unwrap();
    assert_eq!(
        response,
        json!({ "data": { "me": { "email": "ada@example.test" } } })
    );
    assert_eq!(browser.page.csp_violations().await, json!([]));
    assert!(
        browser.page.problems.is_empty(),
        "{:#?}",
        browser.page.problems
    );
    browser.close().await;
}
