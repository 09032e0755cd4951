//! A test identity provider: a real OpenID Connect provider on a loopback port, with knobs to
//! make it misbehave the ways real ones can.
//!
//! It serves a discovery document, a key set, an authorization endpoint that approves at once
//! (or answers `error=access_denied`), a token endpoint that checks the client, the code, the
//! redirect URI and the PKCE verifier and returns RS256-signed `id_token`s, and a user-info
//! endpoint, plain or in Naver's envelope. Keys are made by the test run itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The client id FestAPI is registered with at the test provider.
pub(crate) const CLIENT_ID: &str = "festapi-test-client";
/// The client secret FestAPI is registered with.
pub(crate) const CLIENT_SECRET: &str = "festapi-test-client-secret";
/// Apple's team id and key id, for the ES256 client secret.
pub(crate) const APPLE_TEAM_ID: &str = "TEAM123456";
/// The key id of the Apple key.
pub(crate) const APPLE_KEY_ID: &str = "APPLEKEY01";
/// Apple's longest client-secret lifetime.
const APPLE_MAX_SECRET_LIFETIME: i64 = 15_777_000;

/// The RSA keys of the whole test run: making one takes a while, so they are made once.
static RSA_KEYS: OnceLock<Vec<RsaKey>> = OnceLock::new();

#[derive(Clone)]
struct RsaKey {
    encoding: EncodingKey,
    modulus: String,
    exponent: String,
}

fn rsa_keys() -> &'static [RsaKey] {
    RSA_KEYS.get_or_init(|| {
        (0..3)
            .map(|_| {
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
                let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
                RsaKey {
                    encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
                    modulus: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                    exponent: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
                }
            })
            .collect()
    })
}

/// Which key signs `id_token`s, and under which `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signer {
    /// The current published key.
    Current,
    /// A key nobody published, under the current key's `kid`: the signature cannot verify.
    ForgedUnderCurrentKid,
    /// A key nobody published, under a `kid` nobody published either.
    UnknownKid,
}

/// How the provider answers; tests change these between requests.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    /// Answer the authorization request with `error=access_denied`.
    pub deny: bool,
    /// Claims left out of `id_token`s (`email`, `name`, `picture`, `email_verified`).
    pub omit_claims: Vec<&'static str>,
    /// An `aud` other than the client id.
    pub audience: Option<String>,
    /// An `iss` other than the issuer.
    pub issuer: Option<String>,
    /// Issue `id_token`s that expired an hour ago.
    pub expired: bool,
    /// A `nonce` other than the one the authorization request carried.
    pub nonce: Option<String>,
    /// Which key signs.
    pub signer: Signer,
    /// Issue no `id_token` at all (Naver).
    pub no_id_token: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            deny: false,
            omit_claims: Vec::new(),
            audience: None,
            issuer: None,
            expired: false,
            nonce: None,
            signer: Signer::Current,
            no_id_token: false,
        }
    }
}

/// Who the provider says signed in.
#[derive(Debug, Clone)]
pub(crate) struct Person {
    /// The subject (`sub`).
    pub subject: String,
    /// The e-mail address, unless the person keeps it to themselves.
    pub email: Option<String>,
    /// Whether it is verified.
    pub email_verified: bool,
    /// The display name.
    pub name: String,
    /// A picture URL.
    pub picture: String,
}

impl Person {
    /// A person called `name`, with subject `sub-{name}` and address `{name}@example.test`.
    pub(crate) fn named(name: &str) -> Self {
        Self {
            subject: format!("sub-{name}"),
            email: Some(format!("{name}@example.test")),
            email_verified: true,
            name: name.to_owned(),
            picture: format!("https://pictures.example.test/{name}.png"),
        }
    }
}

/// How the provider is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An OpenID Connect provider accepting `client_secret_basic` and `client_secret_post`.
    Oidc,
    /// Kakao: `client_secret_post` only.
    Kakao,
    /// Apple: `client_secret_post` with an ES256 client secret, callbacks as form POSTs, and
    /// the person's name only on their first sign-in, in the `user` form field.
    Apple,
    /// Naver: no discovery, no `id_token`, the profile in an envelope.
    Naver,
}

