//! Signing in through an identity provider: checking what an app sends, asking the provider who
//! signed in, and turning its verified profile into an account and a session.
//!
//! [`sign_in`] is the one path from a verified profile to a session, whichever flow brought the
//! profile: it finds or creates the account through [`accounts`] (so a new identity whose
//! e-mail address belongs to an account is refused with ACCOUNT_EXISTS) and starts the session
//! through [`sessions::start_session`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{TimeDelta, Utc};
use sha2::{Digest as _, Sha256};
use url::Url;

use crate::auth::providers::{
    AuthorizationRequest, CodeExchange, IdentityProvider, Profile, Providers, callback_url,
    login_url,
};
use crate::auth::tokens::TokenService;
use crate::config::{AuthConfig, ProviderName, is_loopback};
use crate::db::ids::FlowStateHash;
use crate::db::models::AuthFlowRow;
use crate::db::{Database, auth_flows};
use crate::domain::accounts;
use crate::domain::sessions::{self, SignIn, SignedIn};
use crate::error::AppError;

/// The longest authorization code accepted, in bytes.
const MAX_CODE_BYTES: usize = 2048;
/// The longest `id_token` accepted, in bytes.
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;
/// The longest nonce accepted, in bytes.
const MAX_NONCE_BYTES: usize = 512;
/// The longest redirect URI accepted, in bytes.
const MAX_REDIRECT_URI_BYTES: usize = 2048;

/// The client a sign-in comes from, as the request that carries it says.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    /// Its `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// Its address.
    pub ip: Option<IpAddr>,
}

/// An authorization code an app obtained by running the redirect itself.
#[derive(Debug, Clone, Copy)]
pub struct CodeLogin<'a> {
    /// The provider that issued the code.
    pub provider: ProviderName,
    /// The code.
    pub code: &'a str,
    /// The redirect URI the code was issued for.
    pub redirect_uri: &'a str,
    /// The PKCE verifier, when the app sent a challenge.
    pub code_verifier: Option<&'a str>,
    /// The nonce the `id_token` must carry, when the app sent one.
    pub nonce: Option<&'a str>,
    /// The `state` the provider sent back with the code; Naver's token endpoint requires it.
    pub state: Option<&'a str>,
}

/// A browser sign-in sent off to its provider.
#[derive(Debug)]
pub struct StartedFlow {
    /// Where the browser goes: the provider's authorization URL.
    pub location: Url,
    /// The value of the cookie binding the flow to this browser; only its hash is stored.
    pub binding: String,
    /// The path the cookie is sent back to: `/auth/{provider}` under the public URL.
    pub cookie_path: String,
    /// Whether the cookie is `Secure`: always, except when the server is on a loopback host.
    pub secure_cookie: bool,
    /// Whether the provider answers with a cross-site form POST, so the cookie must be
    /// `SameSite=None` (and `Secure`) rather than `Lax`.
    pub cross_site_callback: bool,
    /// How long the flow, and so the cookie, lasts.
    pub lifetime: Duration,
}

/// Starts a browser sign-in with `provider`: stores a single-use `state`, `nonce` and PKCE
/// verifier for `AUTH_FLOW_TTL_SECONDS`, and says where to send the browser. `redirect_to`,
/// where the browser goes once signed in, must match `AUTH_ALLOWED_REDIRECTS`.
pub async fn start_browser_flow(
    database: &Database,
    providers: &Providers,
    auth: &AuthConfig,
    provider: ProviderName,
    redirect_to: Option<&str>,
) -> Result<StartedFlow, AppError> {
    let redirect_to = redirect_to
        .map(|value| allowed_redirect_to(auth, value))
        .transpose()?;
    let identity_provider = configured(providers, provider)?;
    let public_url = auth.public_url.as_ref().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "{provider} is configured without AUTH_PUBLIC_URL"
        ))
    })?;
    let state = random_value()?;
    let nonce = random_value()?;
    let pkce_verifier = random_value()?;
    let binding = random_value()?;
    let redirect_uri = callback_url(public_url, provider);
    let location = identity_provider.authorization_url(&AuthorizationRequest {
        redirect_uri: &redirect_uri,
        state: &state,
        nonce: &nonce,
        pkce_verifier: &pkce_verifier,
    })?;
    let now = Utc::now();
    let flow = AuthFlowRow {
        state_hash: FlowStateHash::from_trusted(sha256_hex(&state)),
        provider: provider.as_str().to_owned(),
        nonce,
        pkce_verifier,
        redirect_to: redirect_to.map(String::from),
        binding_hash: sha256_hex(&binding),
        created_at: now,
        expires_at: now + TimeDelta::from_std(auth.flow_ttl).map_err(AppError::internal)?,
    };
    let mut connection = database.connection().await?;
    auth_flows::insert(&mut connection, &flow).await?;
    Ok(StartedFlow {
        location,
        binding,
        cookie_path: login_url(public_url, provider).path().to_owned(),
        secure_cookie: !is_loopback(public_url),
        cross_site_callback: identity_provider.posts_callback_form(),
        lifetime: auth.flow_ttl,
    })
}

