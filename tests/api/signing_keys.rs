//! Tokens signed with a private key: published at `/.well-known/jwks.json`, verifiable by other
//! services, and rotated without signing anyone out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use reqwest::StatusCode;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::pkcs8::LineEnding;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{Client, TEST_JWT_SECRET, TestApp};

/// A file with a key or a key set in it, removed when dropped.
struct KeyFile(std::path::PathBuf);

impl KeyFile {
    fn new(contents: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("festapi-signing-key-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).expect("a key file");
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 path")
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ed25519_key(seed: u8) -> KeyFile {
    let key = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
    KeyFile::new(&key.to_pkcs8_pem(LineEnding::LF).expect("a PEM key"))
}

fn rsa_key() -> KeyFile {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("an RSA key");
    KeyFile::new(&key.to_pkcs1_pem(LineEnding::LF).expect("a PEM key"))
}

/// A server signing with `key`, named `key_id` when given, accepting `previous` keys too.
async fn signing_with(key: &KeyFile, key_id: Option<&str>, previous: Option<&KeyFile>) -> TestApp {
    builder(key, key_id, previous).start().await
}

fn builder(
    key: &KeyFile,
    key_id: Option<&str>,
    previous: Option<&KeyFile>,
) -> crate::support::TestAppBuilder {
    // A blank variable is an unset one: the harness's JWT_SECRET gives way to the key.
    let mut builder = TestApp::builder()
        .with_env("JWT_SECRET", "")
        .with_env("JWT_PRIVATE_KEY_FILE", key.path());
    if let Some(key_id) = key_id {
        builder = builder.with_env("JWT_KEY_ID", key_id);
    }
    if let Some(previous) = previous {
        builder = builder.with_env("JWT_PREVIOUS_PUBLIC_KEYS_FILE", previous.path());
    }
    builder
}

async fn key_set(app: &TestApp) -> (JwkSet, Value) {
    let response = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let raw: Value = response.json().await.expect("a JSON key set");
    let set = serde_json::from_value(raw.clone()).expect("a JWK set");
    (set, raw)
}

/// Verifies `token` as another service would: with the published key its `kid` names.
fn verify_elsewhere(token: &str, keys: &JwkSet) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    let jwk = keys
        .find(header.kid.as_deref().expect("a kid"))
        .expect("the key the token names is published");
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&["festapi"]);
    validation.set_audience(&["festapi"]);
    let key = DecodingKey::from_jwk(jwk).expect("a usable published key");
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("a token other services can verify")
        .claims
}

async fn assert_accepted(client: &Client, user_id: &str) {
    let reply = client.graphql("{ me { id } }", json!({})).await;
    assert_eq!(reply.data()["me"]["id"], user_id, "{reply:?}");
}

async fn assert_refused(app: &TestApp, token: &str, words: &str) {
    let reply = app
        .with_token(token)
        .graphql("{ me { id } }", json!({}))
        .await;
    assert_eq!(reply.error_code(), "UNAUTHENTICATED", "{reply:?}");
    let message = reply.error()["message"].as_str().unwrap_or_default();
    assert!(message.contains(words), "{words:?} in {message:?}");
}

fn token_of(client: &Client) -> &str {
    client.token.as_deref().expect("an access token")
}

#[tokio::test]
async fn ed25519_tokens_name_their_key_and_verify_with_the_published_one() {
    let key = ed25519_key(1);
    let app = signing_with(&key, Some("festapi-2026-11"), None).await;
    let client = app.signed_in("ada").await;
    assert_accepted(&client, client.user_id()).await;

    let header = jsonwebtoken::decode_header(token_of(&client)).expect("a header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("festapi-2026-11"));

    let (keys, raw) = key_set(&app).await;
    let expected_x = URL_SAFE_NO_PAD.encode(
        ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .as_bytes(),
    );
    assert_eq!(
        raw,
        json!({ "keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": expected_x,
            "use": "sig", "alg": "EdDSA", "kid": "festapi-2026-11",
        }] })
    );
    let claims = verify_elsewhere(token_of(&client), &keys);
    assert_eq!(claims["sub"], client.user_id());
}