/// What the authorization endpoint was asked.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AuthorizeParams {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope`.
    pub scope: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `nonce`.
    pub nonce: Option<String>,
    /// `code_challenge`.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`.
    pub code_challenge_method: Option<String>,
    /// `response_mode`.
    pub response_mode: Option<String>,
}

struct IssuedCode {
    params: AuthorizeParams,
    person: Person,
}

struct Inner {
    issuer: String,
    shape: Shape,
    knobs: Mutex<Knobs>,
    person: Mutex<Person>,
    /// Indexes into [`rsa_keys`] of the published keys, with their `kid`s; the first signs.
    published: Mutex<Vec<(usize, String)>>,
    codes: Mutex<HashMap<String, IssuedCode>>,
    access_tokens: Mutex<HashMap<String, Person>>,
    /// Every authorization request received.
    authorizations: Mutex<Vec<AuthorizeParams>>,
    /// Subjects Apple has already sent a name for.
    named_before: Mutex<Vec<String>>,
    /// Apple's public key, to check client secrets with.
    apple_public_key: Option<DecodingKey>,
    /// Token requests refused, with the reason.
    refusals: Mutex<Vec<String>>,
}

/// A running test identity provider.
pub(crate) struct TestIdentityProvider {
    /// `http://127.0.0.1:{port}`.
    pub issuer: String,
    inner: Arc<Inner>,
    server: JoinHandle<()>,
    /// Tells the server to stop, for [`TestIdentityProvider::stop`].
    stop: Option<oneshot::Sender<()>>,
    /// For Apple: the path of the `.p8` key FestAPI signs its client secret with.
    pub apple_key_file: Option<std::path::PathBuf>,
}

impl Drop for TestIdentityProvider {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(file) = &self.apple_key_file {
            let _ = std::fs::remove_file(file);
        }
    }
}