/// A browser back at `/auth/{provider}/callback`: what the provider sent, and the browser's
/// binding cookie.
#[derive(Debug, Clone, Copy)]
pub struct Callback<'a> {
    /// The provider the callback is for.
    pub provider: ProviderName,
    /// The binding cookie the browser sent, if any.
    pub binding: Option<&'a str>,
    /// The `state` the flow started with.
    pub state: Option<&'a str>,
    /// The authorization code, on success.
    pub code: Option<&'a str>,
    /// The provider's error code (`access_denied`, ...), on failure.
    pub error: Option<&'a str>,
    /// The provider's words for its error.
    pub error_description: Option<&'a str>,
    /// Apple's `user` form field, sent on the first sign-in only: JSON with the person's name.
    pub user: Option<&'a str>,
}

/// A browser sign-in back from its provider: the flow's `redirect_to`, if it had one, and how
/// the sign-in ended.
#[derive(Debug)]
pub struct FinishedFlow {
    /// Where the browser goes now, with the tokens or the error in the fragment.
    pub redirect_to: Option<Url>,
    /// The session started, or why none was.
    pub outcome: Result<SignedIn, AppError>,
}

/// Finishes the browser sign-in that `callback` comes back for.
///
/// The flow is taken once (deleted as it is read), and only with the cookie of the browser that
/// started it; a missing, reused, expired or foreign `state` is refused before the provider is
/// asked anything. Refusals before the flow is known are the outer error; once it is known, its
/// `redirect_to` is returned with the outcome, so the browser can be sent back either way.
pub async fn finish_browser_flow(
    database: &Database,
    providers: &Providers,
    tokens: &TokenService,
    auth: &AuthConfig,
    callback: &Callback<'_>,
    client: &Client<'_>,
) -> Result<FinishedFlow, AppError> {
    let provider = callback.provider;
    let flow_problem = |message: &str| AppError::invalid_input("state", message.to_owned());
    let state = callback
        .state
        .filter(|state| !state.is_empty())
        .ok_or_else(|| {
            flow_problem("the provider's answer has no `state`: start signing in again")
        })?;
    let state_hash =
        FlowStateHash::from_trusted(sha256_hex(bounded("state", state, MAX_NONCE_BYTES)?));
    let binding = callback
        .binding
        .filter(|binding| !binding.is_empty())
        .ok_or_else(|| {
            flow_problem(
                "this browser did not start the sign-in (its cookie is missing): start again",
            )
        })?;
    let mut connection = database.connection().await?;
    let Some(flow) = auth_flows::take(&mut connection, &state_hash, &sha256_hex(binding)).await?
    else {
        return Err(if auth_flows::exists(&mut connection, &state_hash).await? {
            flow_problem("this sign-in was started in another browser: start again here")
        } else {
            flow_problem("this sign-in is unknown or was already used: start again")
        });
    };
    drop(connection);
    let redirect_to = flow
        .redirect_to
        .as_deref()
        .map(|value| allowed_redirect_to(auth, value))
        .transpose()?;
    let outcome = if flow.provider != provider.as_str() {
        Err(flow_problem(
            "this sign-in was started with another provider",
        ))
    } else if flow.expires_at <= Utc::now() {
        Err(flow_problem(
            "this sign-in took too long and expired: start again",
        ))
    } else {
        finish_flow(database, providers, tokens, auth, &flow, callback, client).await
    };
    Ok(FinishedFlow {
        redirect_to,
        outcome,
    })
}

