//! The identity providers against the test identity provider: each provider's shape, and every
//! way an answer can fail verification.

use std::collections::HashMap;

use festapi::auth::providers::{
    AuthorizationRequest, CodeExchange, Profile, ProviderError, Providers,
};
use festapi::config::{Config, ProviderName};
use url::Url;

use crate::support::identity_provider::{Knobs, Person, Shape, Signer, TestIdentityProvider};

/// Where FestAPI says it lives; providers only ever send the browser back there.
const PUBLIC_URL: &str = "http://127.0.0.1:8000";
/// A change to how the test provider answers.
type KnobChange = fn(&mut Knobs);

const VERIFIER: &str = "a-pkce-verifier-of-at-least-forty-three-characters-0123456789";

fn providers_for(idp: &TestIdentityProvider, name: &str) -> Providers {
    let mut env: HashMap<String, String> = idp.settings(name).into_iter().collect();
    env.insert("AUTH_PUBLIC_URL".into(), PUBLIC_URL.into());
    let config = Config::from_lookup(|variable| env.get(variable).cloned()).unwrap();
    Providers::new(&config.auth).unwrap()
}

fn callback(name: ProviderName) -> Url {
    Url::parse(&format!("{PUBLIC_URL}/auth/{name}/callback")).unwrap()
}

/// Runs the authorization step as a browser would and returns the code the provider gave.
async fn authorize(providers: &Providers, name: ProviderName, nonce: &str) -> String {
    let provider = providers.get(name).unwrap();
    let redirect_uri = callback(name);
    let url = provider
        .authorization_url(&AuthorizationRequest {
            redirect_uri: &redirect_uri,
            state: "the-state",
            nonce,
            pkce_verifier: VERIFIER,
        })
        .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    let fields: HashMap<String, String> = if provider.posts_callback_form() {
        let form: serde_json::Value = response.json().await.unwrap();
        serde_json::from_value(form["fields"].clone()).unwrap()
    } else {
        let location = response.headers()["location"].to_str().unwrap();
        Url::parse(location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    };
    assert_eq!(fields["state"], "the-state");
    fields["code"].clone()
}

async fn exchange(
    providers: &Providers,
    name: ProviderName,
    code: &str,
    verifier: &str,
    nonce: &str,
) -> Result<Profile, ProviderError> {
    let redirect_uri = callback(name);
    providers
        .get(name)
        .unwrap()
        .exchange_code(CodeExchange {
            code,
            redirect_uri: &redirect_uri,
            pkce_verifier: Some(verifier),
            nonce: Some(nonce),
            state: Some("the-state"),
        })
        .await
}

/// Signs in once at a provider loaded from `idp`.
async fn sign_in(idp: &TestIdentityProvider, name: ProviderName) -> Result<Profile, ProviderError> {
    let providers = providers_for(idp, name.as_str());
    assert!(providers.load().await, "the provider loads");
    let code = authorize(&providers, name, "the-nonce").await;
    exchange(&providers, name, &code, VERIFIER, "the-nonce").await
}

fn assert_refused(outcome: Result<Profile, ProviderError>, reason: &str) {
    match outcome {
        Err(ProviderError::Refused(message)) => {
            assert!(message.contains(reason), "{message:?} lacks {reason:?}");
        }
        other => panic!("expected a refusal ({reason}), got {other:?}"),
    }
}

#[tokio::test]
async fn an_openid_connect_provider_yields_the_profile_from_the_id_token() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.sign_in_as(Person::named("grace"));

    let profile = sign_in(&idp, ProviderName::Oidc).await.unwrap();

    assert_eq!(
        profile,
        Profile {
            subject: "sub-grace".into(),
            email: Some("grace@example.test".into()),
            email_verified: true,
            name: Some("grace".into()),
            picture: Some("https://pictures.example.test/grace.png".into()),
        }
    );
    let authorization = &idp.authorizations()[0];
    assert_eq!(authorization.response_type.as_deref(), Some("code"));
    assert_eq!(authorization.code_challenge_method.as_deref(), Some("S256"));
    assert_eq!(authorization.nonce.as_deref(), Some("the-nonce"));
    assert_eq!(authorization.scope.as_deref(), Some("openid email profile"));
}

