//! Signing in through identity providers: the providers offered, `login` with a code an app
//! obtained, `loginWithIdToken` for native sign-in on a device, and `linkProvider`.

use async_graphql::{Context, Enum, Object, SimpleObject};

use crate::auth::providers::{Profile, login_url};
use crate::config::ProviderName;
use crate::domain::accounts;
use crate::domain::sign_in::{self, CodeLogin};
use crate::error::AppError;
use crate::graphql::context::ContextExt as _;
use crate::graphql::sessions::AuthPayload;
use crate::graphql::users::User;

/// An identity provider people sign in with.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthProvider {
    /// Google.
    Google,
    /// Sign in with Apple.
    Apple,
    /// Kakao.
    Kakao,
    /// Naver.
    Naver,
    /// The OpenID Connect provider this server is configured with (`AUTH_OIDC_*`).
    Oidc,
}

impl From<AuthProvider> for ProviderName {
    fn from(provider: AuthProvider) -> Self {
        match provider {
            AuthProvider::Google => Self::Google,
            AuthProvider::Apple => Self::Apple,
            AuthProvider::Kakao => Self::Kakao,
            AuthProvider::Naver => Self::Naver,
            AuthProvider::Oidc => Self::Oidc,
        }
    }
}

impl From<ProviderName> for AuthProvider {
    fn from(provider: ProviderName) -> Self {
        match provider {
            ProviderName::Google => Self::Google,
            ProviderName::Apple => Self::Apple,
            ProviderName::Kakao => Self::Kakao,
            ProviderName::Naver => Self::Naver,
            ProviderName::Oidc => Self::Oidc,
        }
    }
}

/// A provider this server signs people in with, for a sign-in button.
#[derive(SimpleObject)]
pub(super) struct AuthProviderInfo {
    /// Which provider.
    provider: AuthProvider,
    /// The label of its button.
    name: String,
    /// Where the button sends the browser: `{AUTH_PUBLIC_URL}/auth/{provider}`.
    login_url: String,
}

/// Queries about signing in.
#[derive(Default)]
pub(super) struct SignInQuery;

#[Object]
impl SignInQuery {
    /// The providers this server is configured for, in the order buttons should list them.
    async fn auth_providers(&self, ctx: &Context<'_>) -> Result<Vec<AuthProviderInfo>, AppError> {
        let app = ctx.app()?;
        let Some(public_url) = &app.auth.public_url else {
            return Ok(Vec::new());
        };
        Ok(app
            .providers
            .iter()
            .map(|provider| AuthProviderInfo {
                provider: provider.name().into(),
                name: provider.display_name().to_owned(),
                login_url: login_url(public_url, provider.name()).into(),
            })
            .collect())
    }
}

/// Signs in the person `profile` describes from this request's client, starting a session.
async fn signed_in(
    ctx: &Context<'_>,
    provider: ProviderName,
    profile: &Profile,
) -> Result<AuthPayload, AppError> {
    let app = ctx.app()?;
    let client = ctx.request()?.client();
    let signed_in =
        sign_in::sign_in(&app.database, &app.tokens, provider, profile, &client).await?;
    Ok(signed_in.into())
}

/// Mutations that sign in.
#[derive(Default)]
pub(super) struct SignInMutation;

#[Object]
impl SignInMutation {
    /// Signs in with an authorization code an app obtained by sending the browser to the
    /// provider itself, and starts a session. A new identity whose e-mail address belongs to an
    /// account is refused with ACCOUNT_EXISTS and `extensions.provider` naming the provider to
    /// sign in with instead.
    #[expect(
        clippy::too_many_arguments,
        reason = "each argument is one of the mutation's, named as clients send it"
    )]
    async fn login(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The provider that issued the code.")] provider: AuthProvider,
        #[graphql(desc = "The code the provider sent back to `redirectUri`.")] code: String,
        #[graphql(desc = "The redirect URI the code was issued for: this server's \
                    `/auth/{provider}/callback`, or one of its allowed redirects.")]
        redirect_uri: String,
        #[graphql(desc = "The PKCE verifier, when the authorization request sent a challenge.")]
        code_verifier: Option<String>,
        #[graphql(
            desc = "The nonce the authorization request sent; the `id_token` must then carry it."
        )]
        nonce: Option<String>,
        #[graphql(
            desc = "The `state` the provider sent back with the code; required for Naver, \
                          whose token endpoint wants it."
        )]
        state: Option<String>,
    ) -> Result<AuthPayload, AppError> {
        let app = ctx.app()?;
        let provider = ProviderName::from(provider);
        let login = CodeLogin {
            provider,
            code: &code,
            redirect_uri: &redirect_uri,
            code_verifier: code_verifier.as_deref(),
            nonce: nonce.as_deref(),
            state: state.as_deref(),
        };
        let profile = sign_in::profile_from_code(&app.providers, &app.auth, &login).await?;
        signed_in(ctx, provider, &profile).await
    }

    /// Signs in with an `id_token` an app obtained on a device (Sign in with Apple, Google on
    /// Android or iOS), and starts a session.
    async fn login_with_id_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The provider that issued the token.")] provider: AuthProvider,
        #[graphql(desc = "The `id_token` the app obtained from the provider.")] id_token: String,
        #[graphql(
            desc = "The raw nonce the app made, required whenever the token carries one (Apple's \
                    tokens carry its SHA-256 hex)."
        )]
        nonce: Option<String>,
    ) -> Result<AuthPayload, AppError> {
        let app = ctx.app()?;
        let provider = ProviderName::from(provider);
        let profile =
            sign_in::profile_from_id_token(&app.providers, provider, &id_token, nonce.as_deref())
                .await?;
        signed_in(ctx, provider, &profile).await
    }

    /// Attaches another provider's identity to the signed-in user, who may then sign in with
    /// either. FORBIDDEN when that identity already signs in to another user.
    async fn link_provider(
        &self,
        ctx: &Context<'_>,
        provider: AuthProvider,
        code: String,
        redirect_uri: String,
        code_verifier: Option<String>,
        #[graphql(desc = "The `state` the provider sent back with the code; required for Naver.")]
        state: Option<String>,
    ) -> Result<User, AppError> {
        let session = ctx.session()?;
        let app = ctx.app()?;
        let provider = ProviderName::from(provider);
        let login = CodeLogin {
            provider,
            code: &code,
            redirect_uri: &redirect_uri,
            code_verifier: code_verifier.as_deref(),
            nonce: None,
            state: state.as_deref(),
        };
        let profile = sign_in::profile_from_code(&app.providers, &app.auth, &login).await?;
        let user = accounts::link(&app.database, &session.user.id, provider, &profile).await?;
        Ok(user.into())
    }
}
