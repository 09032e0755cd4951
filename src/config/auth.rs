//! Sign-in settings: the server's public address, the identity providers, where browsers may be
//! sent back to, and how long a sign-in may take.
//!
//! A provider is on when its client id is set; every other variable it needs must then be set
//! too, or start-up stops naming the one missing.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, parse_in_range};

/// Google's issuer, the default `AUTH_GOOGLE_ISSUER`.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Kakao's issuer, the default `AUTH_KAKAO_ISSUER`.
pub const KAKAO_ISSUER: &str = "https://kauth.kakao.com";
/// Apple's issuer, the default `AUTH_APPLE_ISSUER`.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// Naver's authorization endpoint, the default `AUTH_NAVER_AUTHORIZE_URL`.
pub const NAVER_AUTHORIZE_URL: &str = "https://nid.naver.com/oauth2.0/authorize";
/// Naver's token endpoint, the default `AUTH_NAVER_TOKEN_URL`.
pub const NAVER_TOKEN_URL: &str = "https://nid.naver.com/oauth2.0/token";
/// Naver's profile endpoint, the default `AUTH_NAVER_USERINFO_URL`.
pub const NAVER_USERINFO_URL: &str = "https://openapi.naver.com/v1/nid/me";
/// The default `AUTH_OIDC_SCOPES`.
pub const DEFAULT_OIDC_SCOPES: &str = "openid email profile";
/// The default `AUTH_FLOW_TTL_SECONDS`: ten minutes to sign in at the provider.
pub const DEFAULT_FLOW_TTL_SECONDS: u64 = 600;

/// An identity provider FestAPI knows how to talk to; its name is a path segment
/// (`/auth/{provider}`) and the `provider` of identities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProviderName {
    /// Google (OpenID Connect).
    Google,
    /// Sign in with Apple (OpenID Connect, form POST callback, JWT client secret).
    Apple,
    /// Kakao (OpenID Connect).
    Kakao,
    /// Naver (OAuth 2.0 and a profile endpoint).
    Naver,
    /// Any other OpenID Connect provider (`AUTH_OIDC_*`).
    Oidc,
}

impl ProviderName {
    /// Every provider, in the order sign-in buttons list them.
    pub const ALL: [Self; 5] = [
        Self::Google,
        Self::Apple,
        Self::Kakao,
        Self::Naver,
        Self::Oidc,
    ];

    /// The lowercase name used in paths and stored with identities.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Apple => "apple",
            Self::Kakao => "kakao",
            Self::Naver => "naver",
            Self::Oidc => "oidc",
        }
    }
}

impl fmt::Display for ProviderName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for ProviderName {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|provider| provider.as_str() == value)
            .ok_or_else(|| {
                format!("unknown provider {value:?}: expected google, apple, kakao, naver or oidc")
            })
    }
}

/// Everything sign-in needs to know.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `AUTH_PUBLIC_URL`: the server's public base URL, without a trailing slash. Set whenever a
    /// provider is.
    pub public_url: Option<Url>,
    /// `AUTH_ALLOWED_REDIRECTS`: where a browser may be sent back to after signing in.
    pub allowed_redirects: Vec<Url>,
    /// `AUTH_FLOW_TTL_SECONDS`: how long a started sign-in may take to come back.
    pub flow_ttl: Duration,
    /// The OpenID Connect providers: `oidc`, `google`, `kakao`.
    pub oidc: Vec<OidcProviderConfig>,
    /// Sign in with Apple.
    pub apple: Option<AppleConfig>,
    /// Naver.
    pub naver: Option<NaverConfig>,
}

impl AuthConfig {
    /// Whether any provider is configured.
    pub fn any_provider(&self) -> bool {
        !self.oidc.is_empty() || self.apple.is_some() || self.naver.is_some()
    }
}

