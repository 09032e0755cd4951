//! Hostile requests: documents built to crash, freeze or flood the server are refused cheaply,
//! with a clear error, and leave it healthy.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Reply, TableLock, TestApp};

/// Asserts the server still answers its liveness probe at once.
async fn assert_healthy(app: &TestApp) {
    let started = Instant::now();
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        elapsed < Duration::from_millis(100),
        "/healthz took {elapsed:?}"
    );
}

/// Asserts `reply` refused the document as over a limit whose message contains `limit`.
fn assert_refused(reply: &Reply, limit: &str) {
    assert_eq!(reply.status, StatusCode::OK, "{:#}", reply.body);
    assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED");
    let message = reply.error()["message"].as_str().unwrap();
    assert!(message.contains(limit), "{message}");
    assert!(reply.body.get("data").is_none(), "{:#}", reply.body);
}

async fn get_query(app: &TestApp, query: &str, variables: Option<&str>) -> Reply {
    let mut params = vec![("query", query)];
    if let Some(variables) = variables {
        params.push(("variables", variables));
    }
    let url = url::Url::parse_with_params(&app.url("/graphql"), params).unwrap();
    Reply::from(reqwest::get(url).await.unwrap()).await
}

async fn post_count(app: &TestApp) -> usize {
    let reply = app
        .anonymous()
        .graphql("{ posts(first: 100) { edges { cursor } } }", json!({}))
        .await;
    reply.data()["posts"]["edges"].as_array().unwrap().len()
}

/// Documents nesting a list literal `depth` deep in each place a literal may stand.
fn nested_literals(depth: usize) -> Vec<String> {
    let list = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let object = format!("{}1{}", "{a:".repeat(depth), "}".repeat(depth));
    vec![
        format!("{{ posts(after: {list}) {{ __typename }} }}"),
        format!("{{ __typename @include(if: {object}) }}"),
        format!("query($a: [[Int]] = {list}) {{ __typename }}"),
        format!("mutation {{ createPost(input: {{ title: \"t\", content: {list} }}) {{ id }} }}"),
    ]
}

#[tokio::test]
async fn deep_literals_are_refused_before_the_parser() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    // 1,600 levels crashed the parser's stack; 5,000 unclosed brackets are 5 KB.
    for depth in [100, 1_600] {
        for document in nested_literals(depth) {
            let reply = alice.graphql(&document, json!({})).await;
            assert_refused(&reply, "more than 64 deep");
        }
    }
    let unclosed = format!("{{ posts(after: {}", "[".repeat(5_000));
    assert_refused(&alice.graphql(&unclosed, json!({})).await, "64 deep");
    for document in nested_literals(1_600) {
        let reply = get_query(&app, &document, None).await;
        assert_refused(&reply, "64 deep");
    }
    assert_healthy(&app).await;
    assert_eq!(post_count(&app).await, 0);
}

#[tokio::test]
async fn nesting_is_allowed_up_to_the_limit() {
    let app = TestApp::new().await;
    // `{`, `(` and 62 brackets are 64 levels: the document parses, and validation answers.
    let at_limit = format!(
        "{{ posts(after: {}1{}) {{ __typename }} }}",
        "[".repeat(62),
        "]".repeat(62)
    );
    let reply = app.anonymous().graphql(&at_limit, json!({})).await;
    assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        !reply.error()["message"].as_str().unwrap().contains("deep"),
        "{:#}",
        reply.body
    );
    let over = format!(
        "{{ posts(after: {}1{}) {{ __typename }} }}",
        "[".repeat(63),
        "]".repeat(63)
    );
    assert_refused(&app.anonymous().graphql(&over, json!({})).await, "64 deep");

    let configured = TestApp::builder()
        .with_env("GRAPHQL_MAX_NESTING", "8")
        .start()
        .await;
    let nine =
        "{ a: posts { edges { node { author { posts(after: [[[1]]]) { __typename } } } } } }";
    assert_refused(
        &configured.anonymous().graphql(nine, json!({})).await,
        "more than 8 deep",
    );
}

