//! Signing in over GraphQL against test identity providers: `login` with a code fetched from
//! the provider's authorization endpoint, `loginWithIdToken`, `linkProvider` and
//! `authProviders`, and every refusal leaving no user, identity or session behind.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::support::identity_provider::{CLIENT_ID, Person, Shape, TestIdentityProvider};
use crate::support::{Reply, SignInRows, TestApp};

/// Where the test servers say they live.
const PUBLIC_URL: &str = "http://127.0.0.1:8000";
/// A redirect of an app that runs the sign-in itself.
const APP_REDIRECT: &str = "http://localhost:3000/signed-in";
const VERIFIER: &str = "a-pkce-verifier-of-at-least-forty-three-characters-0123456789";
const NONCE: &str = "the-nonce";
const USER_AGENT: &str = "festapi-sign-in-test/1.0";

const LOGIN: &str = "mutation($provider: AuthProvider!, $code: String!, $redirectUri: String!, \
                     $codeVerifier: String, $nonce: String, $state: String) { login(provider: \
                     $provider, code: $code, redirectUri: $redirectUri, codeVerifier: \
                     $codeVerifier, nonce: $nonce, state: $state) { accessToken refreshToken \
                     tokenType expiresIn user { id email verifiedEmail } } }";
const LOGIN_WITH_ID_TOKEN: &str = "mutation($provider: AuthProvider!, $idToken: String!, \
                                   $nonce: String) { loginWithIdToken(provider: $provider, \
                                   idToken: $idToken, nonce: $nonce) { accessToken user { id } } }";
const LINK: &str = "mutation($provider: AuthProvider!, $code: String!, $redirectUri: String!, \
                    $codeVerifier: String, $state: String) { linkProvider(provider: $provider, \
                    code: $code, redirectUri: $redirectUri, codeVerifier: $codeVerifier, state: \
                    $state) { id } }";
/// The `state` [`code_from`] sends to the authorization endpoint, which comes back with the code.
const STATE: &str = "the-state";

/// A server signing people in with `providers`, each a test provider and its name.
async fn app_with(providers: &[(&TestIdentityProvider, &str)]) -> TestApp {
    app_with_settings(providers, &[]).await
}

/// A server signing people in with `providers`, with `settings` on top.
async fn app_with_settings(
    providers: &[(&TestIdentityProvider, &str)],
    settings: &[(&str, &str)],
) -> TestApp {
    let mut builder = TestApp::builder()
        .with_env("AUTH_PUBLIC_URL", PUBLIC_URL)
        .with_env("AUTH_ALLOWED_REDIRECTS", "http://localhost:3000/signed-in");
    for (idp, name) in providers {
        for (variable, value) in idp.settings(name) {
            builder = builder.with_env(&variable, &value);
        }
    }
    for (variable, value) in settings {
        builder = builder.with_env(variable, value);
    }
    builder.start().await
}

fn callback(provider: &str) -> String {
    format!("{PUBLIC_URL}/auth/{provider}/callback")
}

/// Asks `idp` for a code as an app would, with a PKCE challenge of [`VERIFIER`] and `nonce`,
/// and reads it from the redirect's `Location`.
async fn code_from(idp: &TestIdentityProvider, redirect_uri: &str, nonce: &str) -> String {
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(VERIFIER.as_bytes()));
    let mut url = Url::parse(&format!("{}/authorize", idp.issuer)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid email profile")
        .append_pair("state", STATE)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap();
    Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, code)| code.into_owned())
        .expect("a code in the redirect")
}

