//! The document cache and automatic persisted queries: a document is checked and parsed the
//! first time it is seen, what depends on the request is still checked on every request, and
//! Apollo's clients can send a known document by its SHA-256 alone.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Reply, TestApp};

const CACHE_METRIC: &str = "festapi_graphql_document_cache_total";

/// The hits and misses of the document cache, as `/metrics` counts them.
async fn cache_counts(app: &TestApp) -> (u64, u64) {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count = |result: &str| {
        let series = format!("{CACHE_METRIC}{{result=\"{result}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map_or(0, |value| value.parse().unwrap())
    };
    (count("hit"), count("miss"))
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

async fn post(app: &TestApp, body: &Value) -> Reply {
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .json(body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

async fn get(app: &TestApp, parameters: &[(&str, &str)]) -> Reply {
    let url = url::Url::parse_with_params(&app.url("/graphql"), parameters).unwrap();
    Reply::from(reqwest::get(url).await.unwrap()).await
}

fn assert_refused(reply: &Reply, code: &str, message: &str) {
    assert_eq!(reply.error_code(), code, "{:#}", reply.body);
    let text = reply.error()["message"].as_str().unwrap();
    assert!(text.contains(message), "{text}");
    assert!(
        reply.body.get("data").is_none_or(Value::is_null),
        "{:#}",
        reply.body
    );
}

#[tokio::test]
async fn a_repeated_document_is_checked_and_parsed_once() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();
    let query = "{ posts(first: 20) { edges { node { id title author { name } } } } }";
    let (hits, misses) = cache_counts(&app).await;

    for _ in 0..3 {
        assert!(anonymous.graphql(query, json!({})).await.data()["posts"].is_object());
    }
    // The same text by GET is the same document.
    assert!(get(&app, &[("query", query)]).await.data()["posts"].is_object());

    assert_eq!(cache_counts(&app).await, (hits + 3, misses + 1));
}

#[tokio::test]
async fn a_cached_document_still_checks_each_requests_variables() {
    let app = TestApp::builder()
        .with_env("GRAPHQL_MAX_COST", "100")
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    alice.create_post("First", "body").await;
    alice.create_post("Second", "body").await;
    let anonymous = app.anonymous();
    let query = "query($first: Int!) { posts(first: $first) { edges { node { title } } } }";
    let (hits, misses) = cache_counts(&app).await;

    let one = anonymous.graphql(query, json!({ "first": 1 })).await;
    assert_eq!(one.data()["posts"]["edges"].as_array().unwrap().len(), 1);
    let two = anonymous.graphql(query, json!({ "first": 2 })).await;
    assert_eq!(two.data()["posts"]["edges"].as_array().unwrap().len(), 2);

    // Missing, null, of the wrong type, nested too deep: each refused, though the document is
    // cached.
    let missing = anonymous.graphql(query, json!({})).await;
    assert_refused(&missing, "GRAPHQL_VALIDATION_FAILED", "was not provided");
    let null = anonymous.graphql(query, json!({ "first": null })).await;
    assert_refused(&null, "GRAPHQL_VALIDATION_FAILED", "must not be null");
    let text = anonymous.graphql(query, json!({ "first": "two" })).await;
    assert_eq!(
        text.body["errors"][0]["message"],
        "Invalid value for argument \"first\", expected type \"Int\""
    );
    assert_eq!(
        text.body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    let mut deep = json!(1);
    for _ in 0..70 {
        deep = json!([deep]);
    }
    let nested = anonymous
        .graphql(query, json!({ "first": 1, "other": deep }))
        .await;
    assert_refused(
        &nested,
        "GRAPHQL_VALIDATION_FAILED",
        "nest arrays and objects",
    );
    // The cost depends on the variables: 40 × (edges + node + title) + 1 is over 100.
    let costly = anonymous.graphql(query, json!({ "first": 40 })).await;
    assert_refused(
        &costly,
        "GRAPHQL_VALIDATION_FAILED",
        "costs 121; the limit is 100",
    );
    // And the cheap request after it still runs.
    let again = anonymous.graphql(query, json!({ "first": 1 })).await;
    assert_eq!(again.data()["posts"]["edges"].as_array().unwrap().len(), 1);

    assert_eq!(cache_counts(&app).await, (hits + 7, misses + 1));
}

#[tokio::test]
async fn a_cached_document_runs_the_operation_each_request_names() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();
    let query = "query A { a: __typename } query B { b: __typename }";

    let a = anonymous.graphql_named(query, "A").await;
    assert_eq!(a.data(), &json!({ "a": "Query" }));
    let b = anonymous.graphql_named(query, "B").await;
    assert_eq!(b.data(), &json!({ "b": "Query" }));
    let unknown = anonymous.graphql_named(query, "C").await;
    assert_refused(
        &unknown,
        "GRAPHQL_VALIDATION_FAILED",
        "no operation named \"C\"",
    );
    let unnamed = anonymous.graphql(query, json!({})).await;
    assert_refused(&unnamed, "GRAPHQL_VALIDATION_FAILED", "several operations");
}

#[tokio::test]
async fn a_document_over_a_limit_is_refused_every_time() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();
    let aliases: Vec<String> = (0..16).map(|n| format!("a{n}: me {{ id }}")).collect();
    let aliased = format!("{{ {} }}", aliases.join(" "));
    let long = format!("{{{}}}", " a".repeat(2_000));
    let invalid = "{ nope }";
    let (hits, misses) = cache_counts(&app).await;

    for _ in 0..3 {
        let reply = anonymous.graphql(&aliased, json!({})).await;
        assert_refused(
            &reply,
            "GRAPHQL_VALIDATION_FAILED",
            "aliases; the limit is 15",
        );
        let reply = anonymous.graphql(&long, json!({})).await;
        assert_refused(&reply, "GRAPHQL_VALIDATION_FAILED", "more than 2000 tokens");
        let reply = anonymous.graphql(invalid, json!({})).await;
        assert_refused(&reply, "GRAPHQL_VALIDATION_FAILED", "Unknown field");
    }
    // The invalid document passed the limits and is kept parsed; it fails validation each time.
    assert_eq!(cache_counts(&app).await, (hits + 2, misses + 7));
}

#[tokio::test]
async fn null_propagation_uses_the_cached_document() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();
    // Without a session `me` fails: it is answered `null`, not left out.
    for _ in 0..2 {
        let reply = anonymous.graphql("{ me { id } }", json!({})).await;
        assert_eq!(
            reply.body["data"],
            json!({ "me": null }),
            "{:#}",
            reply.body
        );
        assert_eq!(reply.error_code(), "UNAUTHENTICATED");
    }
}

#[tokio::test]
async fn concurrent_requests_for_one_document_each_get_their_own_answer() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();
    let query = "query($name: String!) { __type(name: $name) { name } }";
    let names = [
        "Query",
        "Post",
        "User",
        "Mutation",
        "PostConnection",
        "Nothing",
    ];

    let replies = futures_util::future::join_all(names.iter().cycle().take(24).map(|name| {
        let anonymous = &anonymous;
        async move {
            (
                name,
                anonymous.graphql(query, json!({ "name": name })).await,
            )
        }
    }))
    .await;

    for (name, reply) in replies {
        let expected = if *name == "Nothing" {
            json!(null)
        } else {
            json!(name)
        };
        assert_eq!(reply.data()["__type"]["name"], expected);
    }
}

