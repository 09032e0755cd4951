//! Bearer tokens: what is accepted, what is refused, and logout.

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TEST_JWT_SECRET, TestApp};

/// Claims of a token FestAPI would accept for `user_id`, to be spoiled by each test.
fn valid_claims(user_id: &str) -> Value {
    let now = Utc::now().timestamp();
    json!({
        "iss": "festapi",
        "aud": "festapi",
        "sub": user_id,
        "iat": now,
        "exp": now + 600,
        "jti": uuid::Uuid::new_v4().to_string(),
        "token_type": "access",
    })
}

fn sign(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a signed token")
}

async fn me_with_token(app: &TestApp, token: &str) -> crate::support::Reply {
    app.with_token(token)
        .graphql("{ me { id } }", json!({}))
        .await
}

#[tokio::test]
async fn hand_made_valid_token_is_accepted() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;

    let reply = me_with_token(
        &app,
        &sign(&valid_claims(alice.id.as_str()), TEST_JWT_SECRET),
    )
    .await;

    assert_eq!(reply.data()["me"]["id"], alice.id.as_str());
}

#[tokio::test]
async fn unusable_tokens_are_refused_never_anonymous() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;
    let spoiled = |change: &dyn Fn(&mut Value)| {
        let mut claims = valid_claims(alice.id.as_str());
        change(&mut claims);
        sign(&claims, TEST_JWT_SECRET)
    };
    let now = Utc::now().timestamp();
    let cases = [
        ("garbage", "not-a-jwt".to_owned()),
        (
            "other secret",
            sign(
                &valid_claims(alice.id.as_str()),
                "another-secret-of-at-least-32-bytes!",
            ),
        ),
        (
            "expired",
            spoiled(&|claims| claims["exp"] = json!(now - 120)),
        ),
        (
            "exp as a string",
            spoiled(&|claims| claims["exp"] = json!("99999999999")),
        ),
        (
            "wrong issuer",
            spoiled(&|claims| claims["iss"] = json!("someone-else")),
        ),
        (
            "wrong audience",
            spoiled(&|claims| claims["aud"] = json!("another-api")),
        ),
        (
            "no issuer",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("iss"))),
        ),
        (
            "no audience",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("aud"))),
        ),
        (
            "no subject",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("sub"))),
        ),
        (
            "no jti",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("jti"))),
        ),
        (
            "no iat",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("iat"))),
        ),
        (
            "no type",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("token_type"))),
        ),
        (
            "refresh type",
            spoiled(&|claims| claims["token_type"] = json!("refresh")),
        ),
        (
            "unknown user",
            spoiled(&|claims| claims["sub"] = json!("google_404")),
        ),
        ("too long", "a".repeat(8 * 1024)),
    ];

    for (case, token) in cases {
        let reply = me_with_token(&app, &token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {:#}",
            reply.body
        );
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{case}");
        assert!(reply.headers.contains_key("www-authenticate"), "{case}");
        // A public query with the same header is refused too, not answered anonymously.
        let public = app
            .with_token(&token)
            .graphql("{ posts { edges { cursor } } }", json!({}))
            .await;
        assert_eq!(public.error_code(), "UNAUTHENTICATED", "{case}");
    }
}

#[tokio::test]
async fn unsigned_and_asymmetric_algorithms_are_refused() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;
    use base64::Engine as _;
    let encode =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let claims = encode(&valid_claims(alice.id.as_str()));
    let none = format!(
        "{}.{claims}.",
        encode(&json!({ "alg": "none", "typ": "JWT" }))
    );
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &valid_claims(alice.id.as_str()),
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .unwrap();

    for token in [none, hs512] {
        let reply = me_with_token(&app, &token).await;
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{token}");
    }
}

#[tokio::test]
async fn authorization_header_must_be_bearer() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;
    let token = alice.token.clone().unwrap();

    for header in [
        format!("Basic {token}"),
        "Bearer".to_owned(),
        "Bearer   ".to_owned(),
        token,
    ] {
        let response = reqwest::Client::new()
            .post(app.url("/graphql"))
            .header("authorization", header.clone())
            .json(&json!({ "query": "{ posts { edges { cursor } } }" }))
            .send()
            .await
            .unwrap();
        let reply = crate::support::Reply::from(response).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{header}");
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{header}");
    }
}

#[tokio::test]
async fn bearer_scheme_is_case_insensitive() {
    let app = TestApp::new().await;
    let alice = app.signed_in("alice").await;

    let response = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header(
            "authorization",
            format!("bearer {}", alice.token.as_deref().unwrap()),
        )
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();

    let reply = crate::support::Reply::from(response).await;
    assert_eq!(reply.data()["me"]["id"], alice.user_id());
}

#[tokio::test]
async fn logout_revokes_token_everywhere() {
    let app = TestApp::new().await;
    let replica = app.another_instance().await;
    let alice = app.signed_in("alice").await;
    let token = alice.token.clone().unwrap();
    let other_session = app
        .state
        .tokens
        .issue_access_token(alice.user_id())
        .unwrap()
        .token;
    assert_eq!(
        me_with_token(&replica, &token).await.data()["me"]["id"],
        alice.user_id()
    );

    let reply = alice.graphql("mutation { logout }", json!({})).await;
    assert_eq!(reply.data()["logout"], true);

    for instance in [&app, &replica] {
        let reply = me_with_token(instance, &token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.error_code(), "UNAUTHENTICATED");
        let logout_again = instance
            .with_token(&token)
            .graphql("mutation { logout }", json!({}))
            .await;
        assert_eq!(logout_again.error_code(), "UNAUTHENTICATED");
    }
    // Only that token is revoked: another session of the same user still works.
    assert_eq!(
        me_with_token(&replica, &other_session).await.data()["me"]["id"],
        alice.user_id()
    );
}

#[tokio::test]
async fn logout_needs_a_token() {
    let app = TestApp::new().await;

    let reply = app
        .anonymous()
        .graphql("mutation { logout }", json!({}))
        .await;

    reply.assert_error("UNAUTHENTICATED", None);
}