#[tokio::test]
async fn claims_missing_from_the_id_token_come_from_the_user_info_endpoint() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.set(|knobs| knobs.omit_claims = vec!["email", "email_verified", "name", "picture"]);

    let profile = sign_in(&idp, ProviderName::Oidc).await.unwrap();

    assert_eq!(profile.email.as_deref(), Some("ada@example.test"));
    assert!(profile.email_verified);
    assert_eq!(profile.name.as_deref(), Some("ada"));
}

#[tokio::test]
async fn google_and_kakao_are_openid_connect_providers_with_their_own_client_authentication() {
    let google = TestIdentityProvider::start(Shape::Oidc).await;
    assert_eq!(
        sign_in(&google, ProviderName::Google)
            .await
            .unwrap()
            .subject,
        "sub-ada"
    );
    // Kakao takes the client secret in the body only; the test provider refuses Basic.
    let kakao = TestIdentityProvider::start(Shape::Kakao).await;
    assert_eq!(
        sign_in(&kakao, ProviderName::Kakao).await.unwrap().subject,
        "sub-ada"
    );
    assert!(kakao.refusals().is_empty(), "{:?}", kakao.refusals());
}

#[tokio::test]
async fn apple_is_asked_for_a_form_post_and_accepts_our_es256_client_secret() {
    let idp = TestIdentityProvider::start(Shape::Apple).await;

    let profile = sign_in(&idp, ProviderName::Apple).await.unwrap();

    assert_eq!(profile.subject, "sub-ada");
    assert_eq!(profile.email.as_deref(), Some("ada@example.test"));
    // Apple writes email_verified as the string "true".
    assert!(profile.email_verified);
    assert!(idp.refusals().is_empty(), "{:?}", idp.refusals());
    let authorization = &idp.authorizations()[0];
    assert_eq!(authorization.response_mode.as_deref(), Some("form_post"));
    assert_eq!(authorization.scope.as_deref(), Some("openid name email"));
}

#[tokio::test]
async fn naver_profiles_come_from_the_envelope_of_its_profile_endpoint() {
    let idp = TestIdentityProvider::start(Shape::Naver).await;
    idp.sign_in_as(Person::named("minji"));

    let profile = sign_in(&idp, ProviderName::Naver).await.unwrap();

    assert_eq!(profile.subject, "sub-minji");
    assert_eq!(profile.email.as_deref(), Some("minji@example.test"));
    assert_eq!(profile.name.as_deref(), Some("minji"));
    assert_eq!(
        profile.picture.as_deref(),
        Some("https://pictures.example.test/minji.png")
    );
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_by_the_provider() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let providers = providers_for(&idp, "oidc");
    assert!(providers.load().await);
    let code = authorize(&providers, ProviderName::Oidc, "the-nonce").await;

    let outcome = exchange(
        &providers,
        ProviderName::Oidc,
        &code,
        "another-verifier-of-at-least-forty-three-characters-000000",
        "the-nonce",
    )
    .await;

    assert_refused(outcome, "refused the authorization code: invalid_grant");
    assert_eq!(idp.refusals(), ["invalid_grant: PKCE verification failed"]);
}

#[tokio::test]
async fn an_id_token_with_another_nonce_is_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    idp.set(|knobs| knobs.nonce = Some("someone-elses-nonce".into()));
    assert_refused(
        sign_in(&idp, ProviderName::Oidc).await,
        "its nonce is wrong",
    );
}

