//! The browser sign-in end to end: `GET /auth/{provider}` to the test provider and back to the
//! callback with the binding cookie, and every refusal of a flow (missing, reused, expired or
//! foreign), of the provider (its own errors, PKCE and nonce mismatches, being out of reach) and
//! of the account (ACCOUNT_EXISTS), each leaving no user, session or token behind.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::{Value, json};
use url::Url;

use crate::support::identity_provider::{Person, Shape, Signer, TestIdentityProvider};
use crate::support::{SignInRows, TestApp};

const APP_PAGE: &str = "http://localhost:3000/signed-in";
/// The query that starts a flow sending the browser back to [`APP_PAGE`].
const TO_APP_PAGE: &str = "?redirect_to=http://localhost:3000/signed-in";

/// A browser that follows no redirect by itself, so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A server that lets browsers sign in with `providers`, each a test provider and its name.
async fn app_signing_in_with(providers: &[(&TestIdentityProvider, &str)]) -> TestApp {
    let settings = providers.iter().flat_map(|(idp, name)| idp.settings(name));
    app_with_provider_settings(settings).await
}

async fn app_with_provider_settings(
    settings: impl IntoIterator<Item = (String, String)>,
) -> TestApp {
    let mut builder = TestApp::builder()
        .with_env("AUTH_PUBLIC_URL", "http://127.0.0.1:8000")
        .with_env("AUTH_ALLOWED_REDIRECTS", APP_PAGE);
    for (variable, value) in settings {
        builder = builder.with_env(&variable, &value);
    }
    builder.start().await
}

/// A flow started at the server and answered by the provider: the binding cookie, and the query
/// string the provider sent the browser back with.
struct ProviderAnswer {
    provider: String,
    cookie: String,
    query: String,
}

impl ProviderAnswer {
    /// Brings the answer to the callback in the browser that started the flow.
    async fn back_at(&self, app: &TestApp) -> reqwest::Response {
        callback(app, &self.provider, &self.query, Some(&self.cookie)).await
    }
}