#[tokio::test]
async fn documents_are_limited_in_tokens() {
    let app = TestApp::new().await;
    // `{`, 1,998 fields and `}`: 2,000 tokens.
    let at_limit = format!("{{ __typename{}}}", " a".repeat(1_997));
    let reply = app.anonymous().graphql(&at_limit, json!({})).await;
    assert!(
        !reply.body.to_string().contains("tokens"),
        "{:#}",
        reply.body
    );
    let over = format!("{{{}}}", " a".repeat(1_999));
    assert_refused(
        &app.anonymous().graphql(&over, json!({})).await,
        "2000 tokens",
    );
    let far_over = format!("{{{}}}", ",a".repeat(7_000));
    assert_refused(
        &app.anonymous().graphql(&far_over, json!({})).await,
        "tokens",
    );
    assert_refused(&get_query(&app, &over, None).await, "2000 tokens");
    assert_healthy(&app).await;
}

fn nested_variable(depth: usize) -> Value {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!([value]);
    }
    value
}

#[tokio::test]
async fn variables_are_limited_in_nesting() {
    let app = TestApp::new().await;
    let query = "query($a: JSON) { __typename }";

    let at_limit = app
        .anonymous()
        .graphql(query, json!({ "a": nested_variable(64) }))
        .await;
    assert!(
        !at_limit.body.to_string().contains("deep"),
        "{:#}",
        at_limit.body
    );
    let over = app
        .anonymous()
        .graphql(query, json!({ "a": nested_variable(65) }))
        .await;
    assert_refused(&over, "more than 64 deep");
    // Far past the limit the JSON reader refuses it first, as a malformed request.
    let body = format!(
        r#"{{"query":"{{ __typename }}","variables":{{"a":{}1{}}}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.error_code(), "BAD_REQUEST");
    let variables = nested_variable(1_000).to_string();
    let reply = get_query(&app, "{ __typename }", Some(&variables)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_healthy(&app).await;
}

fn fragment_bomb(levels: usize) -> String {
    let mut document = format!("{{ ...F{levels} }} fragment F0 on Query {{ __typename }}");
    for level in 1..=levels {
        let previous = level - 1;
        document.push_str(&format!(
            " fragment F{level} on Query {{ ...F{previous} ...F{previous} }}"
        ));
    }
    document
}

#[tokio::test]
async fn fragment_bombs_are_refused_in_linear_time() {
    let app = TestApp::new().await;

    for levels in [13, 24, 31, 60] {
        let started = Instant::now();
        let reply = app
            .anonymous()
            .graphql(&fragment_bomb(levels), json!({}))
            .await;
        // Past 31 levels the spreads nest deeper than selections may.
        let limit = if levels > 31 {
            "more than 32 deep"
        } else {
            "fields once its fragments are expanded"
        };
        assert_refused(&reply, limit);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{levels} levels"
        );
    }
    // 2^12 = 4,096 fields are within the limit of 5,000.
    let reply = app.anonymous().graphql(&fragment_bomb(12), json!({})).await;
    assert_eq!(reply.data()["__typename"], "Query");

    let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
    assert_refused(
        &app.anonymous().graphql(cycle, json!({})).await,
        "spreads itself",
    );
    assert_healthy(&app).await;
}

#[tokio::test]
async fn lists_multiply_the_cost_of_their_selection() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();

    let one_list = "{ posts(first: 100) { edges { node { title author { name } } } } }";
    assert!(anonymous.graphql(one_list, json!({})).await.data()["posts"].is_object());
    let two_lists = "{ posts(first: 100) { edges { node { author { posts(first: 100) { edges { node { id } } } } } } } }";
    let reply = anonymous.graphql(two_lists, json!({})).await;
    assert_refused(&reply, "the limit is 5000");
    let message = reply.error()["message"].as_str().unwrap();
    assert!(message.contains("costs 30401"), "{message}");
    // The 144-byte query that once answered 60 MB.
    let three = "{posts(first:100){edges{node{author{posts(first:100){edges{node{author{posts(first:100){edges{node{content}}}}}}}}}}}}";
    assert_refused(
        &anonymous.graphql(three, json!({})).await,
        "the limit is 5000",
    );
    // Omitting `first` counts as 20; `first` in a variable counts as given.
    let defaulted = "{ posts { edges { node { author { posts { edges { node { id } } } } } } } }";
    assert!(anonymous.graphql(defaulted, json!({})).await.data()["posts"].is_object());
    let variable = "query($n: Int) { posts(first: $n) { edges { node { author { posts(first: $n) { edges { node { id } } } } } } } }";
    assert_refused(
        &anonymous.graphql(variable, json!({ "n": 100 })).await,
        "the limit is 5000",
    );
    assert_healthy(&app).await;
}