impl TestIdentityProvider {
    /// Starts a provider of `shape` on an ephemeral loopback port.
    pub(crate) async fn start(shape: Shape) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener, shape).await
    }

    /// Starts a provider of `shape` on `listener`.
    pub(crate) async fn start_on(listener: TcpListener, shape: Shape) -> Self {
        let address: SocketAddr = listener.local_addr().unwrap();
        let issuer = format!("http://{address}");
        let (apple_public_key, apple_key_file) = if shape == Shape::Apple {
            let secret = p256::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
            let file = std::env::temp_dir().join(format!(
                "festapi-test-apple-{}-{}.p8",
                std::process::id(),
                address.port()
            ));
            std::fs::write(
                &file,
                secret.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes(),
            )
            .unwrap();
            let public = secret
                .public_key()
                .to_public_key_pem(LineEnding::LF)
                .unwrap();
            (
                Some(DecodingKey::from_ec_pem(public.as_bytes()).unwrap()),
                Some(file),
            )
        } else {
            (None, None)
        };
        let inner = Arc::new(Inner {
            issuer: issuer.clone(),
            shape,
            knobs: Mutex::new(Knobs {
                no_id_token: shape == Shape::Naver,
                ..Knobs::default()
            }),
            person: Mutex::new(Person::named("ada")),
            published: Mutex::new(vec![(0, "key-1".to_owned())]),
            codes: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
            authorizations: Mutex::new(Vec::new()),
            named_before: Mutex::new(Vec::new()),
            apple_public_key,
            refusals: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(Arc::clone(&inner));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            issuer,
            inner,
            server,
            stop: Some(stop),
            apple_key_file,
        }
    }

    /// Goes down as a provider out of reach does: the port is closed and the connections
    /// FestAPI keeps open are ended, so its next request cannot connect. Returns the address,
    /// for a provider to come up on again.
    pub(crate) async fn stop(mut self) -> SocketAddr {
        let address = self.issuer.trim_start_matches("http://").parse().unwrap();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.server).await.unwrap();
        address
    }

    /// The FestAPI settings that point provider `name` at this provider.
    pub(crate) fn settings(&self, name: &str) -> Vec<(String, String)> {
        let mut settings = Vec::new();
        let mut set = |variable: &str, value: &str| {
            settings.push((variable.to_owned(), value.to_owned()));
        };
        match self.inner.shape {
            Shape::Apple => {
                set("AUTH_APPLE_CLIENT_ID", CLIENT_ID);
                set("AUTH_APPLE_TEAM_ID", APPLE_TEAM_ID);
                set("AUTH_APPLE_KEY_ID", APPLE_KEY_ID);
                set(
                    "AUTH_APPLE_PRIVATE_KEY_FILE",
                    self.apple_key_file.as_ref().unwrap().to_str().unwrap(),
                );
                set("AUTH_APPLE_ISSUER", &self.issuer);
            }
            Shape::Naver => {
                set("AUTH_NAVER_CLIENT_ID", CLIENT_ID);
                set("AUTH_NAVER_CLIENT_SECRET", CLIENT_SECRET);
                set(
                    "AUTH_NAVER_AUTHORIZE_URL",
                    &format!("{}/authorize", self.issuer),
                );
                set("AUTH_NAVER_TOKEN_URL", &format!("{}/token", self.issuer));
                set(
                    "AUTH_NAVER_USERINFO_URL",
                    &format!("{}/userinfo", self.issuer),
                );
            }
            Shape::Oidc | Shape::Kakao => {
                let prefix = format!("AUTH_{}", name.to_ascii_uppercase());
                set(&format!("{prefix}_CLIENT_ID"), CLIENT_ID);
                set(&format!("{prefix}_CLIENT_SECRET"), CLIENT_SECRET);
                set(&format!("{prefix}_ISSUER"), &self.issuer);
            }
        }
        settings
    }

    /// Changes how the provider answers.
    pub(crate) fn set(&self, change: impl FnOnce(&mut Knobs)) {
        change(&mut self.inner.knobs.lock().unwrap());
    }

    /// Makes `person` the one who signs in next.
    pub(crate) fn sign_in_as(&self, person: Person) {
        *self.inner.person.lock().unwrap() = person;
    }

    /// Publishes a new key under a new `kid` and signs with it from now on; the old key stays
    /// published, as providers do during a rotation.
    pub(crate) fn rotate_key(&self) {
        let mut published = self.inner.published.lock().unwrap();
        published.insert(0, (1, "key-2".to_owned()));
    }

    /// The authorization requests received so far.
    pub(crate) fn authorizations(&self) -> Vec<AuthorizeParams> {
        self.inner.authorizations.lock().unwrap().clone()
    }

    /// The token requests refused so far, with the reason.
    pub(crate) fn refusals(&self) -> Vec<String> {
        self.inner.refusals.lock().unwrap().clone()
    }

    /// A signed `id_token` for the current person, as an app on a device would get one.
    pub(crate) fn id_token(&self, nonce: Option<&str>) -> String {
        let person = self.inner.person.lock().unwrap().clone();
        self.inner.sign_id_token(&person, nonce)
    }
}

