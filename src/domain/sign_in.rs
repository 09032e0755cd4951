//! Signing in through an identity provider: checking what an app sends, asking the provider who
//! signed in, and turning its verified profile into an account and a session.
//!
//! [`sign_in`] is the one path from a verified profile to a session, whichever flow brought the
//! profile: it finds or creates the account through [`accounts`] (so a new identity whose
//! e-mail address belongs to an account is refused with ACCOUNT_EXISTS) and starts the session
//! through [`sessions::start_session`].

use std::net::IpAddr;
use std::sync::Arc;

use url::Url;

use crate::auth::providers::{CodeExchange, IdentityProvider, Profile, Providers, callback_url};
use crate::auth::tokens::TokenService;
use crate::config::{AuthConfig, ProviderName};
use crate::db::Database;
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
    let redirect_uri = allowed_redirect_uri(auth, login.provider, login.redirect_uri)?;
    let provider = configured(providers, login.provider)?;
    let exchange = CodeExchange {
        code,
        redirect_uri: &redirect_uri,
        pkce_verifier,
        nonce,
        state: None,
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
    let refused = |why: &str| AppError::invalid_input("redirectUri", why.to_owned());
    if value.len() > MAX_REDIRECT_URI_BYTES {
        return Err(refused("the redirect URI is too long"));
    }
    let url =
        Url::parse(value.trim()).map_err(|_| refused("the redirect URI is not an absolute URL"))?;
    let own_callback = auth
        .public_url
        .as_ref()
        .is_some_and(|public_url| callback_url(public_url, provider) == url);
    if own_callback
        || auth
            .allowed_redirects
            .iter()
            .any(|allowed| admits(allowed, &url))
    {
        Ok(url)
    } else {
        Err(refused(
            "the redirect URI is neither this server's callback nor one of AUTH_ALLOWED_REDIRECTS",
        ))
    }
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