/// Sends `query` with `variables`, as the app with `token`, if any, and [`USER_AGENT`].
async fn send(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> Reply {
    let mut request = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("user-agent", USER_AGENT)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Reply::from(request.send().await.unwrap()).await
}

/// Sends `query` (`login` or `linkProvider`) with a fresh code from `idp` for `provider` at
/// `redirect_uri`, the PKCE verifier and, if any, `nonce`, as the app with `token`, if any.
async fn with_fresh_code(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    (idp, provider): (&TestIdentityProvider, &str),
    redirect_uri: &str,
    nonce: Option<&str>,
) -> Reply {
    let code = code_from(idp, redirect_uri, nonce.unwrap_or(NONCE)).await;
    let mut variables = json!({ "provider": provider.to_uppercase(), "code": code,
                                "redirectUri": redirect_uri, "codeVerifier": VERIFIER });
    if let Some(nonce) = nonce {
        variables["nonce"] = json!(nonce);
    }
    send(app, token, query, variables).await
}

/// `login` with a fresh code from `idp` for `provider`, at its callback, with PKCE and nonce.
async fn login(app: &TestApp, idp: &TestIdentityProvider, provider: &str) -> Reply {
    let redirect_uri = callback(provider);
    with_fresh_code(
        app,
        None,
        LOGIN,
        (idp, provider),
        &redirect_uri,
        Some(NONCE),
    )
    .await
}

/// `linkProvider` with a fresh code from `idp` for `provider`, as the app with `token`.
async fn link(
    app: &TestApp,
    token: Option<&str>,
    idp: &TestIdentityProvider,
    provider: &str,
) -> Reply {
    let redirect_uri = callback(provider);
    with_fresh_code(app, token, LINK, (idp, provider), &redirect_uri, None).await
}

/// The payload of a `login` that must succeed.
async fn logged_in(app: &TestApp, idp: &TestIdentityProvider, provider: &str) -> Value {
    login(app, idp, provider).await.data()["login"].clone()
}

async fn login_with_id_token(
    app: &TestApp,
    provider: &str,
    id_token: &str,
    nonce: Option<&str>,
) -> Reply {
    send(
        app,
        None,
        LOGIN_WITH_ID_TOKEN,
        json!({ "provider": provider, "idToken": id_token, "nonce": nonce }),
    )
    .await
}

/// Asserts the only error has `code` (and `field`), and that nothing was stored.
async fn assert_refused_storing_nothing(
    app: &TestApp,
    reply: &Reply,
    code: &str,
    field: Option<&str>,
) {
    reply.assert_error(code, field);
    assert_eq!(reply.body["data"], Value::Null, "{:#}", reply.body);
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
}

#[tokio::test]
async fn login_with_a_code_signs_in_with_tokens_that_work() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.sign_in_as(Person::named("grace"));
    let app = app_with(&[(&idp, "oidc")]).await;

    let payload = logged_in(&app, &idp, "oidc").await;

    assert_eq!(payload["user"]["id"], "oidc_sub-grace");
    // The person who just signed in sees their own address, though the request was anonymous.
    assert_eq!(payload["user"]["email"], "grace@example.test");
    assert_eq!(payload["tokenType"], "Bearer");
    let access_token = payload["accessToken"].as_str().unwrap();
    let me = send(
        &app,
        Some(access_token),
        "{ me { id email } mySessions { userAgent current } }",
        json!({}),
    )
    .await;
    assert_eq!(me.data()["me"]["id"], "oidc_sub-grace");
    assert_eq!(me.data()["me"]["email"], "grace@example.test");
    assert_eq!(
        me.data()["mySessions"],
        json!([{ "userAgent": USER_AGENT, "current": true }])
    );
    let refreshed = send(
        &app,
        None,
        "mutation($token: String!) { refreshToken(refreshToken: $token) { user { id } } }",
        json!({ "token": payload["refreshToken"] }),
    )
    .await;
    assert_eq!(
        refreshed.data()["refreshToken"]["user"]["id"],
        "oidc_sub-grace"
    );
    let client = app.database.admin_client().await;
    let row = client
        .query_one(
            "SELECT s.provider, host(s.ip), i.subject FROM sessions s \
             JOIN identities i ON i.id = s.identity_id",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "oidc");
    assert_eq!(row.get::<_, String>(1), "127.0.0.1");
    assert_eq!(row.get::<_, String>(2), "sub-grace");
}