#[tokio::test]
async fn expired_wrong_audience_wrong_issuer_and_forged_id_tokens_are_refused() {
    let cases: [(KnobChange, &str); 4] = [
        (|knobs| knobs.expired = true, "it has expired"),
        (
            |knobs| knobs.audience = Some("another-client".into()),
            "it was issued for another client",
        ),
        (
            |knobs| knobs.issuer = Some("https://impostor.example.test".into()),
            "it was issued by another issuer",
        ),
        (
            |knobs| knobs.signer = Signer::ForgedUnderCurrentKid,
            "its signature does not verify",
        ),
    ];
    for (knob, reason) in cases {
        let idp = TestIdentityProvider::start(Shape::Oidc).await;
        idp.set(knob);
        assert_refused(sign_in(&idp, ProviderName::Oidc).await, reason);
    }
}

#[tokio::test]
async fn a_rotated_key_is_fetched_once_and_an_unknown_kid_is_refused() {
    let idp = TestIdentityProvider::start(Shape::Oidc).await;
    let providers = providers_for(&idp, "oidc");
    assert!(providers.load().await);
    let name = ProviderName::Oidc;

    // The provider rotates: tokens now name a key published after we fetched the key set.
    idp.rotate_key();
    let code = authorize(&providers, name, "n").await;
    let profile = exchange(&providers, name, &code, VERIFIER, "n")
        .await
        .unwrap();
    assert_eq!(profile.subject, "sub-ada");

    // A kid nobody publishes: the keys were fetched less than a minute ago, so they are not
    // fetched again, and the token is refused.
    idp.set(|knobs| knobs.signer = Signer::UnknownKid);
    let code = authorize(&providers, name, "n").await;
    assert_refused(
        exchange(&providers, name, &code, VERIFIER, "n").await,
        "signed with a key the provider does not publish",
    );
}

#[tokio::test]
async fn a_provider_down_at_start_up_is_unavailable_until_it_answers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let mut env: HashMap<String, String> = [
        ("AUTH_PUBLIC_URL", PUBLIC_URL.to_owned()),
        (
            "AUTH_OIDC_CLIENT_ID",
            crate::support::identity_provider::CLIENT_ID.to_owned(),
        ),
        (
            "AUTH_OIDC_CLIENT_SECRET",
            crate::support::identity_provider::CLIENT_SECRET.to_owned(),
        ),
        ("AUTH_OIDC_ISSUER", format!("http://{address}")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    env.insert("APP_ENV".into(), "test".into());
    let config = Config::from_lookup(|variable| env.get(variable).cloned()).unwrap();
    let providers = Providers::new(&config.auth).unwrap();

    assert!(!providers.load().await);
    let provider = providers.get(ProviderName::Oidc).unwrap();
    let redirect_uri = callback(ProviderName::Oidc);
    let request = AuthorizationRequest {
        redirect_uri: &redirect_uri,
        state: "s",
        nonce: "n",
        pkce_verifier: VERIFIER,
    };
    assert!(matches!(
        provider.authorization_url(&request),
        Err(ProviderError::NotReady(ProviderName::Oidc))
    ));

    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let _idp = TestIdentityProvider::start_on(listener, Shape::Oidc).await;
    assert!(providers.load().await);
    assert!(provider.authorization_url(&request).is_ok());
}

#[tokio::test]
async fn id_tokens_of_apps_are_verified_and_apples_carry_the_hash_of_the_nonce() {
    let idp = TestIdentityProvider::start(Shape::Apple).await;
    let providers = providers_for(&idp, "apple");
    assert!(providers.load().await);
    let apple = providers.get(ProviderName::Apple).unwrap();
    let hashed = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(b"app-nonce"));
    let token = idp.id_token(Some(&hashed));

    let profile = apple
        .verify_id_token(&token, Some("app-nonce"))
        .await
        .unwrap();
    assert_eq!(profile.subject, "sub-ada");

    assert_refused(
        apple.verify_id_token(&token, Some("another-nonce")).await,
        "its nonce is wrong",
    );
    assert_refused(
        apple.verify_id_token(&token, None).await,
        "its nonce is wrong",
    );
    assert_refused(apple.verify_id_token("not.a.token", None).await, "id_token");
}
