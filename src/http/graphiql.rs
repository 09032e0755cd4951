//! GraphiQL, served from the binary so that it works offline and under a strict
//! Content-Security-Policy: the page (`GET /`), a small script that mounts GraphiQL on
//! `/graphql`, and the vendored builds of GraphiQL, React and ReactDOM with their licences
//! (`assets/graphiql/vendor`, refreshed and checksummed by `scripts/vendor-graphiql`).
//!
//! The page has no inline script, so its policy allows scripts from this origin only. Vendored
//! files carry their version in their path, so browsers may keep them for a year; everything else
//! is left to the router's `no-store` default.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The Content-Security-Policy of the GraphiQL page. Scripts come from this origin only. Styles
/// may also be inline: GraphiQL's dialogs add a `<style>` element, sized to the scrollbar, to
/// lock scrolling while they are open. Its stylesheet embeds fonts and images as `data:` URLs.
/// Queries go to this origin, and nothing may frame the page.
const GRAPHIQL_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How long browsers may keep a vendored file: a year, as its path changes with its version.
const VERSIONED_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// A file the page loads, served at `/graphiql/{path}` from `assets/graphiql/{path}`.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

impl Asset {
    /// Whether the file is vendored, hence named by its version and never changed in place.
    fn is_versioned(&self) -> bool {
        self.path.starts_with("vendor/")
    }
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../../assets/graphiql/", $path)),
        }
    };
}

static ASSETS: [Asset; 9] = [
    asset!("init.js", JAVASCRIPT),
    asset!("page.css", CSS),
    asset!("vendor/graphiql-4.1.2/graphiql.min.js", JAVASCRIPT),
    asset!("vendor/graphiql-4.1.2/graphiql.min.css", CSS),
    asset!("vendor/graphiql-4.1.2/LICENSE", PLAIN_TEXT),
    asset!("vendor/react-18.3.1/react.production.min.js", JAVASCRIPT),
    asset!("vendor/react-18.3.1/LICENSE", PLAIN_TEXT),
    asset!(
        "vendor/react-dom-18.3.1/react-dom.production.min.js",
        JAVASCRIPT
    ),
    asset!("vendor/react-dom-18.3.1/LICENSE", PLAIN_TEXT),
];

/// `GET /`: the GraphiQL page, under its own Content-Security-Policy.
pub(crate) async fn page() -> Response {
    let mut response = Html(include_str!("../../assets/graphiql/index.html")).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(GRAPHIQL_CONTENT_SECURITY_POLICY),
    );
    response
}

/// `GET /graphiql/{path}`: one of the page's scripts, stylesheets or licences.
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    if asset.is_versioned() {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(VERSIONED_CACHE_CONTROL),
        );
    }
    response
}