#[tokio::test]
async fn a_second_login_reaches_the_same_user_in_a_second_session() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;

    let first = logged_in(&app, &idp, "oidc").await;
    let second = logged_in(&app, &idp, "oidc").await;

    assert_eq!(first["user"]["id"], second["user"]["id"]);
    let sessions = send(
        &app,
        second["accessToken"].as_str(),
        "{ mySessions { current } }",
        json!({}),
    )
    .await;
    assert_eq!(
        sessions.data()["mySessions"],
        json!([{ "current": true }, { "current": false }])
    );
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 2));
}

#[tokio::test]
async fn login_through_an_allowed_redirect_of_an_app_works() {
    let idp = TestIdentityProvider::start(Shape::Kakao).await;
    let app = app_with(&[(&idp, "kakao")]).await;
    let redirect_uri = format!("{APP_REDIRECT}/done");

    let reply = with_fresh_code(&app, None, LOGIN, (&idp, "kakao"), &redirect_uri, None).await;

    assert_eq!(reply.data()["login"]["user"]["id"], "kakao_sub-ada");
}

#[tokio::test]
async fn a_redirect_uri_that_is_not_allowed_is_bad_user_input() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    for redirect_uri in [
        "http://localhost:3000/signed-inx",
        "http://localhost:3001/signed-in",
        "http://localhost:3000.evil.net/signed-in",
        "https://localhost:3000/signed-in",
        "http://127.0.0.1:8000/auth/google/callback",
        "not a url",
    ] {
        let reply = send(
            &app,
            None,
            LOGIN,
            json!({ "provider": "OIDC", "code": "a-code", "redirectUri": redirect_uri }),
        )
        .await;
        assert_refused_storing_nothing(&app, &reply, "BAD_USER_INPUT", Some("redirectUri")).await;
    }
    assert!(
        idp.refusals().is_empty(),
        "nothing was sent to the provider"
    );
}

#[tokio::test]
async fn a_pkce_mismatch_is_unauthenticated() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    let redirect_uri = callback("oidc");
    let code = code_from(&idp, &redirect_uri, NONCE).await;

    let reply = send(
        &app,
        None,
        LOGIN,
        json!({ "provider": "OIDC", "code": code, "redirectUri": redirect_uri,
                "codeVerifier": "another-pkce-verifier-of-at-least-forty-three-chars-0000" }),
    )
    .await;

    assert_refused_storing_nothing(&app, &reply, "UNAUTHENTICATED", None).await;
    assert_eq!(idp.refusals().len(), 1);
}

#[tokio::test]
async fn a_code_used_twice_or_made_up_is_unauthenticated() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    let redirect_uri = callback("oidc");

    let reply = send(
        &app,
        None,
        LOGIN,
        json!({ "provider": "OIDC", "code": "made-up", "redirectUri": redirect_uri }),
    )
    .await;

    assert_refused_storing_nothing(&app, &reply, "UNAUTHENTICATED", None).await;
}

#[tokio::test]
async fn a_login_whose_id_token_lacks_the_nonce_sent_is_unauthenticated() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    idp.set(|knobs| knobs.nonce = Some("someone-elses-nonce".into()));

    let reply = login(&app, &idp, "oidc").await;

    assert_refused_storing_nothing(&app, &reply, "UNAUTHENTICATED", None).await;
}

#[tokio::test]
async fn malformed_arguments_are_bad_user_input() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    let redirect_uri = callback("oidc");
    let cases = [
        (json!({ "code": "" }), "code"),
        (json!({ "code": "x".repeat(3000) }), "code"),
        (
            json!({ "code": "c", "codeVerifier": "short" }),
            "codeVerifier",
        ),
        (json!({ "code": "c", "nonce": "" }), "nonce"),
    ];
    for (mut variables, field) in cases {
        variables["provider"] = json!("OIDC");
        variables["redirectUri"] = json!(redirect_uri);
        let reply = send(&app, None, LOGIN, variables).await;
        assert_refused_storing_nothing(&app, &reply, "BAD_USER_INPUT", Some(field)).await;
    }
    let reply = login_with_id_token(&app, "OIDC", "", None).await;
    assert_refused_storing_nothing(&app, &reply, "BAD_USER_INPUT", Some("idToken")).await;
}