#[tokio::test]
async fn the_cost_limit_is_configurable() {
    let app = TestApp::builder()
        .with_env("GRAPHQL_MAX_COST", "100")
        .start()
        .await;
    let query = "{ posts(first: 30) { edges { node { id title } } } }";
    // 30 × (edges + node + id + title) + 1 = 121.
    assert_refused(
        &app.anonymous().graphql(query, json!({})).await,
        "costs 121; the limit is 100",
    );
}

#[tokio::test]
async fn oversized_responses_are_replaced_by_an_error() {
    let app = TestApp::builder()
        .with_env("GRAPHQL_MAX_RESPONSE_BYTES", "2000")
        .start()
        .await;
    let alice = app.signed_in("alice").await;
    for index in 0..3 {
        alice
            .create_post(&format!("Post {index}"), &"x".repeat(900))
            .await;
    }

    let reply = app
        .anonymous()
        .graphql("{ posts { edges { node { content } } } }", json!({}))
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.error_code(), "RESPONSE_TOO_LARGE");
    assert_eq!(reply.body["data"], Value::Null);
    let small = app
        .anonymous()
        .graphql(
            "{ posts(first: 1) { edges { node { content } } } }",
            json!({}),
        )
        .await;
    assert_eq!(small.data()["posts"]["edges"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_documents_do_not_stall_other_requests() {
    let app = TestApp::new().await;
    let attacker = app.anonymous();
    let bomb = fragment_bomb(40);
    let deep = nested_literals(1_600).remove(0);

    let attacks: Vec<_> = (0..4)
        .map(|index| {
            let attacker = attacker.clone();
            let document = if index % 2 == 0 {
                bomb.clone()
            } else {
                deep.clone()
            };
            tokio::spawn(async move { attacker.graphql(&document, json!({})).await })
        })
        .collect();
    let started = Instant::now();
    let normal = app
        .anonymous()
        .graphql("{ posts(first: 5) { edges { cursor } } }", json!({}))
        .await;
    assert!(normal.data()["posts"].is_object());
    assert!(started.elapsed() < Duration::from_secs(1));
    for attack in attacks {
        assert_eq!(
            attack.await.unwrap().error_code(),
            "GRAPHQL_VALIDATION_FAILED"
        );
    }
    assert_healthy(&app).await;
}

#[tokio::test]
async fn slow_requests_time_out_with_a_graphql_error_and_free_their_connection() {
    let app = TestApp::builder()
        .with_env("REQUEST_TIMEOUT_MS", "300")
        .with_env("DATABASE_POOL_SIZE", "1")
        .start()
        .await;
    let lock = TableLock::take(&app.database.url, "posts").await;

    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ posts { edges { cursor } } }" }))
        .send()
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let reply = Reply::from(response).await;

    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.error_code(), "TIMEOUT");
    assert_eq!(
        reply.headers["content-type"],
        "application/graphql-response+json"
    );
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert_healthy(&app).await;
    lock.release().await;
    // The pool's only connection came back: the next request is served.
    let reply = app
        .anonymous()
        .graphql("{ posts { edges { cursor } } }", json!({}))
        .await;
    assert!(reply.data()["posts"].is_object());
}

#[tokio::test]
async fn a_maximum_length_post_fits_in_the_body_limit() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let title = "😀".repeat(200);
    let content = "😀".repeat(10_000);
    // serde_json writes emoji as UTF-8; a client may escape them as surrogate pairs instead.
    let escape = |text: &str| text.replace('😀', "\\ud83d\\ude00");
    let body = format!(
        r#"{{"query":"mutation($t: String!, $c: String!) {{ createPost(input: {{title: $t, content: $c}}) {{ id }} }}","variables":{{"t":"{}","c":"{}"}}}}"#,
        escape(&title),
        escape(&content)
    );
    assert!(body.len() > 120_000);

    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .bearer_auth(alice.token.as_deref().unwrap())
        .body(body)
        .send()
        .await
        .unwrap();

    let reply = Reply::from(response).await;
    assert!(reply.data()["createPost"]["id"].is_string());
    assert_eq!(post_count(&app).await, 1);
}