#[tokio::test]
async fn rsa_keys_sign_rs256_under_their_rfc_7638_thumbprint() {
    let key = rsa_key();
    let app = signing_with(&key, None, None).await;
    let client = app.signed_in("ada").await;
    assert_accepted(&client, client.user_id()).await;

    let (keys, raw) = key_set(&app).await;
    let published = &raw["keys"][0];
    assert_eq!(published["kty"], "RSA");
    assert_eq!(published["alg"], "RS256");
    let mut members: Vec<&String> = published.as_object().expect("a JWK").keys().collect();
    members.sort();
    assert_eq!(
        members,
        ["alg", "e", "kid", "kty", "n", "use"],
        "public values only"
    );
    // RFC 7638 §3: the SHA-256 of the required members, in lexical order, without spaces.
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        published["e"].as_str().expect("e"),
        published["n"].as_str().expect("n")
    );
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    assert_eq!(published["kid"], thumbprint.as_str());

    let header = jsonwebtoken::decode_header(token_of(&client)).expect("a header");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.kid.as_deref(), Some(thumbprint.as_str()));
    verify_elsewhere(token_of(&client), &keys);
}

#[tokio::test]
async fn a_rotation_keeps_tokens_of_the_previous_key_working_until_it_is_dropped() {
    let old_key = ed25519_key(1);
    let old = signing_with(&old_key, Some("old"), None).await;
    let signed_in_before = old.signed_in("ada").await;

    // The operator saves the key set the old key published, then switches keys.
    let (_, old_set) = key_set(&old).await;
    let previous = KeyFile::new(&old_set.to_string());
    let new_key = rsa_key();
    let rotated = builder(&new_key, Some("new"), Some(&previous))
        .start_beside(&old)
        .await;
    assert_accepted(
        &rotated.with_token(token_of(&signed_in_before)),
        signed_in_before.user_id(),
    )
    .await;
    let signed_in_after = rotated.signed_in("grace").await;
    let header = jsonwebtoken::decode_header(token_of(&signed_in_after)).expect("a header");
    assert_eq!(header.kid.as_deref(), Some("new"));

    let (keys, raw) = key_set(&rotated).await;
    let ids: Vec<&str> = raw["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("a kid"))
        .collect();
    assert_eq!(ids, ["new", "old"]);
    verify_elsewhere(token_of(&signed_in_before), &keys);
    verify_elsewhere(token_of(&signed_in_after), &keys);

    // Once the previous key is dropped, its tokens are refused.
    let after_rotation = builder(&new_key, Some("new"), None)
        .start_beside(&old)
        .await;
    assert_refused(
        &after_rotation,
        token_of(&signed_in_before),
        "names a key (kid) this server does not accept",
    )
    .await;
}

/// A token with the claims of `client`'s, re-signed with `key` under `header`.
fn forged(client: &Client, header: &Header, key: &EncodingKey) -> String {
    let claims: Value = {
        let payload = token_of(client).split('.').nth(1).expect("a payload");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims")
    };
    jsonwebtoken::encode(header, &claims, key).expect("a signed token")
}

#[tokio::test]
async fn tokens_not_signed_by_a_published_key_are_refused() {
    let key = ed25519_key(1);
    let app = signing_with(&key, Some("current"), None).await;
    let client = app.signed_in("ada").await;
    assert_accepted(&client, client.user_id()).await;

    let shared_secret = EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes());
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[2; 32])
        .to_pkcs8_der()
        .expect("a DER key");
    let stranger = EncodingKey::from_ed_der(stranger.as_bytes());
    let with_kid = |algorithm, kid: Option<&str>| Header {
        kid: kid.map(str::to_owned),
        ..Header::new(algorithm)
    };

    for (header, key, words) in [
        // The HS256 secret of a server without keys, with and without the current key's id.
        (
            with_kid(Algorithm::HS256, None),
            &shared_secret,
            "names no key (kid)",
        ),
        (
            with_kid(Algorithm::HS256, Some("current")),
            &shared_secret,
            "the access token is invalid",
        ),
        // Another Ed25519 key claiming to be the current one, or naming itself.
        (
            with_kid(Algorithm::EdDSA, Some("current")),
            &stranger,
            "the access token is invalid",
        ),
        (
            with_kid(Algorithm::EdDSA, Some("stranger")),
            &stranger,
            "does not accept",
        ),
    ] {
        assert_refused(&app, &forged(&client, &header, key), words).await;
    }

    // A token whose signature was dropped (`alg: none`).
    let token = token_of(&client);
    let unsigned_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"current"}"#);
    let payload = token.split('.').nth(1).expect("a payload");
    assert_refused(&app, &format!("{unsigned_header}.{payload}."), "invalid").await;
}

#[tokio::test]
async fn servers_signing_with_a_shared_secret_publish_no_keys() {
    let app = TestApp::new().await;
    let response = reqwest::get(app.url("/.well-known/jwks.json"))
        .await
        .expect("a response");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
