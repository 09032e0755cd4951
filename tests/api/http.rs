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
