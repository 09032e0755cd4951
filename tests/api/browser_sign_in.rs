//! The browser sign-in end to end: `GET /auth/{provider}` to the test provider and back to the
//! callback with the binding cookie, and every refusal of a flow that is missing, reused,
//! foreign or refused by the provider, leaving no session behind.

use serde_json::json;
use url::Url;

use crate::support::TestApp;
use crate::support::identity_provider::{Person, Shape, TestIdentityProvider};

const APP_PAGE: &str = "http://localhost:3000/signed-in";

/// A browser that follows no redirect by itself, so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn app_signing_in_with(idp: &TestIdentityProvider) -> TestApp {
    let mut builder = TestApp::builder()
        .with_env("AUTH_PUBLIC_URL", "http://127.0.0.1:8000")
        .with_env("AUTH_ALLOWED_REDIRECTS", APP_PAGE);
    for (variable, value) in idp.settings("oidc") {
        builder = builder.with_env(&variable, &value);
    }
    builder.start().await
}

/// A flow started at the server and answered by the provider: the binding cookie, and the query
/// string the provider sent the browser back with.
struct ProviderAnswer {
    cookie: String,
    query: String,
}

async fn through_the_provider(app: &TestApp, start_query: &str) -> ProviderAnswer {
    let started = browser()
        .get(app.url(&format!("/auth/oidc{start_query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), reqwest::StatusCode::SEE_OTHER);
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
    assert_eq!(back.path(), "/auth/oidc/callback");
    ProviderAnswer {
        cookie,
        query: back.query().unwrap_or_default().to_owned(),
    }
}

async fn callback(app: &TestApp, query: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = browser().get(app.url(&format!("/auth/oidc/callback?{query}")));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

async fn sessions(app: &TestApp) -> i64 {
    let client = app.database.admin_client().await;
    let row = client
        .query_one("SELECT count(*) FROM sessions", &[])
        .await
        .unwrap();
    row.get(0)
}

async fn assert_flow_refused(response: reqwest::Response, words: &str) {
    assert_eq!(response.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "BAD_USER_INPUT", "{body}");
    assert!(body["message"].as_str().unwrap().contains(words), "{body}");
}

#[tokio::test]
async fn a_browser_signs_in_and_lands_on_the_app_with_its_tokens() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.sign_in_as(Person::named("grace"));
    let app = app_signing_in_with(&idp).await;
    let answer = through_the_provider(&app, &format!("?redirect_to={APP_PAGE}")).await;

    let landed = callback(&app, &answer.query, Some(&answer.cookie)).await;

    assert_eq!(landed.status(), reqwest::StatusCode::SEE_OTHER);
    let location = Url::parse(landed.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.as_str().split('#').next().unwrap(), APP_PAGE);
    let fragment: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
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

    // The same answer again: the flow was single use.
    let again = callback(&app, &answer.query, Some(&answer.cookie)).await;
    assert_flow_refused(again, "already used").await;
    assert_eq!(sessions(&app).await, 1);
}

#[tokio::test]
async fn without_redirect_to_the_callback_answers_json() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.sign_in_as(Person::named("ada"));
    let app = app_signing_in_with(&idp).await;
    let answer = through_the_provider(&app, "").await;

    let response = callback(&app, &answer.query, Some(&answer.cookie)).await;

    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["tokenType"], "Bearer");
    assert_eq!(body["user"]["name"], "ada");
    assert!(body["accessToken"].is_string() && body["refreshToken"].is_string());
    assert!(body["expiresIn"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_callback_without_the_browsers_cookie_signs_nobody_in() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&idp).await;
    let answer = through_the_provider(&app, "").await;

    let no_cookie = callback(&app, &answer.query, None).await;
    assert_flow_refused(no_cookie, "cookie is missing").await;
    let other_browser = callback(&app, &answer.query, Some("festapi_auth_flow=someone-else")).await;
    assert_flow_refused(other_browser, "another browser").await;
    assert_eq!(sessions(&app).await, 0);

    // The browser that started it can still finish it.
    let own = callback(&app, &answer.query, Some(&answer.cookie)).await;
    assert_eq!(own.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn missing_or_made_up_states_are_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let app = app_signing_in_with(&idp).await;
    let answer = through_the_provider(&app, "").await;
    let code_only: String = answer
        .query
        .split('&')
        .filter(|pair| !pair.starts_with("state="))
        .collect::<Vec<_>>()
        .join("&");

    assert_flow_refused(
        callback(&app, &code_only, Some(&answer.cookie)).await,
        "no `state`",
    )
    .await;
    let made_up = format!("{code_only}&state=made-up");
    assert_flow_refused(
        callback(&app, &made_up, Some(&answer.cookie)).await,
        "unknown",
    )
    .await;
    assert_eq!(sessions(&app).await, 0);
}

#[tokio::test]
async fn a_provider_refusal_reaches_the_app_as_an_error_fragment() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.set(|knobs| knobs.deny = true);
    let app = app_signing_in_with(&idp).await;
    let answer = through_the_provider(&app, &format!("?redirect_to={APP_PAGE}")).await;

    let landed = callback(&app, &answer.query, Some(&answer.cookie)).await;

    assert_eq!(landed.status(), reqwest::StatusCode::SEE_OTHER);
    let location = Url::parse(landed.headers()["location"].to_str().unwrap()).unwrap();
    let fragment: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap().as_bytes())
            .into_owned()
            .collect();
    assert_eq!(fragment["error"], "BAD_USER_INPUT");
    assert!(
        fragment["error_description"].contains("access_denied"),
        "{fragment:?}"
    );
    assert!(!fragment.contains_key("access_token"));
    assert_eq!(sessions(&app).await, 0);
}

#[tokio::test]
async fn apple_answers_the_callback_with_a_cross_site_form_post() {
    let idp = TestIdentityProvider::start(Shape::Apple).await;
    idp.sign_in_as(Person::named("hopper"));
    let mut builder = TestApp::builder().with_env("AUTH_PUBLIC_URL", "http://127.0.0.1:8000");
    for (variable, value) in idp.settings("apple") {
        builder = builder.with_env(&variable, &value);
    }
    let app = builder.start().await;
    let started = browser().get(app.url("/auth/apple")).send().await.unwrap();
    let set_cookie = started.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("SameSite=None"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    // The test provider hands back the form a browser would post for Apple.
    let form: serde_json::Value = browser()
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

    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], "hopper@example.test", "{body}");
    assert_eq!(sessions(&app).await, 1);
}