/// An OpenID Connect provider found through its issuer's discovery document.
#[derive(Debug, Clone)]
pub struct OidcProviderConfig {
    /// Which provider this is.
    pub provider: ProviderName,
    /// The label of its sign-in button.
    pub display_name: String,
    /// `AUTH_*_ISSUER`: discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: Url,
    /// `AUTH_*_CLIENT_ID`.
    pub client_id: String,
    /// `AUTH_*_CLIENT_SECRET`.
    pub client_secret: SecretString,
    /// The scopes asked for; `openid` among them.
    pub scopes: Vec<String>,
}

/// Sign in with Apple: an OpenID Connect provider whose client secret is a JWT we sign.
#[derive(Debug, Clone)]
pub struct AppleConfig {
    /// `AUTH_APPLE_CLIENT_ID`: the Services ID.
    pub client_id: String,
    /// `AUTH_APPLE_TEAM_ID`.
    pub team_id: String,
    /// `AUTH_APPLE_KEY_ID`: the id of the key below.
    pub key_id: String,
    /// The contents of `AUTH_APPLE_PRIVATE_KEY_FILE`: a PKCS#8 PEM P-256 key (Apple's `.p8`).
    pub private_key_pem: SecretString,
    /// `AUTH_APPLE_ISSUER`.
    pub issuer: Url,
}

/// Naver: OAuth 2.0 with a profile endpoint.
#[derive(Debug, Clone)]
pub struct NaverConfig {
    /// `AUTH_NAVER_CLIENT_ID`.
    pub client_id: String,
    /// `AUTH_NAVER_CLIENT_SECRET`.
    pub client_secret: SecretString,
    /// `AUTH_NAVER_AUTHORIZE_URL`.
    pub authorize_url: Url,
    /// `AUTH_NAVER_TOKEN_URL`.
    pub token_url: Url,
    /// `AUTH_NAVER_USERINFO_URL`.
    pub userinfo_url: Url,
}

/// The variables of one OpenID Connect provider.
struct OidcVariables {
    provider: ProviderName,
    client_id: &'static str,
    client_secret: &'static str,
    issuer: &'static str,
    /// `None` for the generic provider, whose issuer must be given.
    default_issuer: Option<&'static str>,
    default_name: &'static str,
}

const OIDC_PROVIDERS: [OidcVariables; 3] = [
    OidcVariables {
        provider: ProviderName::Oidc,
        client_id: "AUTH_OIDC_CLIENT_ID",
        client_secret: "AUTH_OIDC_CLIENT_SECRET",
        issuer: "AUTH_OIDC_ISSUER",
        default_issuer: None,
        default_name: "OpenID Connect",
    },
    OidcVariables {
        provider: ProviderName::Google,
        client_id: "AUTH_GOOGLE_CLIENT_ID",
        client_secret: "AUTH_GOOGLE_CLIENT_SECRET",
        issuer: "AUTH_GOOGLE_ISSUER",
        default_issuer: Some(GOOGLE_ISSUER),
        default_name: "Google",
    },
    OidcVariables {
        provider: ProviderName::Kakao,
        client_id: "AUTH_KAKAO_CLIENT_ID",
        client_secret: "AUTH_KAKAO_CLIENT_SECRET",
        issuer: "AUTH_KAKAO_ISSUER",
        default_issuer: Some(KAKAO_ISSUER),
        default_name: "Kakao",
    },
];