#[tokio::test]
async fn a_provider_that_is_not_configured_is_bad_user_input() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;

    let reply = login_with_id_token(&app, "GOOGLE", &idp.id_token(None), None).await;

    assert_refused_storing_nothing(&app, &reply, "BAD_USER_INPUT", Some("provider")).await;
    let message = reply.error()["message"].as_str().unwrap();
    assert!(message.contains("google is not configured"), "{message}");
}

#[tokio::test]
async fn login_with_a_valid_id_token_signs_in() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;

    let with_nonce =
        login_with_id_token(&app, "OIDC", &idp.id_token(Some(NONCE)), Some(NONCE)).await;
    let without_nonce = login_with_id_token(&app, "OIDC", &idp.id_token(None), None).await;

    assert_eq!(
        with_nonce.data()["loginWithIdToken"]["user"]["id"],
        "oidc_sub-ada"
    );
    assert_eq!(
        without_nonce.data()["loginWithIdToken"]["user"]["id"],
        "oidc_sub-ada"
    );
    let access_token = with_nonce.data()["loginWithIdToken"]["accessToken"].as_str();
    let me = send(&app, access_token, "{ me { id } }", json!({})).await;
    assert_eq!(me.data()["me"]["id"], "oidc_sub-ada");
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 2));
}

#[tokio::test]
async fn id_tokens_that_fail_verification_are_unauthenticated() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    let valid = idp.id_token(Some(NONCE));

    idp.set(|knobs| knobs.audience = Some("another-client".into()));
    let wrong_audience = idp.id_token(Some(NONCE));
    idp.set(|knobs| {
        knobs.audience = None;
        knobs.expired = true;
    });
    let expired = idp.id_token(Some(NONCE));

    for (id_token, nonce) in [
        (wrong_audience.as_str(), Some(NONCE)),
        (expired.as_str(), Some(NONCE)),
        (valid.as_str(), Some("another-nonce")),
        (valid.as_str(), None),
        ("not.a.jwt", None),
    ] {
        let reply = login_with_id_token(&app, "OIDC", id_token, nonce).await;
        assert_refused_storing_nothing(&app, &reply, "UNAUTHENTICATED", None).await;
    }
}

#[tokio::test]
async fn a_new_identity_with_a_taken_address_is_account_exists_naming_the_provider() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&oidc, "oidc"), (&google, "google")]).await;
    logged_in(&app, &oidc, "oidc").await;
    let before = app.sign_in_rows().await;
    // Someone else at Google, with the same address.
    google.sign_in_as(Person {
        subject: "google-ada".into(),
        ..Person::named("ada")
    });

    let by_code = login(&app, &google, "google").await;
    let by_id_token = login_with_id_token(&app, "GOOGLE", &google.id_token(None), None).await;

    for reply in [by_code, by_id_token] {
        reply.assert_error("ACCOUNT_EXISTS", None);
        assert_eq!(reply.error()["extensions"]["provider"], "oidc");
    }
    assert_eq!(app.sign_in_rows().await, before);
}

#[tokio::test]
async fn a_linked_provider_signs_in_to_the_same_user() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&oidc, "oidc"), (&google, "google")]).await;
    let signed_in = logged_in(&app, &oidc, "oidc").await;
    let access_token = signed_in["accessToken"].as_str();
    google.sign_in_as(Person {
        subject: "google-ada".into(),
        ..Person::named("ada")
    });

    let linked = link(&app, access_token, &google, "google").await;

    assert_eq!(linked.data()["linkProvider"]["id"], "oidc_sub-ada");
    let through_google = logged_in(&app, &google, "google").await;
    assert_eq!(through_google["user"]["id"], "oidc_sub-ada");
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 2, 2));
}

