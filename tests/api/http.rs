//! GraphQL over HTTP: methods, media types, limits, health probes and failure modes.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{Reply, TestApp};

async fn post_raw(
    app: &TestApp,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = reqwest::Client::new().post(app.url("/graphql")).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    Reply::from(request.send().await.unwrap()).await
}

async fn get(app: &TestApp, path: &str) -> Reply {
    Reply::from(reqwest::get(app.url(path)).await.unwrap()).await
}

#[tokio::test]
async fn get_runs_queries() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    alice.create_post("Via GET", "body").await;

    let reply = get(
        &app,
        "/graphql?query=%7Bposts%7Bedges%7Bnode%7Btitle%7D%7D%7D%7D",
    )
    .await;

    assert_eq!(
        reply.data()["posts"]["edges"][0]["node"]["title"],
        "Via GET"
    );
    assert_eq!(reply.headers["content-type"], "application/json");
}

#[tokio::test]
async fn get_refuses_mutations() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let id = alice.create_post("Keep me", "body").await;
    let mutation = format!("mutation{{deletePost(id:\"{id}\")}}");

    let url = url::Url::parse_with_params(&app.url("/graphql"), [("query", &mutation)]).unwrap();
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(alice.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let still_there = app
        .anonymous()
        .graphql(
            "query($id: ID!) { post(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(still_there.data()["post"]["id"], id);
}

/// A GET to /graphql with these query-string parameters.
async fn get_with(app: &TestApp, parameters: &[(&str, &str)]) -> Reply {
    let url = url::Url::parse_with_params(&app.url("/graphql"), parameters).unwrap();
    Reply::from(reqwest::get(url).await.unwrap()).await
}

#[tokio::test]
async fn get_reads_operation_name_variables_and_extensions() {
    let app = TestApp::new().await;
    let two_operations =
        "query A { a: __typename } query B($name: String!) { b: __type(name: $name) { name } }";

    let reply = get_with(
        &app,
        &[
            ("query", two_operations),
            ("operationName", "B"),
            ("variables", r#"{"name":"Post"}"#),
            ("extensions", r#"{"persistedQuery":null}"#),
        ],
    )
    .await;
    assert_eq!(reply.data(), &json!({ "b": { "name": "Post" } }));
    let empty = get_with(
        &app,
        &[
            ("query", "{ __typename }"),
            ("variables", ""),
            ("extensions", "null"),
        ],
    )
    .await;
    assert_eq!(empty.data()["__typename"], "Query");

    // The operation GET runs is the one operationName names, so a mutation is spotted there too.
    let mutation = get_with(
        &app,
        &[
            ("query", "query A { __typename } mutation B { logout }"),
            ("operationName", "B"),
        ],
    )
    .await;
    assert_eq!(mutation.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(mutation.headers["allow"], "POST");

    for parameters in [
        [("variables", r#""{}""#), ("query", "{ __typename }")],
        [("variables", "[1]"), ("query", "{ __typename }")],
        [("extensions", r#""x""#), ("query", "{ __typename }")],
        [("extensions", "{"), ("query", "{ __typename }")],
        [
            ("query", "{ __typename }"),
            ("query", "mutation { logout }"),
        ],
    ] {
        let reply = get_with(&app, &parameters).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{parameters:?}");
        assert_eq!(reply.error_code(), "BAD_REQUEST", "{parameters:?}");
        assert_eq!(reply.headers["content-type"], "application/json");
        assert!(reply.body.get("data").is_none(), "{:#}", reply.body);
    }
}

#[tokio::test]
async fn post_bodies_must_be_single_json_requests() {
    let app = TestApp::new().await;
    let query = r#"{"query":"{ __typename }"}"#;

    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = post_raw(&app, content_type, query).await;
        assert_eq!(
            reply.status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
    }
    let ok = post_raw(&app, Some("application/json; charset=utf-8"), query).await;
    assert_eq!(ok.data()["__typename"], "Query");

    let batch = post_raw(&app, Some("application/json"), format!("[{query},{query}]")).await;
    assert_eq!(batch.status, StatusCode::BAD_REQUEST);
    assert_eq!(batch.error_code(), "BATCH_NOT_SUPPORTED");
    for malformed in ["{", "{\"query\": 1}", "null", ""] {
        let reply = post_raw(&app, Some("application/json"), malformed).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{malformed}");
        assert_eq!(reply.error_code(), "BAD_REQUEST", "{malformed}");
    }
}

#[tokio::test]
async fn accept_is_negotiated_by_weight_then_order() {
    let app = TestApp::new().await;
    let typename = json!({ "query": "{ __typename }" });
    const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
    const JSON: &str = "application/json";

    for (accept, media_type) in [
        ("application/graphql-response+json", GRAPHQL_RESPONSE),
        (
            "application/graphql-response+json; charset=utf-8",
            GRAPHQL_RESPONSE,
        ),
        (
            "application/graphql-response+json, application/json;q=0.9",
            GRAPHQL_RESPONSE,
        ),
        (
            "application/json, application/graphql-response+json;q=0.5",
            JSON,
        ),
        (
            "application/graphql-response+json;q=0, application/json",
            JSON,
        ),
        ("application/json, application/graphql-response+json", JSON),
        (
            "application/graphql-response+json, application/json",
            GRAPHQL_RESPONSE,
        ),
        ("*/*", JSON),
        ("application/*", JSON),
        (
            "*/*;q=0.1, application/graphql-response+json",
            GRAPHQL_RESPONSE,
        ),
        ("application/json;q=0, */*", GRAPHQL_RESPONSE),
        ("text/html, */*;q=0.1", JSON),
        ("application/json; charset=UTF-8", JSON),
        (
            "application/json; charset=iso-8859-1, application/graphql-response+json;q=0.1",
            GRAPHQL_RESPONSE,
        ),
    ] {
        let reply = post_accepting(&app, accept, typename.clone()).await;
        assert_eq!(reply.headers["content-type"], media_type, "{accept}");
        assert_eq!(reply.data()["__typename"], "Query", "{accept}");
    }

    for accept in [
        "text/html",
        "application/json;q=0",
        "application/graphql-response+json;q=0, application/*;q=0",
        "application/json; charset=iso-8859-1",
        "application/json;q=2",
    ] {
        let reply = post_accepting(&app, accept, typename.clone()).await;
        assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{accept}");
        assert_eq!(reply.headers["content-type"], JSON, "{accept}");
        assert_eq!(reply.error_code(), "NOT_ACCEPTABLE", "{accept}");
    }
}

#[tokio::test]
async fn json_bodies_must_be_utf_8() {
    let app = TestApp::new().await;
    let query = r#"{"query":"{ __typename }"}"#;

    for content_type in [
        "application/json;charset=UTF8",
        "application/json; charset=\"utf-8\"",
        "Application/JSON; boundary=ignored",
    ] {
        let reply = post_raw(&app, Some(content_type), query).await;
        assert_eq!(reply.data()["__typename"], "Query", "{content_type}");
    }
    let latin = post_raw(&app, Some("application/json; charset=iso-8859-1"), query).await;
    assert_eq!(latin.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(latin.headers["content-type"], "application/json");
    assert_eq!(latin.error_code(), "UNSUPPORTED_MEDIA_TYPE");
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::new().await;
    let padding = " ".repeat(festapi::http::MAX_BODY_BYTES);
    let body = format!(r#"{{"query":"{{ __typename {padding} }}"}}"#);

    let reply = post_raw(&app, Some("application/json"), body).await;

    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn documents_that_fail_to_parse_or_validate_have_codes() {
    let app = TestApp::new().await;
    let anonymous = app.anonymous();

    let parse = anonymous.graphql("{ posts { ", json!({})).await;
    assert_eq!(parse.status, StatusCode::OK);
    assert_eq!(parse.error_code(), "GRAPHQL_PARSE_FAILED");
    assert!(parse.body.get("data").is_none(), "{:#}", parse.body);
    let unknown = anonymous.graphql("{ postz { id } }", json!({})).await;
    assert_eq!(unknown.error_code(), "GRAPHQL_VALIDATION_FAILED");
    let bad_variable = anonymous
        .graphql(
            "query($first: Int) { posts(first: $first) { edges { cursor } } }",
            json!({ "first": "ten" }),
        )
        .await;
    assert!(
        bad_variable.body["errors"][0]["extensions"]["code"].is_string(),
        "{:#}",
        bad_variable.body
    );

    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ posts { " }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["content-type"],
        "application/graphql-response+json"
    );
    let refused = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("accept", "text/html")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_ACCEPTABLE);
}

/// POSTs `body` as JSON with `Accept: accept`, anonymously.
async fn post_accepting(app: &TestApp, accept: &str, body: serde_json::Value) -> Reply {
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

/// Asserts `reply` refused its request before running it, with `code`, and in the status and
/// media type `accept` calls for.
fn assert_refused_before_running(reply: &Reply, accept: &str, code: &str) {
    let (status, content_type) = match accept {
        "application/json" => (StatusCode::OK, "application/json"),
        _ => (StatusCode::BAD_REQUEST, "application/graphql-response+json"),
    };
    assert_eq!(reply.status, status, "{accept}: {:#}", reply.body);
    assert_eq!(reply.headers["content-type"], content_type, "{accept}");
    assert_eq!(reply.error_code(), code, "{accept}");
    assert!(reply.body.get("data").is_none(), "{:#}", reply.body);
}

#[tokio::test]
async fn requests_without_a_runnable_operation_are_refused_before_running() {
    let app = TestApp::new().await;

    for accept in ["application/json", "application/graphql-response+json"] {
        for body in [
            json!({ "query": "query A { __typename }", "operationName": "B" }),
            json!({ "query": "{ __typename }", "operationName": "A" }),
            json!({ "query": "query A { a: __typename } query B { b: __typename }" }),
        ] {
            let reply = post_accepting(&app, accept, body).await;
            assert_refused_before_running(&reply, accept, "GRAPHQL_VALIDATION_FAILED");
        }
    }
    let named = post_accepting(
        &app,
        "application/json",
        json!({ "query": "query A { a: __typename } query B { b: __typename }", "operationName": "B" }),
    )
    .await;
    assert_eq!(named.data(), &json!({ "b": "Query" }));
}

#[tokio::test]
async fn required_variables_must_have_values_before_anything_runs() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let create_then_delete = "mutation($id: ID!) { \
        createPost(input: { title: \"t\", content: \"c\" }) { id } deletePost(id: $id) }";

    // Without the check, createPost ran though the response said `data: null`.
    let missing = alice.graphql(create_then_delete, json!({})).await;
    assert_refused_before_running(&missing, "application/json", "GRAPHQL_VALIDATION_FAILED");
    assert!(
        missing.error()["message"]
            .as_str()
            .unwrap()
            .contains("\"$id\" of required type \"ID!\" was not provided"),
        "{:#}",
        missing.body
    );
    let null = alice
        .graphql(create_then_delete, json!({ "id": null }))
        .await;
    assert_eq!(null.error_code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(null.body.get("data").is_none(), "{:#}", null.body);
    let posts = alice
        .graphql("{ myPosts { edges { cursor } } }", json!({}))
        .await;
    assert_eq!(posts.data()["myPosts"]["edges"], json!([]));

    for accept in ["application/json", "application/graphql-response+json"] {
        let reply = post_accepting(
            &app,
            accept,
            json!({ "query": "query($id: ID!) { post(id: $id) { id } }", "variables": null }),
        )
        .await;
        assert_refused_before_running(&reply, accept, "GRAPHQL_VALIDATION_FAILED");
    }
    // A default stands in for a missing value, and nullable variables may be left out.
    let defaulted = app
        .anonymous()
        .graphql(
            "query($id: ID! = \"1\", $first: Int) { post(id: $id) { id } posts(first: $first) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(defaulted.data()["post"], json!(null));
}

#[tokio::test]
async fn deep_queries_are_refused() {
    let app = TestApp::new().await;
    let nested = |levels: usize| {
        let mut selection = String::from("id");
        for _ in 0..levels {
            selection =
                format!("posts(first: 1) {{ edges {{ node {{ author {{ {selection} }} }} }} }}");
        }
        format!("{{ {selection} }}")
    };

    // Three levels are 13 deep including the leaf; four are 17.
    assert!(app.anonymous().graphql(&nested(3), json!({})).await.data()["posts"].is_object());
    let reply = app.anonymous().graphql(&nested(4), json!({})).await;
    assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn alias_and_field_floods_are_refused() {
    let app = TestApp::new().await;
    let aliases = |count: usize| -> String {
        let fields: String = (0..count)
            .map(|index| format!("a{index}: posts(first: 1) {{ edges {{ cursor }} }} "))
            .collect();
        format!("{{ {fields} }}")
    };

    let allowed = app
        .anonymous()
        .graphql(&aliases(festapi::graphql::MAX_ALIASES), json!({}))
        .await;
    assert!(allowed.data()["a0"].is_object());
    let reply = app
        .anonymous()
        .graphql(&aliases(festapi::graphql::MAX_ALIASES + 1), json!({}))
        .await;
    assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED");
    assert!(
        reply.error()["message"]
            .as_str()
            .unwrap()
            .contains("aliases"),
        "{:#}",
        reply.body
    );

    let typenames: String = (0..100)
        .map(|index| format!("t{index}: __typename "))
        .collect();
    let reply = app
        .anonymous()
        .graphql(&format!("{{ {typenames} }}"), json!({}))
        .await;
    assert_eq!(reply.data()["t99"], "Query");

    let duplicated = "posts { edges { cursor } } ".repeat(200);
    let reply = app
        .anonymous()
        .graphql(&format!("{{ {duplicated} }}"), json!({}))
        .await;
    assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED");

    let padded = format!(
        "{{ __typename {} }}",
        " ".repeat(festapi::graphql::MAX_DOCUMENT_BYTES)
    );
    let reply = app.anonymous().graphql(&padded, json!({})).await;
    assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn graphiql_introspection_works_in_development() {
    let app = TestApp::builder()
        .with_env("APP_ENV", "development")
        .start()
        .await;

    let reply = app
        .anonymous()
        .graphql(INTROSPECTION_QUERY, json!({}))
        .await;

    let types = reply.data()["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|ty| ty["name"] == "PostConnection"));
}

/// The introspection query GraphiQL sends to draw its documentation explorer.
const INTROSPECTION_QUERY: &str = r"
query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description isRepeatable locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
";

#[tokio::test]
async fn responses_carry_a_request_id() {
    let app = TestApp::new().await;

    let generated = app.anonymous().graphql("{ __typename }", json!({})).await;
    assert!(!generated.headers["x-request-id"].is_empty());
    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("x-request-id", "trace-me-42")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
}

#[tokio::test]
async fn health_probes_answer() {
    let app = TestApp::new().await;

    assert_eq!(get(&app, "/healthz").await.body, json!({ "status": "ok" }));
    assert_eq!(get(&app, "/readyz").await.body, json!({ "status": "ok" }));
    let graphiql = reqwest::get(app.url("/")).await.unwrap();
    assert_eq!(graphiql.status(), StatusCode::OK);
    assert!(graphiql.text().await.unwrap().contains("graphiql"));
}

#[tokio::test]
async fn production_hides_graphiql_and_introspection() {
    let app = TestApp::builder()
        .with_env("APP_ENV", "production")
        .start()
        .await;

    assert_eq!(
        reqwest::get(app.url("/")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let reply = app
        .anonymous()
        .graphql("{ __schema { types { name } } }", json!({}))
        .await;
    assert_eq!(reply.data()["__schema"], json!(null));
}

#[tokio::test]
async fn exhausted_pool_answers_service_unavailable_quickly() {
    let app = TestApp::builder()
        .with_env("DATABASE_POOL_SIZE", "1")
        .with_env("DATABASE_POOL_TIMEOUT_MS", "200")
        .start()
        .await;
    let held = app.state.database.connection().await.unwrap();

    let started = Instant::now();
    let reply = app
        .anonymous()
        .graphql("{ posts { edges { cursor } } }", json!({}))
        .await;

    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(reply.error_code(), "SERVICE_UNAVAILABLE");
    assert!(!reply.body.to_string().contains("pool"), "{:#}", reply.body);
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    assert_eq!(get(&app, "/readyz").await.status, StatusCode::OK);
}

#[tokio::test]
async fn database_failures_are_masked_with_a_request_id() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    {
        use diesel_async::SimpleAsyncConnection as _;
        let mut connection = app.state.database.connection().await.unwrap();
        connection.batch_execute("DROP TABLE posts").await.unwrap();
    }

    let reply = alice
        .graphql(
            "mutation { createPost(input: { title: \"t\", content: \"c\" }) { id } }",
            json!({}),
        )
        .await;

    assert_eq!(reply.error_code(), "INTERNAL_SERVER_ERROR");
    assert_eq!(reply.error()["message"], "internal server error");
    assert!(
        reply.error()["extensions"]["requestId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    let text = reply.body.to_string();
    assert!(
        !text.contains("posts") && !text.contains("relation"),
        "{text}"
    );
}

#[tokio::test]
async fn cross_origin_calls_follow_the_configured_origins() {
    let app = TestApp::builder()
        .with_env("CORS_ALLOWED_ORIGINS", "https://app.example.test")
        .start()
        .await;
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };

    let allowed = preflight("https://app.example.test").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.test"
    );
    assert!(
        allowed
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let default_app = TestApp::new().await;
    let response = reqwest::Client::new()
        .post(default_app.url("/graphql"))
        .header("origin", "https://app.example.test")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn choosing_an_operation_that_is_not_there_is_a_validation_failure() {
    let app = TestApp::new().await;
    let document = "query A { __typename } query B { __typename }";

    for body in [
        json!({ "query": document, "operationName": "C" }),
        json!({ "query": document }),
    ] {
        let response = reqwest::Client::new()
            .post(app.url("/graphql"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let reply = Reply::from(response).await;
        assert_eq!(reply.error_code(), "GRAPHQL_VALIDATION_FAILED", "{body}");
        assert!(reply.body.get("data").is_none(), "{:#}", reply.body);
    }
}
