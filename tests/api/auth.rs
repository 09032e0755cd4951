//! Bearer tokens: what is accepted, what is refused, and logout.

use chrono::Utc;
use diesel::{ExpressionMethods as _, QueryDsl as _};
use diesel_async::RunQueryDsl as _;
use festapi::db::schema::token_blacklist;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TEST_JWT_SECRET, TestApp};

/// The access-token lifetime of test servers: `JWT_ACCESS_TTL_SECONDS`' default.
const ACCESS_TTL_SECONDS: i64 = 900;

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

/// `valid_claims` with some claims replaced or added, signed with the test secret.
fn token_with(user_id: &str, changes: Value) -> String {
    let mut claims = valid_claims(user_id);
    if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        claims.extend(changes.clone());
    }
    sign(&claims, TEST_JWT_SECRET)
}

#[tokio::test]
async fn time_claims_are_accepted_up_to_their_exact_limits() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;
    let now = Utc::now().timestamp();

    for (case, changes) in [
        ("nbf now", json!({ "nbf": now })),
        ("nbf an hour ago", json!({ "nbf": now - 3600 })),
        (
            "lifetime of exactly the TTL",
            json!({ "iat": now, "exp": now + ACCESS_TTL_SECONDS }),
        ),
        (
            "issued a while ago, valid for the TTL",
            json!({ "iat": now - 600, "exp": now - 600 + ACCESS_TTL_SECONDS }),
        ),
    ] {
        let reply = me_with_token(&app, &token_with(alice.id.as_str(), changes)).await;
        assert_eq!(reply.status, StatusCode::OK, "{case}: {:#}", reply.body);
        assert_eq!(reply.data()["me"]["id"], alice.id.as_str(), "{case}");
    }
}

#[tokio::test]
async fn configured_leeway_forgives_that_much_clock_skew_and_no_more() {
    let app = TestApp::builder()
        .with_env("JWT_LEEWAY_SECONDS", "30")
        .start()
        .await;
    let alice = app.create_user("alice").await;
    let now = Utc::now().timestamp();

    for (case, changes) in [
        (
            "expired 10 s ago",
            json!({ "iat": now - 600, "exp": now - 10 }),
        ),
        (
            "issued 20 s in the future",
            json!({ "iat": now + 20, "exp": now + 600 }),
        ),
        ("valid from 20 s from now", json!({ "nbf": now + 20 })),
    ] {
        let reply = me_with_token(&app, &token_with(alice.id.as_str(), changes)).await;
        assert_eq!(reply.data()["me"]["id"], alice.id.as_str(), "{case}");
    }
    for (case, changes) in [
        (
            "expired 31 s ago",
            json!({ "iat": now - 600, "exp": now - 31 }),
        ),
        (
            "issued 40 s in the future",
            json!({ "iat": now + 40, "exp": now + 600 }),
        ),
        ("valid from 40 s from now", json!({ "nbf": now + 40 })),
    ] {
        let reply = me_with_token(&app, &token_with(alice.id.as_str(), changes)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{case}");
    }
}

#[tokio::test]
async fn logout_with_an_unusable_token_id_is_refused_and_stores_nothing() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;

    for jti in ["", "not-a-uuid"] {
        let reply = app
            .with_token(&token_with(alice.id.as_str(), json!({ "jti": jti })))
            .graphql("mutation { logout }", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{jti:?}");
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{jti:?}");
    }

    let mut connection = app.state.database.connection().await.unwrap();
    let revoked: i64 = token_blacklist::table
        .count()
        .get_result(&mut connection)
        .await
        .unwrap();
    assert_eq!(revoked, 0);
}

#[tokio::test]
async fn logout_stores_a_hand_made_token_until_it_expires() {
    let app = TestApp::new().await;
    let alice = app.create_user("alice").await;
    let now = Utc::now().timestamp();
    let jti = uuid::Uuid::new_v4().to_string();
    let token = token_with(
        alice.id.as_str(),
        json!({ "jti": jti, "iat": now, "exp": now + ACCESS_TTL_SECONDS }),
    );

    let reply = app
        .with_token(&token)
        .graphql("mutation { logout }", json!({}))
        .await;

    assert_eq!(reply.data()["logout"], true);
    let mut connection = app.state.database.connection().await.unwrap();
    let expires_at: chrono::DateTime<Utc> = token_blacklist::table
        .filter(token_blacklist::jti.eq(&jti))
        .select(token_blacklist::expires_at)
        .get_result(&mut connection)
        .await
        .unwrap();
    assert_eq!(expires_at.timestamp(), now + ACCESS_TTL_SECONDS);
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
            "expired 1 s ago",
            spoiled(&|claims| {
                claims["iat"] = json!(now - 600);
                claims["exp"] = json!(now - 1);
            }),
        ),
        (
            "expiring this second",
            spoiled(&|claims| {
                claims["iat"] = json!(now - 600);
                claims["exp"] = json!(now);
            }),
        ),
        (
            "issued 5 s in the future",
            spoiled(&|claims| claims["iat"] = json!(now + 5)),
        ),
        (
            "not valid before a minute from now",
            spoiled(&|claims| claims["nbf"] = json!(now + 60)),
        ),
        (
            "nbf as a string",
            spoiled(&|claims| claims["nbf"] = json!(now.to_string())),
        ),
        (
            "lifetime of the TTL plus a second",
            spoiled(&|claims| {
                claims["iat"] = json!(now);
                claims["exp"] = json!(now + ACCESS_TTL_SECONDS + 1);
            }),
        ),
        (
            "exp years past the TTL",
            spoiled(&|claims| claims["exp"] = json!(now + 10 * 365 * 24 * 60 * 60)),
        ),
        ("empty jti", spoiled(&|claims| claims["jti"] = json!(""))),
        (
            "jti not a UUID",
            spoiled(&|claims| claims["jti"] = json!("not-a-uuid")),
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