#[tokio::test]
async fn linking_an_identity_of_another_user_is_refused() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&oidc, "oidc"), (&google, "google")]).await;
    google.sign_in_as(Person::named("grace"));
    logged_in(&app, &google, "google").await;
    let ada = logged_in(&app, &oidc, "oidc").await;
    let before = app.sign_in_rows().await;

    let reply = link(&app, ada["accessToken"].as_str(), &google, "google").await;

    reply.assert_error("FORBIDDEN", None);
    assert_eq!(app.sign_in_rows().await, before);
    let anonymous = link(&app, None, &google, "google").await;
    anonymous.assert_error("UNAUTHENTICATED", None);
    assert_eq!(app.sign_in_rows().await, before);
}

/// Someone who keeps their e-mail address to themselves: neither the `id_token` nor the
/// provider's profile carries one, though the provider still claims to have verified it.
fn without_email(name: &str) -> Person {
    Person {
        email: None,
        ..Person::named(name)
    }
}

/// The stored e-mail address and verified flag of user `id`.
async fn stored_email(app: &TestApp, id: &Value) -> (Option<String>, bool) {
    let client = app.database.admin_client().await;
    let row = client
        .query_one(
            "SELECT email, verified_email FROM users WHERE id = $1",
            &[&id.as_str().unwrap()],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn a_kakao_sign_in_without_an_email_address_makes_a_user_without_one() {
    let kakao = TestIdentityProvider::start(Shape::Kakao).await;
    kakao.sign_in_as(without_email("minji"));
    let app = app_with(&[(&kakao, "kakao")]).await;

    let first = logged_in(&app, &kakao, "kakao").await;

    assert_eq!(first["user"]["id"], "kakao_sub-minji");
    assert_eq!(first["user"]["email"], Value::Null);
    // Nobody can have verified an address that was not given.
    assert_eq!(first["user"]["verifiedEmail"], false);
    assert_eq!(
        stored_email(&app, &first["user"]["id"]).await,
        (None, false)
    );
    let me = send(
        &app,
        first["accessToken"].as_str(),
        "{ me { id email name } }",
        json!({}),
    )
    .await;
    assert_eq!(
        me.data()["me"],
        json!({ "id": "kakao_sub-minji", "email": null, "name": "minji" })
    );

    let second = logged_in(&app, &kakao, "kakao").await;

    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 2));
}

#[tokio::test]
async fn people_without_email_addresses_are_different_users() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&oidc, "oidc")]).await;
    oidc.sign_in_as(without_email("minji"));
    let minji = logged_in(&app, &oidc, "oidc").await;
    oidc.sign_in_as(without_email("jisoo"));

    let by_code = logged_in(&app, &oidc, "oidc").await;
    oidc.sign_in_as(without_email("hana"));
    let by_id_token =
        login_with_id_token(&app, "OIDC", &oidc.id_token(Some(NONCE)), Some(NONCE)).await;

    assert_eq!(minji["user"]["id"], "oidc_sub-minji");
    assert_eq!(by_code["user"]["id"], "oidc_sub-jisoo");
    assert_eq!(
        by_id_token.data()["loginWithIdToken"]["user"]["id"],
        "oidc_sub-hana"
    );
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(3, 3, 3));
    let client = app.database.admin_client().await;
    let without = client
        .query_one("SELECT count(*) FROM users WHERE email IS NULL", &[])
        .await
        .unwrap();
    assert_eq!(without.get::<_, i64>(0), 3);
}

/// `query` (`login` or `linkProvider`) with a fresh code from the Naver-shaped `naver`, sent
/// back with `state`, as the app with `token`, if any.
async fn with_naver_code(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    naver: &TestIdentityProvider,
    state: Option<&str>,
) -> Reply {
    let redirect_uri = callback("naver");
    let code = code_from(naver, &redirect_uri, NONCE).await;
    let variables = json!({ "provider": "NAVER", "code": code, "redirectUri": redirect_uri,
                            "codeVerifier": VERIFIER, "state": state });
    send(app, token, query, variables).await
}