/// The session a taken flow ends in: the provider's answer checked, the code exchanged with the
/// flow's PKCE verifier and nonce, and the person signed in.
async fn finish_flow(
    database: &Database,
    providers: &Providers,
    tokens: &TokenService,
    auth: &AuthConfig,
    flow: &AuthFlowRow,
    callback: &Callback<'_>,
    client: &Client<'_>,
) -> Result<SignedIn, AppError> {
    let provider = callback.provider;
    if let Some(error) = callback.error {
        let description = callback.error_description.unwrap_or("no description");
        return Err(AppError::invalid_input(
            "error",
            format!("{provider} did not sign you in: {error} ({description})"),
        ));
    }
    let code = bounded("code", callback.code.unwrap_or_default(), MAX_CODE_BYTES)?;
    let public_url = auth.public_url.as_ref().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "{provider} is configured without AUTH_PUBLIC_URL"
        ))
    })?;
    let redirect_uri = callback_url(public_url, provider);
    let exchange = CodeExchange {
        code,
        redirect_uri: &redirect_uri,
        pkce_verifier: Some(&flow.pkce_verifier),
        nonce: Some(&flow.nonce),
        state: callback.state,
    };
    let mut profile = configured(providers, provider)?
        .exchange_code(exchange)
        .await
        .map_err(|error| match AppError::from(error) {
            // In a browser the provider's refusal is the flow's problem, answered 400.
            AppError::Unauthenticated(message) => AppError::invalid_input("code", message),
            other => other,
        })?;
    if profile.name.is_none() {
        profile.name = callback.user.and_then(first_sign_in_name);
    }
    sign_in(database, tokens, provider, &profile, client).await
}