/// Starts a browser flow with `provider` (and `start_query`) and goes through the provider.
async fn through_the_provider(app: &TestApp, provider: &str, start_query: &str) -> ProviderAnswer {
    let started = browser()
        .get(app.url(&format!("/auth/{provider}{start_query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let cookie = started.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    let answered = browser().get(authorize).send().await.unwrap();
    let back = Url::parse(answered.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(back.path(), format!("/auth/{provider}/callback"));
    ProviderAnswer {
        provider: provider.to_owned(),
        cookie,
        query: back.query().unwrap_or_default().to_owned(),
    }
}

async fn callback(
    app: &TestApp,
    provider: &str,
    query: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = browser().get(app.url(&format!("/auth/{provider}/callback?{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

/// The JSON body of a callback that signed the browser in.
async fn signed_in(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer", "{body}");
    body
}

/// Asserts `response` refuses the sign-in with `status` and `code`, in a message containing
/// `words`; returns the body.
async fn assert_refused(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
    words: &str,
) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().unwrap().contains(words), "{body}");
    assert!(body.get("accessToken").is_none(), "{body}");
    body
}

/// Asserts `response` refuses the sign-in with 400 BAD_USER_INPUT, as it answers problems of the
/// flow and refusals by the provider, in a message containing `words`.
async fn assert_flow_refused(response: reqwest::Response, words: &str) {
    assert_refused(response, StatusCode::BAD_REQUEST, "BAD_USER_INPUT", words).await;
}

/// The fragment of the address `response` sends the browser to: [`APP_PAGE`].
fn landed_fragment(response: &reqwest::Response) -> HashMap<String, String> {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.as_str().split('#').next().unwrap(), APP_PAGE);
    url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
        .into_owned()
        .collect()
}

/// Asserts `response` sends the browser back to the app with `code` and a description
/// containing `words` in the fragment, and no tokens; returns the fragment.
fn assert_refused_in_fragment(
    response: &reqwest::Response,
    code: &str,
    words: &str,
) -> HashMap<String, String> {
    let fragment = landed_fragment(response);
    assert_eq!(fragment["error"], code, "{fragment:?}");
    assert!(
        fragment["error_description"].contains(words),
        "{fragment:?}"
    );
    assert!(!fragment.contains_key("access_token"), "{fragment:?}");
    fragment
}

/// Makes every flow ten minutes and a second older, by the flows' own clock.
const AGE_FLOWS_PAST_THEIR_LIFETIME: &str = "UPDATE auth_flows \
     SET created_at = created_at - interval '601 seconds', \
     expires_at = expires_at - interval '601 seconds'";

/// Runs `statement` on the server's database, between a flow's start and its callback.
async fn meddle(app: &TestApp, statement: &str) {
    app.database
        .admin_client()
        .await
        .execute(statement, &[])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_browser_signs_in_and_lands_on_the_app_with_its_tokens() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.sign_in_as(Person::named("grace"));
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", TO_APP_PAGE).await;

    let landed = answer.back_at(&app).await;

    let fragment = landed_fragment(&landed);
    assert_eq!(fragment["token_type"], "Bearer");
    assert!(fragment["refresh_token"].len() >= 43);
    let me = app
        .with_token(&fragment["access_token"])
        .graphql("{ me { name } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["name"], "grace");
    assert!(
        landed.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));
}

#[tokio::test]
async fn without_redirect_to_the_callback_answers_json() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.sign_in_as(Person::named("ada"));
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", "").await;

    let body = signed_in(answer.back_at(&app).await).await;

    assert_eq!(body["user"]["name"], "ada");
    assert!(body["accessToken"].is_string() && body["refreshToken"].is_string());
    assert!(body["expiresIn"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_state_used_once_is_refused_the_second_time() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", TO_APP_PAGE).await;
    landed_fragment(&answer.back_at(&app).await);
    let after_first = app.sign_in_rows().await;
    assert_eq!(after_first, SignInRows::signed_in(1, 1, 1));

    // The same state, cookie and code again, as a replayed or reloaded callback would send.
    let again = answer.back_at(&app).await;

    assert_flow_refused(again, "unknown or was already used").await;
    assert_eq!(app.sign_in_rows().await, after_first);
    assert!(idp.refusals().is_empty(), "the code was never sent again");
}

#[tokio::test]
async fn a_state_older_than_the_flow_lifetime_is_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", "").await;
    meddle(&app, AGE_FLOWS_PAST_THEIR_LIFETIME).await;

    assert_flow_refused(answer.back_at(&app).await, "expired").await;
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
    // Refused before the code was exchanged: it is still unused at the provider.
    assert!(idp.refusals().is_empty());

    // A flow that knows where the app waits sends the browser back there with the error.
    let to_the_app = through_the_provider(&app, "oidc", TO_APP_PAGE).await;
    meddle(&app, AGE_FLOWS_PAST_THEIR_LIFETIME).await;
    let response = to_the_app.back_at(&app).await;
    assert_refused_in_fragment(&response, "BAD_USER_INPUT", "expired");
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
    assert!(idp.refusals().is_empty());
}

#[tokio::test]
async fn a_callback_without_the_browsers_cookie_signs_nobody_in() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", "").await;

    let no_cookie = callback(&app, "oidc", &answer.query, None).await;
    assert_flow_refused(no_cookie, "cookie is missing").await;
    let made_up_cookie = Some("festapi_auth_flow=someone-else");
    let other_browser = callback(&app, "oidc", &answer.query, made_up_cookie).await;
    assert_flow_refused(other_browser, "another browser").await;
    assert_eq!(app.sign_in_rows().await, SignInRows::default());

    // The browser that started it can still finish it.
    signed_in(answer.back_at(&app).await).await;
}

#[tokio::test]
async fn a_state_started_in_another_browser_is_refused_with_this_browsers_cookie() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    idp.sign_in_as(Person::named("victim"));
    let victims = through_the_provider(&app, "oidc", "").await;
    idp.sign_in_as(Person::named("attacker"));
    let attackers = through_the_provider(&app, "oidc", "").await;

    // The attacker's answer, delivered to the victim's browser (login CSRF), and the reverse.
    let planted = callback(&app, "oidc", &attackers.query, Some(&victims.cookie)).await;
    let stolen = callback(&app, "oidc", &victims.query, Some(&attackers.cookie)).await;

    assert_flow_refused(planted, "started in another browser").await;
    assert_flow_refused(stolen, "started in another browser").await;
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
    assert!(idp.refusals().is_empty(), "no code was exchanged");
}

#[tokio::test]
async fn missing_or_made_up_states_are_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", "").await;
    let code_only: String = answer
        .query
        .split('&')
        .filter(|pair| !pair.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");

    assert_flow_refused(
        callback(&app, "oidc", &code_only, Some(&answer.cookie)).await,
        "no `state`",
    )
    .await;
    let made_up = format!("{code_only}&state=made-up");
    assert_flow_refused(
        callback(&app, "oidc", &made_up, Some(&answer.cookie)).await,
        "unknown",
    )
    .await;
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
}

#[tokio::test]
async fn a_provider_refusal_reaches_the_app_as_an_error_fragment() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.set(|knobs| knobs.deny = true);
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", TO_APP_PAGE).await;

    let landed = answer.back_at(&app).await;

    assert_refused_in_fragment(&landed, "BAD_USER_INPUT", "access_denied");
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
}

#[tokio::test]
async fn a_pkce_verifier_the_provider_does_not_match_is_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let as_json = through_the_provider(&app, "oidc", "").await;
    let to_app = through_the_provider(&app, "oidc", TO_APP_PAGE).await;
    // The verifiers no longer match the challenges the provider was sent.
    meddle(
        &app,
        "UPDATE auth_flows SET pkce_verifier = 'another-verifier-' || pkce_verifier",
    )
    .await;

    assert_flow_refused(as_json.back_at(&app).await, "invalid_grant").await;
    assert_refused_in_fragment(
        &to_app.back_at(&app).await,
        "BAD_USER_INPUT",
        "invalid_grant",
    );
    assert_eq!(
        idp.refusals(),
        ["invalid_grant: PKCE verification failed"; 2]
    );
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.set(|knobs| knobs.nonce = Some("someone-elses-nonce".into()));
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let answer = through_the_provider(&app, "oidc", "").await;

    assert_flow_refused(answer.back_at(&app).await, "its nonce is wrong").await;
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
}

#[tokio::test]
async fn a_new_identity_with_a_taken_address_is_account_exists_naming_the_provider() {
    let oidc = TestIdentityProvider::start(Shape::Oidc).await;
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&oidc, "oidc"), (&google, "google")]).await;
    signed_in(
        through_the_provider(&app, "oidc", "")
            .await
            .back_at(&app)
            .await,
    )
    .await;
    let before = app.sign_in_rows().await;
    // Someone else at Google, with the same address.
    google.sign_in_as(Person {
        subject: "google-ada".into(),
        ..Person::named("ada")
    });
    let as_json = through_the_provider(&app, "google", "").await;
    let to_app = through_the_provider(&app, "google", TO_APP_PAGE).await;

    let body = assert_refused(
        as_json.back_at(&app).await,
        StatusCode::CONFLICT,
        "ACCOUNT_EXISTS",
        "sign in with oidc",
    )
    .await;
    assert_eq!(body["provider"], "oidc");
    let fragment =
        assert_refused_in_fragment(&to_app.back_at(&app).await, "ACCOUNT_EXISTS", "oidc");
    assert_eq!(fragment["provider"], "oidc");
    assert_eq!(app.sign_in_rows().await, before);
}