/// Reads the sign-in settings through `read`, which returns a variable's non-blank value.
pub(super) fn auth_config(
    read: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthConfig, ConfigError> {
    let mut oidc = Vec::new();
    for variables in &OIDC_PROVIDERS {
        if let Some(config) = oidc_provider(read, variables)? {
            oidc.push(config);
        }
    }
    let apple = apple(read)?;
    let naver = naver(read)?;

    let public_url = read("AUTH_PUBLIC_URL")
        .map(|value| public_url(&value))
        .transpose()?;
    let any_provider = !oidc.is_empty() || apple.is_some() || naver.is_some();
    if any_provider && public_url.is_none() {
        return Err(ConfigError::new(
            "AUTH_PUBLIC_URL",
            "is required when a sign-in provider is configured: the server's public base URL, \
             such as https://api.example.com (callbacks are {AUTH_PUBLIC_URL}/auth/{provider}/callback)",
        ));
    }
    Ok(AuthConfig {
        public_url,
        allowed_redirects: allowed_redirects(read("AUTH_ALLOWED_REDIRECTS"))?,
        flow_ttl: Duration::from_secs(parse_in_range(
            "AUTH_FLOW_TTL_SECONDS",
            read("AUTH_FLOW_TTL_SECONDS"),
            DEFAULT_FLOW_TTL_SECONDS,
            30..=3_600,
        )?),
        oidc,
        apple,
        naver,
    })
}

/// `{variable} is required when {other} is set`.
fn required_with(variable: &'static str, other: &str) -> ConfigError {
    ConfigError::new(variable, format!("is required when {other} is set"))
}

fn oidc_provider(
    read: &dyn Fn(&str) -> Option<String>,
    variables: &OidcVariables,
) -> Result<Option<OidcProviderConfig>, ConfigError> {
    let client_secret = read(variables.client_secret);
    let issuer = read(variables.issuer);
    let Some(client_id) = read(variables.client_id) else {
        if client_secret.is_some() {
            return Err(required_with(variables.client_id, variables.client_secret));
        }
        if variables.default_issuer.is_none() && issuer.is_some() {
            return Err(required_with(variables.client_id, variables.issuer));
        }
        return Ok(None);
    };
    let client_secret =
        client_secret.ok_or_else(|| required_with(variables.client_secret, variables.client_id))?;
    let issuer = issuer
        .as_deref()
        .or(variables.default_issuer)
        .ok_or_else(|| required_with(variables.issuer, variables.client_id))?;
    let issuer = issuer_url(variables.issuer, issuer)?;
    let mut display_name = variables.default_name.to_owned();
    let mut scopes = DEFAULT_OIDC_SCOPES.to_owned();
    if variables.provider == ProviderName::Oidc {
        if let Some(name) = read("AUTH_OIDC_NAME") {
            display_name = name.trim().to_owned();
        }
        if let Some(configured) = read("AUTH_OIDC_SCOPES") {
            scopes = configured;
        }
    }
    let scopes: Vec<String> = scopes.split_whitespace().map(str::to_owned).collect();
    if !scopes.iter().any(|scope| scope == "openid") {
        return Err(ConfigError::new(
            "AUTH_OIDC_SCOPES",
            "must include openid, e.g. \"openid email profile\"",
        ));
    }
    Ok(Some(OidcProviderConfig {
        provider: variables.provider,
        display_name,
        issuer,
        client_id: client_id.trim().to_owned(),
        client_secret: SecretString::from(client_secret.trim().to_owned()),
        scopes,
    }))
}

fn apple(read: &dyn Fn(&str) -> Option<String>) -> Result<Option<AppleConfig>, ConfigError> {
    const VARIABLES: [&str; 4] = [
        "AUTH_APPLE_CLIENT_ID",
        "AUTH_APPLE_TEAM_ID",
        "AUTH_APPLE_KEY_ID",
        "AUTH_APPLE_PRIVATE_KEY_FILE",
    ];
    let [client_id, team_id, key_id, key_file] = VARIABLES.map(read);
    let set = [&client_id, &team_id, &key_id, &key_file]
        .iter()
        .position(|value| value.is_some());
    let Some(set) = set else {
        return Ok(None);
    };
    let require = |variable: &'static str, value: Option<String>| {
        value
            .map(|value| value.trim().to_owned())
            .ok_or_else(|| required_with(variable, VARIABLES[set]))
    };
    let client_id = require(VARIABLES[0], client_id)?;
    let team_id = require(VARIABLES[1], team_id)?;
    let key_id = require(VARIABLES[2], key_id)?;
    let key_file = require(VARIABLES[3], key_file)?;
    let private_key_pem = std::fs::read_to_string(&key_file).map_err(|error| {
        ConfigError::new(
            "AUTH_APPLE_PRIVATE_KEY_FILE",
            format!("cannot read {key_file:?}: {error}"),
        )
    })?;
    if jsonwebtoken::EncodingKey::from_ec_pem(private_key_pem.as_bytes()).is_err() {
        return Err(ConfigError::new(
            "AUTH_APPLE_PRIVATE_KEY_FILE",
            format!(
                "{key_file:?} is not a PEM P-256 private key: use the .p8 file Apple offers \
                 for download when the key is created"
            ),
        ));
    }
    let issuer = issuer_url(
        "AUTH_APPLE_ISSUER",
        read("AUTH_APPLE_ISSUER").as_deref().unwrap_or(APPLE_ISSUER),
    )?;
    Ok(Some(AppleConfig {
        client_id,
        team_id,
        key_id,
        private_key_pem: SecretString::from(private_key_pem),
        issuer,
    }))
}