/// The name in Apple's first-sign-in `user` field: `{"name":{"firstName","lastName"}}`.
fn first_sign_in_name(user: &str) -> Option<String> {
    let user: serde_json::Value = serde_json::from_str(user).ok()?;
    let name = user.get("name")?;
    let parts: Vec<&str> = ["firstName", "lastName"]
        .iter()
        .filter_map(|part| name.get(part)?.as_str())
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Forgets browser flows that expired unfinished; returns how many.
pub async fn purge_expired_flows(database: &Database) -> Result<usize, AppError> {
    let mut connection = database.connection().await?;
    Ok(auth_flows::purge_expired(&mut connection).await?)
}

/// `value` as a `redirect_to`: an absolute URL `AUTH_ALLOWED_REDIRECTS` admits.
fn allowed_redirect_to(auth: &AuthConfig, value: &str) -> Result<Url, AppError> {
    allowed_url(auth, "redirect_to", value, None)
}

/// 256 random bits in base64url (43 characters): a `state`, nonce, PKCE verifier or binding.
fn random_value() -> Result<String, AppError> {
    let mut random = [0_u8; 32];
    getrandom::fill(&mut random)
        .map_err(|error| AppError::internal(anyhow::anyhow!("no secure random bytes: {error}")))?;
    Ok(URL_SAFE_NO_PAD.encode(random))
}

/// The SHA-256 of `value` in lowercase hex.
fn sha256_hex(value: &str) -> String {
    format!("{:x}", Sha256::digest(value.as_bytes()))
}

/// Signs in the person `profile` describes, as `provider` vouches for them, from `client`:
/// their account (created on a first sign-in) and a new session of it.
pub async fn sign_in(
    database: &Database,
    tokens: &TokenService,
    provider: ProviderName,
    profile: &Profile,
    client: &Client<'_>,
) -> Result<SignedIn, AppError> {
    let account = accounts::sign_in(database, provider, profile).await?;
    let sign_in = SignIn {
        provider: provider.as_str(),
        identity_id: Some(account.identity_id.as_str()),
        user_agent: client.user_agent,
        ip: client.ip,
    };
    sessions::start_session(database, tokens, account.user, &sign_in).await
}

/// Who signed in with `login`'s code, as its provider vouches after exchanging it.
pub async fn profile_from_code(
    providers: &Providers,
    auth: &AuthConfig,
    login: &CodeLogin<'_>,
) -> Result<Profile, AppError> {
    let code = bounded("code", login.code, MAX_CODE_BYTES)?;
    let pkce_verifier = login.code_verifier.map(pkce_verifier).transpose()?;
    let nonce = login
        .nonce
        .map(|nonce| bounded("nonce", nonce, MAX_NONCE_BYTES))
        .transpose()?;
    let state = login
        .state
        .map(|state| bounded("state", state, MAX_NONCE_BYTES))
        .transpose()?;
    let redirect_uri = allowed_redirect_uri(auth, login.provider, login.redirect_uri)?;
    let provider = configured(providers, login.provider)?;
    if state.is_none() && provider.exchanges_code_with_state() {
        return Err(AppError::invalid_input(
            "state",
            format!(
                "{} wants the `state` it sent back with the code: pass it as `state`",
                login.provider
            ),
        ));
    }
    let exchange = CodeExchange {
        code,
        redirect_uri: &redirect_uri,
        pkce_verifier,
        nonce,
        state,
    };
    Ok(provider.exchange_code(exchange).await?)
}

/// Who an `id_token` an app obtained on a device names, once verified; `nonce` is the raw value
/// the app made, required whenever the token carries one.
pub async fn profile_from_id_token(
    providers: &Providers,
    provider: ProviderName,
    id_token: &str,
    nonce: Option<&str>,
) -> Result<Profile, AppError> {
    let id_token = bounded("idToken", id_token, MAX_ID_TOKEN_BYTES)?;
    let nonce = nonce
        .map(|nonce| bounded("nonce", nonce, MAX_NONCE_BYTES))
        .transpose()?;
    let provider = configured(providers, provider)?;
    Ok(provider.verify_id_token(id_token, nonce).await?)
}

/// Provider `name`, when this server is configured for it; BAD_USER_INPUT otherwise.
fn configured(
    providers: &Providers,
    name: ProviderName,
) -> Result<&Arc<dyn IdentityProvider>, AppError> {
    providers.get(name).ok_or_else(|| {
        AppError::invalid_input(
            "provider",
            format!("signing in with {name} is not configured on this server"),
        )
    })
}

/// `value` as the redirect URI of a code exchange: the server's own callback for `provider`, or
/// one matching `AUTH_ALLOWED_REDIRECTS`.
fn allowed_redirect_uri(
    auth: &AuthConfig,
    provider: ProviderName,
    value: &str,
) -> Result<Url, AppError> {
    let own_callback = auth
        .public_url
        .as_ref()
        .map(|public_url| callback_url(public_url, provider));
    allowed_url(auth, "redirectUri", value, own_callback.as_ref())
}

/// `value`, the argument `field`, as a URL to send a browser or a code back to: `own_callback`,
/// or one `AUTH_ALLOWED_REDIRECTS` admits; BAD_USER_INPUT on `field` otherwise.
fn allowed_url(
    auth: &AuthConfig,
    field: &'static str,
    value: &str,
    own_callback: Option<&Url>,
) -> Result<Url, AppError> {
    if value.len() > MAX_REDIRECT_URI_BYTES {
        return Err(AppError::invalid_input(
            field,
            format!("`{field}` is longer than {MAX_REDIRECT_URI_BYTES} bytes"),
        ));
    }
    let url = Url::parse(value.trim())
        .map_err(|_| AppError::invalid_input(field, format!("`{field}` is not an absolute URL")))?;
    let admitted = own_callback == Some(&url)
        || auth
            .allowed_redirects
            .iter()
            .any(|allowed| admits(allowed, &url));
    if admitted {
        return Ok(url);
    }
    let expected = if own_callback.is_some() {
        "this server's callback or one of AUTH_ALLOWED_REDIRECTS"
    } else {
        "one of AUTH_ALLOWED_REDIRECTS"
    };
    Err(AppError::invalid_input(
        field,
        format!("`{field}` is not {expected}"),
    ))
}

/// Whether `allowed` admits `url`: the same scheme, host and port, and a path that equals the
/// allowed one or continues it after a `/`; no credentials and no fragment.
fn admits(allowed: &Url, url: &Url) -> bool {
    let allowed_path = allowed.path().trim_end_matches('/');
    let path = url.path();
    url.scheme() == allowed.scheme()
        && url.host() == allowed.host()
        && url.port_or_known_default() == allowed.port_or_known_default()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && (path == allowed.path()
            || path == allowed_path
            || path
                .strip_prefix(allowed_path)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// `value`, when it is not empty, at most `max_bytes` long and free of control characters.
fn bounded<'a>(field: &'static str, value: &'a str, max_bytes: usize) -> Result<&'a str, AppError> {
    if value.is_empty() {
        return Err(AppError::invalid_input(
            field,
            format!("`{field}` is empty"),
        ));
    }
    if value.len() > max_bytes {
        return Err(AppError::invalid_input(
            field,
            format!("`{field}` is longer than {max_bytes} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(AppError::invalid_input(
            field,
            format!("`{field}` contains control characters"),
        ));
    }
    Ok(value)
}

/// A PKCE verifier as RFC 7636 §4.1 shapes it: 43 to 128 unreserved characters.
fn pkce_verifier(value: &str) -> Result<&str, AppError> {
    let unreserved = |byte: u8| byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
    if (43..=128).contains(&value.len()) && value.bytes().all(unreserved) {
        Ok(value)
    } else {
        Err(AppError::invalid_input(
            "codeVerifier",
            "`codeVerifier` must be 43 to 128 letters, digits, `-`, `.`, `_` or `~` (RFC 7636)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apples_first_sign_in_form_names_the_person() {
        let user =
            r#"{"name":{"firstName":" Grace ","lastName":"Hopper"},"email":"g@example.test"}"#;
        assert_eq!(first_sign_in_name(user).as_deref(), Some("Grace Hopper"));
        assert_eq!(
            first_sign_in_name(r#"{"name":{"firstName":"Grace"}}"#).as_deref(),
            Some("Grace")
        );
        assert_eq!(first_sign_in_name(r#"{"email":"g@example.test"}"#), None);
        assert_eq!(first_sign_in_name("not json"), None);
    }

    fn url(value: &str) -> Url {
        Url::parse(value).unwrap()
    }

    #[test]
    fn allowed_redirects_admit_their_own_paths_only() {
        let app = url("https://app.example.com");
        let signed_in = url("https://app.example.com/signed-in");
        assert!(admits(&app, &url("https://app.example.com/")));
        assert!(admits(&app, &url("https://app.example.com/anything")));
        assert!(admits(
            &signed_in,
            &url("https://app.example.com/signed-in")
        ));
        assert!(admits(
            &signed_in,
            &url("https://app.example.com/signed-in/x")
        ));
        assert!(!admits(
            &signed_in,
            &url("https://app.example.com/signed-inx")
        ));
        assert!(!admits(&app, &url("https://app.example.com.evil.net/")));
        assert!(!admits(&app, &url("http://app.example.com/")));
        assert!(!admits(&app, &url("https://app.example.com:8443/")));
        assert!(admits(&app, &url("https://app.example.com:443/")));
        assert!(!admits(&app, &url("https://user@app.example.com/")));
        assert!(!admits(&app, &url("https://app.example.com/#x")));
        assert!(!admits(
            &signed_in,
            &url("https://app.example.com/signed-in/../admin")
        ));
    }

    #[test]
    fn pkce_verifiers_follow_rfc_7636() {
        assert!(pkce_verifier(&"a".repeat(43)).is_ok());
        assert!(pkce_verifier(&"a-._~Z9".repeat(10)).is_ok());
        assert!(pkce_verifier(&"a".repeat(42)).is_err());
        assert!(pkce_verifier(&"a".repeat(129)).is_err());
        assert!(pkce_verifier(&format!("{}+", "a".repeat(43))).is_err());
    }

    #[test]
    fn arguments_are_bounded() {
        assert!(bounded("code", "abc", 3).is_ok());
        assert!(bounded("code", "abcd", 3).is_err());
        assert!(bounded("code", "", 3).is_err());
        assert!(bounded("code", "a\nb", 3).is_err());
    }
}