#[tokio::test]
async fn a_provider_out_of_reach_at_the_callback_is_service_unavailable() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;
    let as_json = through_the_provider(&app, "oidc", "").await;
    let to_app = through_the_provider(&app, "oidc", TO_APP_PAGE).await;

    idp.stop().await;

    assert_refused(
        as_json.back_at(&app).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "retry",
    )
    .await;
    assert_refused_in_fragment(&to_app.back_at(&app).await, "SERVICE_UNAVAILABLE", "retry");
    assert_eq!(app.sign_in_rows().await, SignInRows::default());
}

#[tokio::test]
async fn a_provider_down_at_start_up_signs_browsers_in_once_it_is_up() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let settings = idp.settings("oidc");
    let address = idp.stop().await;
    let app = app_with_provider_settings(settings).await;

    let refused = browser().get(app.url("/auth/oidc")).send().await.unwrap();

    assert_refused(
        refused,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        "retry",
    )
    .await;
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let idp = TestIdentityProvider::start_on(listener, Shape::Oidc).await;
    // The retry `festapi serve` keeps running in the background until the provider answers.
    assert!(app.state.providers.load().await);
    let answer = through_the_provider(&app, "oidc", "").await;
    signed_in(answer.back_at(&app).await).await;
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));
    assert!(idp.refusals().is_empty());
}