fn naver(read: &dyn Fn(&str) -> Option<String>) -> Result<Option<NaverConfig>, ConfigError> {
    let (client_id, client_secret) = match (
        read("AUTH_NAVER_CLIENT_ID"),
        read("AUTH_NAVER_CLIENT_SECRET"),
    ) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(required_with(
                "AUTH_NAVER_CLIENT_SECRET",
                "AUTH_NAVER_CLIENT_ID",
            ));
        }
        (None, Some(_)) => {
            return Err(required_with(
                "AUTH_NAVER_CLIENT_ID",
                "AUTH_NAVER_CLIENT_SECRET",
            ));
        }
        (Some(id), Some(secret)) => (id, secret),
    };
    let endpoint = |variable: &'static str, default: &str| {
        issuer_url(variable, read(variable).as_deref().unwrap_or(default))
    };
    Ok(Some(NaverConfig {
        client_id: client_id.trim().to_owned(),
        client_secret: SecretString::from(client_secret.trim().to_owned()),
        authorize_url: endpoint("AUTH_NAVER_AUTHORIZE_URL", NAVER_AUTHORIZE_URL)?,
        token_url: endpoint("AUTH_NAVER_TOKEN_URL", NAVER_TOKEN_URL)?,
        userinfo_url: endpoint("AUTH_NAVER_USERINFO_URL", NAVER_USERINFO_URL)?,
    }))
}

/// Whether `url`'s host is a loopback address or `localhost`, where plain http is allowed.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(address)) => address.is_loopback(),
        Some(url::Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// An issuer or endpoint URL: https, or http on a loopback host (a local or test provider).
fn issuer_url(variable: &'static str, value: &str) -> Result<Url, ConfigError> {
    let value = value.trim();
    let url = Url::parse(value)
        .map_err(|error| ConfigError::new(variable, format!("{value:?} is not a URL ({error})")))?;
    let secure = url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url));
    if !secure || url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(
            variable,
            format!("{value:?} must be an https URL (plain http only on a loopback host)"),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            variable,
            format!("{value:?} must have no query or fragment"),
        ));
    }
    Ok(url)
}

/// `AUTH_PUBLIC_URL`: an https base URL (http on loopback), kept without a trailing slash.
fn public_url(value: &str) -> Result<Url, ConfigError> {
    let url = issuer_url("AUTH_PUBLIC_URL", value.trim().trim_end_matches('/'))?;
    Ok(url)
}