#[tokio::test]
async fn naver_login_sends_the_state_back_to_its_token_endpoint() {
    let naver = TestIdentityProvider::start(Shape::Naver).await;
    naver.sign_in_as(Person::named("minji"));
    let app = app_with(&[(&naver, "naver")]).await;

    let without_state = with_naver_code(&app, None, LOGIN, &naver, None).await;
    assert_refused_storing_nothing(&app, &without_state, "BAD_USER_INPUT", Some("state")).await;
    assert!(
        without_state.error()["message"]
            .as_str()
            .unwrap()
            .contains("`state`"),
        "{:#}",
        without_state.body
    );
    // Refused before Naver was asked anything.
    assert!(naver.refusals().is_empty(), "{:?}", naver.refusals());

    let wrong_state = with_naver_code(&app, None, LOGIN, &naver, Some("another-state")).await;
    assert_refused_storing_nothing(&app, &wrong_state, "UNAUTHENTICATED", None).await;
    assert_eq!(naver.refusals().len(), 1, "{:?}", naver.refusals());

    let signed_in = with_naver_code(&app, None, LOGIN, &naver, Some(STATE)).await;

    assert_eq!(signed_in.data()["login"]["user"]["id"], "naver_sub-minji");
    assert_eq!(
        signed_in.data()["login"]["user"]["email"],
        "minji@example.test"
    );
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));
}

#[tokio::test]
async fn linking_naver_sends_the_state_back_too() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let naver = TestIdentityProvider::start(Shape::Naver).await;
    naver.sign_in_as(Person {
        subject: "naver-ada".into(),
        ..Person::named("ada")
    });
    let app = app_with(&[(&oidc, "oidc"), (&naver, "naver")]).await;
    let ada = logged_in(&app, &oidc, "oidc").await;
    let token = ada["accessToken"].as_str();

    let without_state = with_naver_code(&app, token, LINK, &naver, None).await;
    without_state.assert_error("BAD_USER_INPUT", Some("state"));
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));

    let linked = with_naver_code(&app, token, LINK, &naver, Some(STATE)).await;

    assert_eq!(linked.data()["linkProvider"]["id"], "oidc_sub-ada");
    let through_naver = with_naver_code(&app, None, LOGIN, &naver, Some(STATE)).await;
    assert_eq!(through_naver.data()["login"]["user"]["id"], "oidc_sub-ada");
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 2, 2));
}

#[tokio::test]
async fn the_address_of_an_operators_account_says_how_to_get_in_and_that_way_works() {
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    google.sign_in_as(Person::named("ada"));
    let app = app_with(&[(&google, "google")]).await;
    // `festapi token issue --email ada@example.test` made Ada's account.
    let ada = app.create_user("ada").await;
    let before = app.sign_in_rows().await;

    let refused = login(&app, &google, "google").await;

    refused.assert_error("ACCOUNT_EXISTS", None);
    assert_eq!(refused.error()["extensions"]["provider"], "festapi");
    assert_eq!(
        refused.error()["message"],
        "an account with this e-mail address already exists, made by an operator with `festapi \
         token issue`: ask an operator to issue you a token with `festapi token issue --email \
         <your address>`, sign in with it, then attach this provider with `linkProvider`"
    );
    assert_eq!(app.sign_in_rows().await, before);

    // As the message says: a token from the operator, then linkProvider.
    let operator_token = app.start_session(ada.clone()).await.access_token;
    let linked = link(&app, Some(&operator_token), &google, "google").await;
    assert_eq!(linked.data()["linkProvider"]["id"], ada.id.as_str());
    let through_google = logged_in(&app, &google, "google").await;
    assert_eq!(through_google["user"]["id"], ada.id.as_str());
}