impl Inner {
    fn sign_id_token(&self, person: &Person, nonce: Option<&str>) -> String {
        let knobs = self.knobs.lock().unwrap().clone();
        let now = chrono::Utc::now().timestamp();
        let (iat, exp) = if knobs.expired {
            (now - 7200, now - 3600)
        } else {
            (now, now + 3600)
        };
        let claims = json!({
            "iss": knobs.issuer.clone().unwrap_or_else(|| self.issuer.clone()),
            "aud": knobs.audience.clone().unwrap_or_else(|| CLIENT_ID.to_owned()),
            "sub": person.subject,
            "iat": iat,
            "exp": exp,
            "name": person.name,
            "picture": person.picture,
        });
        let mut claims = with_email(claims, person);
        // Apple writes the flag as a string.
        claims["email_verified"] = if self.shape == Shape::Apple {
            json!(person.email_verified.to_string())
        } else {
            json!(person.email_verified)
        };
        if self.shape == Shape::Apple {
            // Apple's id_token never carries the name.
            claims.as_object_mut().unwrap().remove("name");
            claims.as_object_mut().unwrap().remove("picture");
        }
        if let Some(nonce) = knobs.nonce.as_deref().or(nonce) {
            claims["nonce"] = json!(nonce);
        }
        for claim in &knobs.omit_claims {
            claims.as_object_mut().unwrap().remove(*claim);
        }
        let keys = rsa_keys();
        let published = self.published.lock().unwrap().clone();
        let (key, kid) = match knobs.signer {
            Signer::Current => (&keys[published[0].0], published[0].1.clone()),
            Signer::ForgedUnderCurrentKid => (&keys[2], published[0].1.clone()),
            Signer::UnknownKid => (&keys[2], "never-published".to_owned()),
        };
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid);
        jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
    }

    fn refuse(&self, error: &str, why: &str) -> Response {
        self.refusals
            .lock()
            .unwrap()
            .push(format!("{error}: {why}"));
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": error, "error_description": why })),
        )
            .into_response()
    }

    /// Checks the client's credentials: HTTP Basic or the body, and for Apple an ES256 JWT.
    fn client_is_authenticated(
        &self,
        headers: &HeaderMap,
        form: &HashMap<String, String>,
    ) -> Result<(), String> {
        let from_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Basic "))
            .and_then(|encoded| STANDARD.decode(encoded).ok())
            .and_then(|decoded| String::from_utf8(decoded).ok())
            .and_then(|pair| {
                pair.split_once(':')
                    .map(|(id, secret)| (urlencoding_decode(id), urlencoding_decode(secret)))
            });
        let (client_id, secret) = match (
            from_header,
            form.get("client_id"),
            form.get("client_secret"),
        ) {
            (Some(pair), _, _) if matches!(self.shape, Shape::Oidc) => pair,
            (Some(_), _, _) => return Err("this provider takes client_secret_post only".into()),
            (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
            _ => return Err("no client credentials".into()),
        };
        if client_id != CLIENT_ID {
            return Err(format!("unknown client {client_id}"));
        }
        match &self.apple_public_key {
            Some(key) => check_apple_client_secret(key, &secret, &self.issuer),
            None if secret == CLIENT_SECRET => Ok(()),
            None => Err("wrong client secret".into()),
        }
    }
}

/// Apple's rules for the client secret: ES256 with our key id, iss the team, sub the client,
/// aud Apple, and at most six months of life.
fn check_apple_client_secret(key: &DecodingKey, secret: &str, issuer: &str) -> Result<(), String> {
    let header = jsonwebtoken::decode_header(secret).map_err(|error| error.to_string())?;
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(APPLE_KEY_ID) {
        return Err(format!("client secret header {header:?}"));
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[APPLE_TEAM_ID]);
    validation.set_audience(&[issuer]);
    validation.sub = Some(CLIENT_ID.to_owned());
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(secret, key, &validation)
        .map_err(|error| format!("client secret: {error}"))?
        .claims;
    let lifetime = claims["exp"].as_i64().unwrap_or(i64::MAX) - claims["iat"].as_i64().unwrap_or(0);
    if lifetime > APPLE_MAX_SECRET_LIFETIME {
        return Err(format!("client secret lives {lifetime} s"));
    }
    Ok(())
}

fn urlencoding_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn random_value() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn discovery(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let issuer = &inner.issuer;
    let methods = match inner.shape {
        Shape::Oidc => json!(["client_secret_basic", "client_secret_post"]),
        _ => json!(["client_secret_post"]),
    };
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": methods,
        "scopes_supported": ["openid", "email", "profile", "name"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(State(inner): State<Arc<Inner>>) -> Json<Value> {
    let keys = rsa_keys();
    let published: Vec<Value> = inner
        .published
        .lock()
        .unwrap()
        .iter()
        .map(|(index, kid)| {
            json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "kid": kid,
                "n": keys[*index].modulus,
                "e": keys[*index].exponent,
            })
        })
        .collect();
    Json(json!({ "keys": published }))
}

