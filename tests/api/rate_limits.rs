//! Rate limits per client address and per user, stricter for mutations, and the client address
//! behind trusted proxies.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Reply, TestApp};

const QUERY: &str = "{ __typename }";
const MUTATION: &str = r#"mutation { createPost(input: { title: "t", content: "c" }) { id } }"#;

/// POSTs `query`, signed in with `token` when given, through a proxy that says the client is
/// `forwarded_for` when given.
async fn post(
    app: &TestApp,
    query: &str,
    token: Option<&str>,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut request = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(&json!({ "query": query }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    Reply::from(request.send().await.unwrap()).await
}

fn assert_admitted(reply: &Reply, case: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{case}: {:#}", reply.body);
    assert!(
        reply.body.get("errors").is_none(),
        "{case}: {:#}",
        reply.body
    );
}

/// Asserts `reply` is a 429 asking to retry within `most_seconds`.
fn assert_rate_limited(reply: &Reply, most_seconds: u64, case: &str) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{case}: {:#}",
        reply.body
    );
    assert_eq!(reply.error_code(), "RATE_LIMITED", "{case}");
    assert_eq!(reply.headers["content-type"], "application/json", "{case}");
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=most_seconds).contains(&retry_after),
        "{case}: Retry-After {retry_after}"
    );
}

#[tokio::test]
async fn requests_over_the_per_address_limit_get_429_with_retry_after() {
    let app = TestApp::builder()
        .with_env("RATE_LIMIT_PER_IP_PER_MINUTE", "2")
        .start()
        .await;

    assert_admitted(&post(&app, QUERY, None, None).await, "first");
    assert_admitted(&post(&app, QUERY, None, None).await, "second");
    // Two a minute refill one every 30 seconds.
    assert_rate_limited(&post(&app, QUERY, None, None).await, 30, "third");
    let over_get = Reply::from(
        reqwest::get(app.url("/graphql?query=%7B__typename%7D"))
            .await
            .unwrap(),
    )
    .await;
    assert_rate_limited(&over_get, 30, "GET");
    let asked_for_graphql_response_json = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": QUERY }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        asked_for_graphql_response_json.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        asked_for_graphql_response_json.headers()["content-type"],
        "application/graphql-response+json"
    );
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_signed_in_user_is_limited_from_every_address() {
    let app = TestApp::builder()
        .with_env("RATE_LIMIT_PER_IP_PER_MINUTE", "0")
        .with_env("RATE_LIMIT_PER_USER_PER_MINUTE", "2")
        .with_env("TRUSTED_PROXIES", "127.0.0.1/32")
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let alice_token = alice.token.as_deref();

    assert_admitted(
        &post(&app, QUERY, alice_token, Some("198.51.100.1")).await,
        "1st",
    );
    assert_admitted(
        &post(&app, QUERY, alice_token, Some("198.51.100.2")).await,
        "2nd",
    );
    let third = post(&app, QUERY, alice_token, Some("198.51.100.3")).await;
    assert_rate_limited(&third, 30, "alice from a third address");

    assert_admitted(
        &post(&app, QUERY, bob.token.as_deref(), Some("198.51.100.1")).await,
        "bob",
    );
    assert_admitted(
        &post(&app, QUERY, None, Some("198.51.100.1")).await,
        "anonymous",
    );
}

#[tokio::test]
async fn mutations_have_stricter_limits_per_address_and_per_user() {
    let app = TestApp::builder()
        .with_env("RATE_LIMIT_PER_IP_PER_MINUTE", "100")
        .with_env("RATE_LIMIT_PER_USER_PER_MINUTE", "100")
        .with_env("RATE_LIMIT_MUTATIONS_PER_MINUTE", "1")
        .with_env("TRUSTED_PROXIES", "127.0.0.1/32")
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    let bob = app.signed_in("bob").await;
    let (alice, bob) = (alice.token.as_deref(), bob.token.as_deref());
    let (first_address, second_address) = (Some("198.51.100.1"), Some("198.51.100.2"));

    assert_admitted(
        &post(&app, MUTATION, alice, first_address).await,
        "alice's 1st",
    );
    let per_user = post(&app, MUTATION, alice, second_address).await;
    assert_rate_limited(&per_user, 60, "alice's 2nd, from another address");
    assert_admitted(
        &post(&app, QUERY, alice, second_address).await,
        "alice's query",
    );

    let per_address = post(&app, MUTATION, bob, first_address).await;
    assert_rate_limited(&per_address, 60, "bob from alice's address");
    assert_admitted(
        &post(&app, MUTATION, bob, Some("198.51.100.3")).await,
        "bob elsewhere",
    );

    let posts = post(
        &app,
        "{ posts { edges { cursor } } }",
        None,
        Some("198.51.100.9"),
    )
    .await;
    assert_eq!(posts.data()["posts"]["edges"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_separately() {
    let app = TestApp::builder()
        .with_env("RATE_LIMIT_PER_IP_PER_MINUTE", "1")
        .with_env("TRUSTED_PROXIES", "127.0.0.1/32")
        .start()
        .await;

    assert_admitted(
        &post(&app, QUERY, None, Some("198.51.100.1")).await,
        "client 1",
    );
    assert_admitted(
        &post(&app, QUERY, None, Some("198.51.100.2")).await,
        "client 2",
    );
    assert_rate_limited(
        &post(&app, QUERY, None, Some("198.51.100.1")).await,
        60,
        "client 1 again",
    );
    // What a client writes left of the address the proxy appended changes nothing.
    let forged = post(&app, QUERY, None, Some("203.0.113.50, 198.51.100.1")).await;
    assert_rate_limited(&forged, 60, "client 1 with a forged entry");
    // A request the proxy sends without the header is the proxy's own.
    assert_admitted(&post(&app, QUERY, None, None).await, "the proxy itself");
}

#[tokio::test]
async fn an_untrusted_peer_cannot_escape_its_limit_with_forwarding_headers() {
    let app = TestApp::builder()
        .with_env("RATE_LIMIT_PER_IP_PER_MINUTE", "1")
        .start()
        .await;

    assert_admitted(
        &post(&app, QUERY, None, Some("198.51.100.1")).await,
        "first",
    );
    for index in 2..=4 {
        let forged = format!("198.51.100.{index}");
        let reply = post(&app, QUERY, None, Some(&forged)).await;
        assert_rate_limited(&reply, 60, &forged);
    }
    let reply = Reply::from(
        reqwest::Client::new()
            .post(app.url("/graphql"))
            .header("forwarded", "for=198.51.100.99")
            .json(&json!({ "query": QUERY }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_rate_limited(&reply, 60, "Forwarded");
}

#[tokio::test]
async fn zero_turns_the_limits_off() {
    let app = TestApp::builder()
        .with_env("RATE_LIMIT_PER_IP_PER_MINUTE", "0")
        .with_env("RATE_LIMIT_PER_USER_PER_MINUTE", "0")
        .with_env("RATE_LIMIT_MUTATIONS_PER_MINUTE", "0")
        .start()
        .await;
    let alice = app.signed_in("alice").await;

    for round in 0..5 {
        let case = format!("round {round}");
        assert_admitted(&post(&app, QUERY, None, None).await, &case);
        assert_admitted(
            &post(&app, MUTATION, alice.token.as_deref(), None).await,
            &case,
        );
    }
}