#[tokio::test]
async fn auth_providers_lists_exactly_the_configured_ones() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    let apple = TestIdentityProvider::start(Shape::Apple).await;
    let naver = TestIdentityProvider::start(Shape::Naver).await;
    let app = app_with(&[
        (&oidc, "oidc"),
        (&google, "google"),
        (&apple, "apple"),
        (&naver, "naver"),
    ])
    .await;

    let reply = send(
        &app,
        None,
        "{ authProviders { provider loginUrl } }",
        json!({}),
    )
    .await;

    let expected: Vec<Value> = ["google", "apple", "naver", "oidc"]
        .into_iter()
        .map(|name| {
            json!({ "provider": name.to_uppercase(), "loginUrl": format!("{PUBLIC_URL}/auth/{name}") })
        })
        .collect();
    assert_eq!(reply.data()["authProviders"], Value::Array(expected));
    let names = send(&app, None, "{ authProviders { name } }", json!({})).await;
    assert!(
        names.data()["authProviders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|provider| !provider["name"].as_str().unwrap().is_empty())
    );
}

#[tokio::test]
async fn without_providers_auth_providers_is_empty() {
    let app = TestApp::new().await;

    let reply = app
        .anonymous()
        .graphql("{ authProviders { provider } }", json!({}))
        .await;

    assert_eq!(reply.data()["authProviders"], json!([]));
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_service_unavailable() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let id_token = idp.id_token(None);
    // A loopback port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = TestApp::builder()
        .with_env("AUTH_PUBLIC_URL", PUBLIC_URL)
        .with_env("AUTH_OIDC_ISSUER", &issuer)
        .with_env("AUTH_OIDC_CLIENT_ID", CLIENT_ID)
        .with_env("AUTH_OIDC_CLIENT_SECRET", "secret")
        .start()
        .await;

    let by_id_token = login_with_id_token(&app, "OIDC", &id_token, None).await;
    let by_code = send(
        &app,
        None,
        LOGIN,
        json!({ "provider": "OIDC", "code": "c", "redirectUri": callback("oidc") }),
    )
    .await;

    for reply in [by_id_token, by_code] {
        assert_refused_storing_nothing(&app, &reply, "SERVICE_UNAVAILABLE", None).await;
    }
}

/// `GET /auth/{provider}` with `query`, as a browser that does not follow the redirect.
async fn start_browser_flow(app: &TestApp, provider: &str, query: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url(&format!("/auth/{provider}{query}")))
        .send()
        .await
        .unwrap()
}

/// The stored flows: provider, state hash, nonce, PKCE verifier, redirect_to, binding hash,
/// and seconds to expiry.
async fn stored_flows(
    app: &TestApp,
) -> Vec<(String, String, String, String, Option<String>, String, f64)> {
    let client = app.database.admin_client().await;
    client
        .query(
            "SELECT provider, state_hash, nonce, pkce_verifier, redirect_to, binding_hash, \
             extract(epoch FROM expires_at - now())::float8 FROM auth_flows",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.get(0),
                row.get(1),
                row.get(2),
                row.get(3),
                row.get(4),
                row.get(5),
                row.get(6),
            )
        })
        .collect()
}

fn sha256_hex(value: &str) -> String {
    format!("{:x}", Sha256::digest(value.as_bytes()))
}

#[tokio::test]
async fn a_browser_flow_stores_its_secrets_and_sends_the_browser_to_the_provider() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;

    let response = start_browser_flow(
        &app,
        "oidc",
        "?redirect_to=http://localhost:3000/signed-in/x",
    )
    .await;

    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&format!("{}/authorize?", idp.issuer))
    );
    let sent: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(sent["redirect_uri"], callback("oidc"));
    assert_eq!(sent["code_challenge_method"], "S256");
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let binding = cookie
        .strip_prefix("festapi_auth_flow=")
        .and_then(|rest| rest.split(';').next())
        .unwrap();
    assert_eq!(binding.len(), 43);
    for attribute in ["Path=/auth/oidc", "Max-Age=600", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    // The public URL is on loopback, where browsers would drop a Secure cookie sent over http.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let flows = stored_flows(&app).await;
    assert_eq!(flows.len(), 1);
    let (provider, state_hash, nonce, verifier, redirect_to, binding_hash, expires_in) = &flows[0];
    assert_eq!(provider, "oidc");
    assert_eq!(*state_hash, sha256_hex(&sent["state"]));
    assert_eq!(*nonce, sent["nonce"]);
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        sent["code_challenge"]
    );
    assert_eq!(
        redirect_to.as_deref(),
        Some("http://localhost:3000/signed-in/x")
    );
    assert_eq!(*binding_hash, sha256_hex(binding));
    assert!((590.0..=600.0).contains(expires_in), "{expires_in}");
    // The state and the binding are stored only as hashes.
    assert_ne!(*state_hash, sent["state"]);
}