#[tokio::test]
async fn an_unknown_hash_asks_for_the_document() {
    let app = TestApp::new().await;
    let hash = sha256("{ __typename }");

    let by_post = post(&app, &json!({ "extensions": persisted(&hash) })).await;
    let extensions = persisted(&hash).to_string();
    let by_get = get(&app, &[("extensions", &extensions)]).await;
    let strict = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "extensions": persisted(&hash) }))
        .send()
        .await
        .unwrap();
    let strict = Reply::from(strict).await;

    for reply in [by_post, by_get, strict] {
        // Apollo's persisted-query link looks for exactly this, in a successful response.
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.body,
            json!({ "errors": [{
                "message": "PersistedQueryNotFound",
                "extensions": { "code": "PERSISTED_QUERY_NOT_FOUND" },
            }] })
        );
    }
}

#[tokio::test]
async fn a_registered_hash_runs_by_post_and_get() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    alice.create_post("Persisted", "body").await;
    let query = "query Titles { posts(first: 5) { edges { node { title } } } }";
    let hash = sha256(query);

    let registered = post(
        &app,
        &json!({ "query": query, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(
        registered.data()["posts"]["edges"][0]["node"]["title"],
        "Persisted"
    );
    let by_post = post(&app, &json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(by_post.data(), registered.data());
    let extensions = persisted(&hash).to_string();
    let by_get = get(&app, &[("extensions", &extensions)]).await;
    assert_eq!(by_get.data(), registered.data());
    // GET answers are no more cacheable than before.
    assert_eq!(by_get.headers["cache-control"], "no-store");
    // With an operation name and variables too.
    let named = get(
        &app,
        &[
            ("operationName", "Titles"),
            ("variables", "{}"),
            ("extensions", &extensions),
        ],
    )
    .await;
    assert_eq!(named.data(), registered.data());
    // Hashes are hexadecimal in either case.
    let upper = post(
        &app,
        &json!({ "extensions": persisted(&hash.to_uppercase()) }),
    )
    .await;
    assert_eq!(upper.data(), registered.data());

    // Each instance learns the hashes it is sent.
    let other = app.another_instance().await;
    let elsewhere = post(&other, &json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(elsewhere.error_code(), "PERSISTED_QUERY_NOT_FOUND");
}

#[tokio::test]
async fn a_hash_that_does_not_match_its_document_is_refused() {
    let app = TestApp::new().await;
    let hash = sha256("{ __typename }");

    let reply = post(
        &app,
        &json!({ "query": "{ me { id } }", "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_refused(
        &reply,
        "PERSISTED_QUERY_HASH_MISMATCH",
        "provided sha does not match query",
    );
    // Nothing was registered under the hash.
    let later = post(&app, &json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(later.error_code(), "PERSISTED_QUERY_NOT_FOUND");
}

#[tokio::test]
async fn persisted_queries_other_than_version_1_with_a_hash_are_refused() {
    let app = TestApp::new().await;
    let hash = sha256("{ __typename }");

    let version = post(
        &app,
        &json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": hash } } }),
    )
    .await;
    assert_eq!(version.status, StatusCode::BAD_REQUEST);
    assert_refused(
        &version,
        "BAD_REQUEST",
        "Unsupported persisted query version 2",
    );

    for extension in [
        json!({ "sha256Hash": hash }),
        json!({ "version": 1 }),
        json!({ "version": 1, "sha256Hash": "abc" }),
        json!({ "version": 1, "sha256Hash": format!("+{}", &hash[1..]) }),
        json!({ "version": "1", "sha256Hash": hash }),
        json!("yes"),
    ] {
        let reply = post(
            &app,
            &json!({ "query": "{ __typename }", "extensions": { "persistedQuery": extension } }),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{extension}");
        assert_refused(&reply, "BAD_REQUEST", "must be {\"version\": 1");
    }
}

#[tokio::test]
async fn a_mutation_sent_by_hash_is_refused_over_get() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let mutation = "mutation { logout }";
    let hash = sha256(mutation);
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .bearer_auth(alice.token.as_deref().unwrap())
        .json(&json!({ "query": mutation, "extensions": persisted(&hash) }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let extensions = persisted(&hash).to_string();
    let reply = get(&app, &[("extensions", &extensions)]).await;

    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "POST");
}

#[tokio::test]
async fn a_document_over_a_limit_is_never_registered() {
    let app = TestApp::new().await;
    let aliases: Vec<String> = (0..16)
        .map(|n| format!("a{n}: __schema {{ __typename }}"))
        .collect();
    let aliased = format!("{{ {} }}", aliases.join(" "));
    let hash = sha256(&aliased);

    let reply = post(
        &app,
        &json!({ "query": aliased, "extensions": persisted(&hash) }),
    )
    .await;
    assert_refused(
        &reply,
        "GRAPHQL_VALIDATION_FAILED",
        "aliases; the limit is 15",
    );
    let later = post(&app, &json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(later.error_code(), "PERSISTED_QUERY_NOT_FOUND");
}

#[tokio::test]
async fn a_request_without_a_document_or_a_hash_is_refused() {
    let app = TestApp::new().await;
    for body in [
        json!({}),
        json!({ "extensions": { "persistedQuery": null } }),
    ] {
        let reply = post(&app, &body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert_refused(&reply, "BAD_REQUEST", "the request has no `query`");
    }
}