#[tokio::test]
async fn a_key_rotated_at_the_provider_is_fetched_and_an_unpublished_kid_is_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&[(&idp, "oidc")]).await;

    // The id_token names a kid the server has not seen: the provider rotated its key.
    idp.rotate_key();
    let answer = through_the_provider(&app, "oidc", "").await;
    signed_in(answer.back_at(&app).await).await;
    let after_rotation = app.sign_in_rows().await;
    assert_eq!(after_rotation, SignInRows::signed_in(1, 1, 1));

    // A kid the provider never published, just after the keys were fetched again.
    idp.set(|knobs| knobs.signer = Signer::UnknownKid);
    let answer = through_the_provider(&app, "oidc", "").await;
    assert_flow_refused(
        answer.back_at(&app).await,
        "signed with a key the provider does not publish",
    )
    .await;
    assert_eq!(app.sign_in_rows().await, after_rotation);
}

#[tokio::test]
async fn kakao_signs_a_browser_in_with_its_client_secret_in_the_body() {
    let idp = TestIdentityProvider::start(Shape::Kakao).await;
    idp.sign_in_as(Person::named("jiwoo"));
    let app = app_signing_in_with(&[(&idp, "kakao")]).await;
    let answer = through_the_provider(&app, "kakao", "").await;

    let body = signed_in(answer.back_at(&app).await).await;

    assert_eq!(body["user"]["email"], "jiwoo@example.test", "{body}");
    assert_eq!(body["user"]["name"], "jiwoo", "{body}");
    assert!(idp.refusals().is_empty(), "{:?}", idp.refusals());
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));
}

#[tokio::test]
async fn naver_signs_a_browser_in_from_its_profile_envelope() {
    let idp = TestIdentityProvider::start(Shape::Naver).await;
    idp.sign_in_as(Person::named("minji"));
    let app = app_signing_in_with(&[(&idp, "naver")]).await;
    let answer = through_the_provider(&app, "naver", TO_APP_PAGE).await;

    let fragment = landed_fragment(&answer.back_at(&app).await);

    let me = app
        .with_token(&fragment["access_token"])
        .graphql("{ me { name email } }", json!({}))
        .await;
    assert_eq!(me.data()["me"]["name"], "minji");
    assert_eq!(me.data()["me"]["email"], "minji@example.test");
    // Naver demands the flow's state in the token request too.
    assert!(idp.refusals().is_empty(), "{:?}", idp.refusals());
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));
}

#[tokio::test]
async fn apple_answers_the_callback_with_a_cross_site_form_post() {
    let idp = TestIdentityProvider::start(Shape::Apple).await;
    idp.sign_in_as(Person::named("hopper"));
    let app = app_signing_in_with(&[(&idp, "apple")]).await;
    let started = browser().get(app.url("/auth/apple")).send().await.unwrap();
    let set_cookie = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("SameSite=None"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    // The test provider hands back the form a browser would post for Apple.
    let form: Value = browser()
        .get(authorize)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fields: Vec<(String, String)> = form["fields"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().unwrap().to_owned()))
        .collect();
    assert!(fields.iter().any(|(name, _)| name == "user"), "{form}");

    let response = browser()
        .post(app.url("/auth/apple/callback"))
        .header("cookie", &cookie)
        .form(&fields)
        .send()
        .await
        .unwrap();

    let body = signed_in(response).await;
    assert_eq!(body["user"]["email"], "hopper@example.test", "{body}");
    assert_eq!(app.sign_in_rows().await, SignInRows::signed_in(1, 1, 1));
}