#[tokio::test]
async fn each_browser_flow_gets_its_own_secrets() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;

    start_browser_flow(&app, "oidc", "").await;
    start_browser_flow(&app, "oidc", "").await;

    let flows = stored_flows(&app).await;
    assert_eq!(flows.len(), 2);
    assert_ne!(flows[0].1, flows[1].1);
    assert_ne!(flows[0].2, flows[1].2);
    assert_ne!(flows[0].3, flows[1].3);
    assert_ne!(flows[0].5, flows[1].5);
    assert_eq!(flows[0].4, None);
}

#[tokio::test]
async fn apples_browser_flow_cookie_survives_its_cross_site_form_post() {
    let idp = TestIdentityProvider::start(Shape::Apple).await;
    let app = app_with(&[(&idp, "apple")]).await;

    let response = start_browser_flow(&app, "apple", "").await;

    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("SameSite=None"), "{cookie}");
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn browser_flows_that_cannot_start_store_nothing() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    let cases = [
        (
            "oidc",
            "?redirect_to=http://localhost:3000.evil.net/signed-in",
            400,
            "BAD_USER_INPUT",
        ),
        (
            "oidc",
            "?redirect_to=http://localhost:3000/signed-inx",
            400,
            "BAD_USER_INPUT",
        ),
        ("oidc", "?redirect_to=/relative", 400, "BAD_USER_INPUT"),
        ("google", "", 400, "BAD_USER_INPUT"),
        ("github", "", 404, "NOT_FOUND"),
    ];

    for (provider, query, status, code) in cases {
        let response = start_browser_flow(&app, provider, query).await;
        assert_eq!(response.status().as_u16(), status, "{provider}{query}");
        assert!(response.headers().get("set-cookie").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], code, "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
    assert!(stored_flows(&app).await.is_empty());
    assert!(idp.authorizations().is_empty());
}

#[tokio::test]
async fn expired_browser_flows_are_purged() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with(&[(&idp, "oidc")]).await;
    start_browser_flow(&app, "oidc", "").await;
    start_browser_flow(&app, "oidc", "").await;
    let client = app.database.admin_client().await;
    client
        .execute(
            "UPDATE auth_flows SET expires_at = now() - interval '1 second' \
             WHERE state_hash = (SELECT min(state_hash) FROM auth_flows)",
            &[],
        )
        .await
        .unwrap();

    let purged = festapi::domain::sign_in::purge_expired_flows(&app.state.database)
        .await
        .unwrap();

    assert_eq!(purged, 1);
    assert_eq!(stored_flows(&app).await.len(), 1);
}

#[tokio::test]
async fn browser_flow_starts_count_against_the_clients_write_allowance() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_with_settings(
        &[(&idp, "oidc")],
        &[("RATE_LIMIT_MUTATIONS_PER_MINUTE", "1")],
    )
    .await;

    let first = start_browser_flow(&app, "oidc", "").await;
    let second = start_browser_flow(&app, "oidc", "").await;

    assert_eq!(first.status(), reqwest::StatusCode::SEE_OTHER);
    assert_eq!(second.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(second.headers().get("retry-after").is_some());
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"], "RATE_LIMITED");
    assert_eq!(stored_flows(&app).await.len(), 1);
}
