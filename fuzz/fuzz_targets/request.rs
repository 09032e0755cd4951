//! Bytes in, response out: the whole request path, from the router to PostgreSQL.
//!
//! The first byte picks how the rest is sent (a POST body, a GET query string, or a bearer
//! token), so the fuzzer explores each entry point. Any answer is fine except a 5xx other than
//! 503 (the database being slow) or a body that is not JSON.
//!
//! Run with a nightly toolchain and a local PostgreSQL (see fuzz/README.md):
//! `cargo +nightly fuzz run request -- -max_total_time=600`

#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt as _;

struct Target {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let url = std::env::var("FUZZ_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/festapi_fuzz".to_owned());
        let config = festapi::Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some(url.clone()),
            "APP_ENV" => Some("test".to_owned()),
            // Every input arrives as the same client: rate limits would soon answer them all
            // with 429 instead of exercising the request path.
            name if name.starts_with("RATE_LIMIT_") => Some("0".to_owned()),
            _ => None,
        })
        .expect("a valid configuration");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime
            .block_on(festapi::server::prepare_database(&config.database))
            .expect("FUZZ_DATABASE_URL names a PostgreSQL server that can create the database");
        let state = festapi::AppState::new(&config).expect("the application state");
        Target {
            runtime,
            router: festapi::http::router(state),
        }
    })
}

fn request(data: &[u8]) -> Request<Body> {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let builder = Request::builder().uri("/graphql");
    match mode % 3 {
        0 => builder
            .method("POST")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(rest.to_vec())),
        1 => {
            let query: String = rest
                .iter()
                .map(|byte| format!("%{byte:02X}"))
                .collect();
            Request::builder()
                .uri(format!("/graphql?query={query}"))
                .method("GET")
                .body(Body::empty())
        }
        _ => builder
            .method("POST")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::AUTHORIZATION, [b"Bearer ".as_slice(), rest].concat())
            .body(Body::from(r#"{"query":"{ __typename }"}"#)),
    }
    .expect("a request")
}

fuzz_target!(|data: &[u8]| {
    let target = target();
    let request = request(data);
    target.runtime.block_on(async {
        let response = match target.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        assert!(
            !status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE,
            "{status}"
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("a body");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "not JSON: {}",
            String::from_utf8_lossy(&body)
        );
    });
});