async fn authorize(
    State(inner): State<Arc<Inner>>,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    inner.authorizations.lock().unwrap().push(params.clone());
    let Some(redirect_uri) = params.redirect_uri.clone() else {
        return (StatusCode::BAD_REQUEST, "no redirect_uri").into_response();
    };
    if params.client_id.as_deref() != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let state = params.state.clone().unwrap_or_default();
    let mut fields = vec![("state".to_owned(), state)];
    if inner.knobs.lock().unwrap().deny {
        fields.push(("error".to_owned(), "access_denied".to_owned()));
        fields.push((
            "error_description".to_owned(),
            "The user denied the request".to_owned(),
        ));
    } else {
        let code = random_value();
        let person = inner.person.lock().unwrap().clone();
        fields.push(("code".to_owned(), code.clone()));
        if inner.shape == Shape::Apple {
            let mut named_before = inner.named_before.lock().unwrap();
            if !named_before.contains(&person.subject) {
                named_before.push(person.subject.clone());
                let (first, last) = person.name.split_once(' ').unwrap_or((&person.name, ""));
                let user = with_email(
                    json!({ "name": { "firstName": first, "lastName": last } }),
                    &person,
                );
                fields.push(("user".to_owned(), user.to_string()));
            }
        }
        inner.codes.lock().unwrap().insert(
            code,
            IssuedCode {
                params: params.clone(),
                person,
            },
        );
    }
    if params.response_mode.as_deref() == Some("form_post") {
        // A browser would get a page that posts this form at once; tests post it themselves.
        let fields: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        return Json(json!({ "form_post": redirect_uri, "fields": fields })).into_response();
    }
    let mut url = url::Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut().extend_pairs(fields);
    Redirect::to(url.as_str()).into_response()
}

async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(why) = inner.client_is_authenticated(&headers, &form) {
        return inner.refuse("invalid_client", &why);
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return inner.refuse("unsupported_grant_type", "expected authorization_code");
    }
    let Some(issued) = form
        .get("code")
        .and_then(|code| inner.codes.lock().unwrap().remove(code))
    else {
        return inner.refuse("invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != issued.params.redirect_uri.as_ref() {
        return inner.refuse(
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    if let Some(challenge) = &issued.params.code_challenge {
        let verified = form.get("code_verifier").is_some_and(|verifier| {
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
        });
        if issued.params.code_challenge_method.as_deref() != Some("S256") || !verified {
            return inner.refuse("invalid_grant", "PKCE verification failed");
        }
    }
    // Naver's token endpoint wants the `state` of the authorization response back.
    if inner.shape == Shape::Naver {
        let Some(state) = form.get("state").filter(|state| !state.is_empty()) else {
            return inner.refuse("invalid_request", "no state");
        };
        if issued.params.state.as_ref() != Some(state) {
            return inner.refuse(
                "invalid_request",
                "state differs from the authorization request",
            );
        }
    }
    let access_token = random_value();
    inner
        .access_tokens
        .lock()
        .unwrap()
        .insert(access_token.clone(), issued.person.clone());
    let mut answer = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 3600,
    });
    if !inner.knobs.lock().unwrap().no_id_token {
        answer["id_token"] =
            json!(inner.sign_id_token(&issued.person, issued.params.nonce.as_deref()));
    }
    Json(answer).into_response()
}

async fn userinfo(State(inner): State<Arc<Inner>>, headers: HeaderMap) -> Response {
    let person = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| inner.access_tokens.lock().unwrap().get(token).cloned());
    let Some(person) = person else {
        if inner.shape == Shape::Naver {
            return Json(json!({ "resultcode": "024", "message": "Authentication failed" }))
                .into_response();
        }
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if inner.shape == Shape::Naver {
        let profile = with_email(
            json!({
                "id": person.subject,
                "name": person.name,
                "nickname": person.name,
                "profile_image": person.picture,
            }),
            &person,
        );
        return Json(json!({ "resultcode": "00", "message": "success", "response": profile }))
            .into_response();
    }
    let info = json!({
        "sub": person.subject,
        "email_verified": person.email_verified,
        "name": person.name,
        "picture": person.picture,
    });
    Json(with_email(info, &person)).into_response()
}

/// `fields` with `person`'s `email`; without one when they keep their address to themselves,
/// as providers leave the field out then.
fn with_email(mut fields: Value, person: &Person) -> Value {
    if let Some(email) = &person.email {
        fields["email"] = json!(email);
    }
    fields
}