/// `AUTH_ALLOWED_REDIRECTS`: comma-separated absolute http(s) URLs.
fn allowed_redirects(value: Option<String>) -> Result<Vec<Url>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let url = Url::parse(entry).ok().filter(|url| {
                matches!(url.scheme(), "https" | "http")
                    && url.host_str().is_some_and(|host| !host.is_empty())
                    && url.query().is_none()
                    && url.fragment().is_none()
            });
            url.ok_or_else(|| {
                ConfigError::new(
                    "AUTH_ALLOWED_REDIRECTS",
                    format!(
                        "{entry:?} is not an http or https URL without query or fragment; \
                         expected e.g. https://app.example.com/signed-in,http://localhost:3000"
                    ),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;
    use crate::config::tests::{TempFile, config_from};

    const GOOGLE: [(&str, &str); 3] = [
        ("AUTH_PUBLIC_URL", "https://api.example.com/"),
        ("AUTH_GOOGLE_CLIENT_ID", "google-client"),
        ("AUTH_GOOGLE_CLIENT_SECRET", "google-secret"),
    ];

    #[test]
    fn no_provider_is_configured_by_default() {
        let auth = config_from(&[]).unwrap().auth;
        assert!(!auth.any_provider());
        assert!(auth.public_url.is_none());
        assert_eq!(auth.flow_ttl, Duration::from_secs(600));
        assert!(auth.allowed_redirects.is_empty());
    }

    #[test]
    fn google_and_kakao_default_to_their_real_issuers() {
        let auth = config_from(&[
            GOOGLE[0],
            GOOGLE[1],
            GOOGLE[2],
            ("AUTH_KAKAO_CLIENT_ID", "kakao-rest-key"),
            ("AUTH_KAKAO_CLIENT_SECRET", "kakao-secret"),
        ])
        .unwrap()
        .auth;
        assert_eq!(
            auth.public_url.unwrap().as_str(),
            "https://api.example.com/"
        );
        let issuers: Vec<_> = auth
            .oidc
            .iter()
            .map(|provider| (provider.provider, provider.issuer.as_str().to_owned()))
            .collect();
        assert_eq!(
            issuers,
            [
                (
                    ProviderName::Google,
                    "https://accounts.google.com/".to_owned()
                ),
                (ProviderName::Kakao, "https://kauth.kakao.com/".to_owned()),
            ]
        );
        assert_eq!(auth.oidc[0].client_secret.expose_secret(), "google-secret");
        assert_eq!(auth.oidc[0].scopes, ["openid", "email", "profile"]);
    }

    #[test]
    fn a_provider_needs_the_public_url() {
        let error = config_from(&GOOGLE[1..]).unwrap_err();
        assert_eq!(error.variable, "AUTH_PUBLIC_URL");
    }

    #[test]
    fn half_configured_providers_name_the_missing_variable() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (
                &[("AUTH_GOOGLE_CLIENT_ID", "id")],
                "AUTH_GOOGLE_CLIENT_SECRET",
            ),
            (
                &[("AUTH_GOOGLE_CLIENT_SECRET", "s")],
                "AUTH_GOOGLE_CLIENT_ID",
            ),
            (
                &[("AUTH_KAKAO_CLIENT_ID", "id")],
                "AUTH_KAKAO_CLIENT_SECRET",
            ),
            (
                &[
                    ("AUTH_OIDC_CLIENT_ID", "id"),
                    ("AUTH_OIDC_CLIENT_SECRET", "s"),
                ],
                "AUTH_OIDC_ISSUER",
            ),
            (
                &[("AUTH_OIDC_ISSUER", "https://login.example.com")],
                "AUTH_OIDC_CLIENT_ID",
            ),
            (
                &[("AUTH_NAVER_CLIENT_ID", "id")],
                "AUTH_NAVER_CLIENT_SECRET",
            ),
            (
                &[("AUTH_APPLE_CLIENT_ID", "com.example.web")],
                "AUTH_APPLE_TEAM_ID",
            ),
        ];
        for (pairs, variable) in cases {
            let mut pairs = pairs.to_vec();
            pairs.push(("AUTH_PUBLIC_URL", "https://api.example.com"));
            let error = config_from(&pairs).unwrap_err();
            assert_eq!(error.variable, variable, "{pairs:?}: {error}");
        }
    }

    #[test]
    fn issuers_must_be_https_except_on_loopback() {
        for issuer in [
            "http://login.example.com",
            "ftp://login.example.com",
            "login.example.com",
        ] {
            let error = config_from(&[
                GOOGLE[0],
                ("AUTH_OIDC_CLIENT_ID", "id"),
                ("AUTH_OIDC_CLIENT_SECRET", "secret"),
                ("AUTH_OIDC_ISSUER", issuer),
            ])
            .unwrap_err();
            assert_eq!(error.variable, "AUTH_OIDC_ISSUER", "{issuer}");
        }
        for issuer in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/realm",
            "http://[::1]:9000",
        ] {
            let auth = config_from(&[
                ("AUTH_PUBLIC_URL", "http://127.0.0.1:8000"),
                ("AUTH_OIDC_CLIENT_ID", "id"),
                ("AUTH_OIDC_CLIENT_SECRET", "secret"),
                ("AUTH_OIDC_ISSUER", issuer),
                ("AUTH_OIDC_NAME", "Company SSO"),
                ("AUTH_OIDC_SCOPES", "openid email"),
            ])
            .unwrap()
            .auth;
            assert_eq!(auth.oidc[0].display_name, "Company SSO");
            assert_eq!(auth.oidc[0].scopes, ["openid", "email"]);
        }
        let error = config_from(&[("AUTH_PUBLIC_URL", "http://api.example.com")]).unwrap_err();
        assert_eq!(error.variable, "AUTH_PUBLIC_URL");
    }

    #[test]
    fn naver_endpoints_default_to_naver() {
        let naver = config_from(&[
            GOOGLE[0],
            ("AUTH_NAVER_CLIENT_ID", "id"),
            ("AUTH_NAVER_CLIENT_SECRET", "secret"),
        ])
        .unwrap()
        .auth
        .naver
        .unwrap();
        assert_eq!(naver.authorize_url.as_str(), NAVER_AUTHORIZE_URL);
        assert_eq!(naver.token_url.as_str(), NAVER_TOKEN_URL);
        assert_eq!(naver.userinfo_url.as_str(), NAVER_USERINFO_URL);
    }

    #[test]
    fn apple_needs_a_readable_p256_key() {
        let apple = |file: &str| {
            config_from(&[
                GOOGLE[0],
                ("AUTH_APPLE_CLIENT_ID", "com.example.web"),
                ("AUTH_APPLE_TEAM_ID", "TEAM123456"),
                ("AUTH_APPLE_KEY_ID", "KEY1234567"),
                ("AUTH_APPLE_PRIVATE_KEY_FILE", file),
            ])
        };
        let error = apple("/nonexistent/AuthKey.p8").unwrap_err();
        assert_eq!(error.variable, "AUTH_APPLE_PRIVATE_KEY_FILE");
        assert!(error.problem.contains("cannot read"), "{error}");

        let not_a_key = TempFile::new("not a key");
        let error = apple(not_a_key.path()).unwrap_err();
        assert!(
            error.problem.contains("not a PEM P-256 private key"),
            "{error}"
        );
    }

    #[test]
    fn allowed_redirects_are_absolute_web_urls() {
        let auth = config_from(&[(
            "AUTH_ALLOWED_REDIRECTS",
            "https://app.example.com/signed-in, http://localhost:3000",
        )])
        .unwrap()
        .auth;
        assert_eq!(auth.allowed_redirects.len(), 2);
        for bad in [
            "app.example.com",
            "javascript:alert(1)",
            "https://app.example.com/#x",
        ] {
            let error = config_from(&[("AUTH_ALLOWED_REDIRECTS", bad)]).unwrap_err();
            assert_eq!(error.variable, "AUTH_ALLOWED_REDIRECTS", "{bad}");
        }
        let error = config_from(&[("AUTH_FLOW_TTL_SECONDS", "5")]).unwrap_err();
        assert_eq!(error.variable, "AUTH_FLOW_TTL_SECONDS");
    }

    #[test]
    fn provider_names_round_trip() {
        for provider in ProviderName::ALL {
            assert_eq!(provider.as_str().parse::<ProviderName>(), Ok(provider));
        }
        assert!("github".parse::<ProviderName>().is_err());
    }
}