#[tokio::test]
async fn oversized_bodies_get_a_graphql_error() {
    let app = TestApp::new().await;
    let padding = " ".repeat(festapi::http::MAX_BODY_BYTES);
    let body = format!(r#"{{"query":"{{ __typename {padding} }}"}}"#);

    for accept in ["application/json", "application/graphql-response+json"] {
        let response = reqwest::Client::new()
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .header("accept", accept)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let reply = Reply::from(response).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(reply.error_code(), "PAYLOAD_TOO_LARGE");
        assert_eq!(reply.headers["content-type"], accept);
    }
    assert_healthy(&app).await;
}

#[tokio::test]
async fn every_refusal_has_a_graphql_body() {
    let app = TestApp::new().await;
    let client = reqwest::Client::new();
    let graphql = app.url("/graphql");
    let expectations = [
        (
            client
                .put(&graphql)
                .json(&json!({ "query": "{ __typename }" })),
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            client.delete(&graphql),
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
        ),
        (
            client.post(&graphql).json(&json!({ "variables": {} })),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (
            client.post(&graphql).json(&json!({ "query": "" })),
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
        ),
        (client.get(&graphql), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        (
            client
                .post(&graphql)
                .header("content-type", "text/plain")
                .body(r#"{"query":"{ __typename }"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            client
                .post(&graphql)
                .bearer_auth("not-a-token")
                .json(&json!({ "query": "{ __typename }" })),
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
        ),
    ];
    for (request, status, code) in expectations {
        let reply = Reply::from(
            request
                .header("accept", "application/graphql-response+json")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, status, "{:#}", reply.body);
        assert_eq!(reply.error_code(), code);
        assert_eq!(
            reply.headers["content-type"],
            "application/graphql-response+json"
        );
    }
    let put = client.put(&graphql).send().await.unwrap();
    assert_eq!(put.headers()["allow"], "GET, POST");
}

#[tokio::test]
async fn field_errors_null_the_nearest_nullable_parent() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Title", "Body").await;
    // Users can no longer be read, and so neither can posts with their authors.
    crate::support::database::execute(
        &app.database.url,
        "ALTER TABLE users RENAME TO users_elsewhere",
    )
    .await;

    // The author is read with its post, so `post` fails; it may be null, so it is null.
    let reply = app
        .anonymous()
        .graphql(
            "query($id: ID!) { post(id: $id) { title author { name } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        reply.body["data"],
        json!({ "post": null }),
        "{:#}",
        reply.body
    );
    assert_eq!(reply.error_code(), "INTERNAL_SERVER_ERROR");
    assert_eq!(reply.error()["path"], json!(["post"]));

    // `posts: PostConnection!` may not be null: `data` is.
    let reply = app
        .anonymous()
        .graphql(
            "{ posts { edges { node { title author { name } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(reply.body["data"], Value::Null, "{:#}", reply.body);
    assert_eq!(reply.error()["path"], json!(["posts"]));

    // Users can be read again, posts no longer: `posts: PostConnection!` of a user fails, so the
    // user, who may be null, is null.
    crate::support::database::execute(
        &app.database.url,
        "ALTER TABLE users_elsewhere RENAME TO users; ALTER TABLE posts RENAME TO posts_elsewhere",
    )
    .await;
    let reply = alice
        .graphql(
            "query($id: ID!) { user(id: $id) { name posts { edges { node { title } } } } }",
            json!({ "id": alice.user_id() }),
        )
        .await;
    assert_eq!(
        reply.body["data"],
        json!({ "user": null }),
        "{:#}",
        reply.body
    );
    assert_eq!(reply.error_code(), "INTERNAL_SERVER_ERROR");
    assert_eq!(reply.error()["path"], json!(["user", "posts"]));
}
