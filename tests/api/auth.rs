//! Bearer tokens: what is accepted and what is refused.

use chrono::Utc;
use festapi::db::models::UserRow;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TEST_JWT_SECRET, TestApp};

/// The access-token lifetime of test servers: `JWT_ACCESS_TTL_SECONDS`' default.
const ACCESS_TTL_SECONDS: i64 = 900;

/// A user signed in to a session of their own: what hand-made tokens name.
struct SignedInUser {
    user: UserRow,
    session_id: String,
}

impl SignedInUser {
    async fn start(app: &TestApp, name: &str) -> Self {
        let user = app.create_user(name).await;
        let signed_in = app.start_session(user.clone()).await;
        Self {
            user,
            session_id: signed_in.session_id.to_string(),
        }
    }

    fn id(&self) -> &str {
        self.user.id.as_str()
    }

    /// Claims of a token FestAPI would accept, to be spoiled by each test.
    fn valid_claims(&self) -> Value {
        let now = Utc::now().timestamp();
        json!({
            "iss": "festapi",
            "aud": "festapi",
            "sub": self.id(),
            "sid": self.session_id,
            "iat": now,
            "exp": now + 600,
            "jti": uuid::Uuid::new_v4().to_string(),
            "token_type": "access",
        })
    }

    /// `valid_claims` with some claims replaced or added, signed with the test secret.
    fn token_with(&self, changes: Value) -> String {
        let mut claims = self.valid_claims();
        if let (Some(claims), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
            claims.extend(changes.clone());
        }
        sign(&claims, TEST_JWT_SECRET)
    }
}

/// Claims of the shape FestAPI wrote before sessions: no `sid`.
fn claims_without_a_session(user_id: &str) -> Value {
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
    let alice = SignedInUser::start(&app, "alice").await;

    let reply = me_with_token(&app, &sign(&alice.valid_claims(), TEST_JWT_SECRET)).await;

    assert_eq!(reply.data()["me"]["id"], alice.id());
}

#[tokio::test]
async fn time_claims_are_accepted_up_to_their_exact_limits() {
    let app = TestApp::new().await;
    let alice = SignedInUser::start(&app, "alice").await;
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
        let reply = me_with_token(&app, &alice.token_with(changes)).await;
        assert_eq!(reply.status, StatusCode::OK, "{case}: {:#}", reply.body);
        assert_eq!(reply.data()["me"]["id"], alice.id(), "{case}");
    }
}

#[tokio::test]
async fn configured_leeway_forgives_that_much_clock_skew_and_no_more() {
    let app = TestApp::builder()
        .with_env("JWT_LEEWAY_SECONDS", "30")
        .start()
        .await;
    let alice = SignedInUser::start(&app, "alice").await;
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
        let reply = me_with_token(&app, &alice.token_with(changes)).await;
        assert_eq!(reply.data()["me"]["id"], alice.id(), "{case}");
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
        let reply = me_with_token(&app, &alice.token_with(changes)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{case}");
    }
}

#[tokio::test]
async fn logout_with_an_unusable_token_id_is_refused_and_ends_nothing() {
    let app = TestApp::new().await;
    let alice = SignedInUser::start(&app, "alice").await;

    for jti in ["", "not-a-uuid"] {
        let reply = app
            .with_token(&alice.token_with(json!({ "jti": jti })))
            .graphql("mutation { logout }", json!({}))
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{jti:?}");
        assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{jti:?}");
    }

    let reply = me_with_token(&app, &alice.token_with(json!({}))).await;
    assert_eq!(reply.data()["me"]["id"], alice.id());
}

#[tokio::test]
async fn unusable_tokens_are_refused_never_anonymous() {
    let app = TestApp::new().await;
    let alice = SignedInUser::start(&app, "alice").await;
    let bob = SignedInUser::start(&app, "bob").await;
    let spoiled = |change: &dyn Fn(&mut Value)| {
        let mut claims = alice.valid_claims();
        change(&mut claims);
        sign(&claims, TEST_JWT_SECRET)
    };
    let now = Utc::now().timestamp();
    let cases = [
        ("garbage", "not-a-jwt".to_owned()),
        (
            "other secret",
            sign(
                &alice.valid_claims(),
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
        (
            "no session",
            spoiled(&|claims| drop(claims.as_object_mut().unwrap().remove("sid"))),
        ),
        (
            "the shape of tokens issued before sessions",
            sign(&claims_without_a_session(alice.id()), TEST_JWT_SECRET),
        ),
        (
            "unknown session",
            spoiled(&|claims| claims["sid"] = json!("session_404")),
        ),
        (
            "another user's session",
            spoiled(&|claims| claims["sid"] = json!(bob.session_id)),
        ),
        (
            "session as a number",
            spoiled(&|claims| claims["sid"] = json!(1)),
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
    let alice = SignedInUser::start(&app, "alice").await;
    use base64::Engine as _;
    let encode =
        |value: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string());
    let claims = encode(&alice.valid_claims());
    let none = format!(
        "{}.{claims}.",
        encode(&json!({ "alg": "none", "typ": "JWT" }))
    );
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &alice.valid_claims(),
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
async fn logout_needs_a_token() {
    let app = TestApp::new().await;

    let reply = app
        .anonymous()
        .graphql("mutation { logout }", json!({}))
        .await;

    reply.assert_error("UNAUTHENTICATED", None);
}
