//! Rows as Diesel maps them: what queries load, insert and change.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ipnet::IpNet;

use crate::db::ids::{FlowStateHash, IdentityId, PostId, SessionId, UserId};
use crate::db::pagination::{Keyed, Keyset};
use crate::db::schema::{auth_flows, identities, posts, refresh_tokens, sessions, users};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct UserRow {
    /// `{provider}_{provider_id}`, e.g. `google_123456789`.
    pub id: UserId,
    /// Unique regardless of case; `None` when no provider shared one (Kakao and Naver ask the
    /// person first).
    pub email: Option<String>,
    /// The display name, 1 to 100 characters.
    pub name: String,
    /// An http or https URL of the user's picture.
    pub picture: Option<String>,
    /// Whether the identity provider vouched for `email`; never without an address.
    pub verified_email: bool,
    /// The identity provider, e.g. `google`.
    pub provider: String,
    /// The user's id at that provider.
    pub provider_id: String,
    /// When the user first signed in.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// Whether the user set `name` themselves, so sign-ins leave it.
    pub name_set_by_user: bool,
    /// Whether the user set (or removed) `picture` themselves, so sign-ins leave it.
    pub picture_set_by_user: bool,
}

impl Keyed for UserRow {
    fn keyset(&self) -> Keyset {
        Keyset {
            created_at: self.created_at,
            id: self.id.as_str().to_owned(),
        }
    }
}

/// A user about to be inserted.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    /// See [`UserRow::id`].
    pub id: &'a UserId,
    /// See [`UserRow::email`].
    pub email: Option<&'a str>,
    /// See [`UserRow::name`].
    pub name: &'a str,
    /// See [`UserRow::picture`].
    pub picture: Option<&'a str>,
    /// See [`UserRow::verified_email`].
    pub verified_email: bool,
    /// See [`UserRow::provider`].
    pub provider: &'a str,
    /// See [`UserRow::provider_id`].
    pub provider_id: &'a str,
}

/// A user carried over whole from another system, timestamps included: what an import writes.
#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct CarriedOverUser<'a> {
    /// Every column but the timestamps.
    #[diesel(embed)]
    pub user: NewUser<'a>,
    /// See [`UserRow::created_at`].
    pub created_at: DateTime<Utc>,
    /// See [`UserRow::updated_at`].
    pub updated_at: DateTime<Utc>,
}

/// Changes to a user's profile; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges {
    /// A new display name.
    pub name: Option<String>,
    /// A new picture: `Some(None)` removes it.
    pub picture: Option<Option<String>>,
    /// A new e-mail verification flag.
    pub verified_email: Option<bool>,
    /// Set when the user changes the name themselves.
    pub name_set_by_user: Option<bool>,
    /// Set when the user changes the picture themselves.
    pub picture_set_by_user: Option<bool>,
}

/// An identity as stored: one person at one provider.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = identities, check_for_backend(diesel::pg::Pg))]
pub struct IdentityRow {
    /// `identity_` and a time-ordered UUID.
    pub id: IdentityId,
    /// The user this identity signs in.
    pub user_id: UserId,
    /// The provider, e.g. `google`.
    pub provider: String,
    /// The provider's id of the person (`sub`).
    pub subject: String,
    /// The address the provider gave at the last sign-in.
    pub email: Option<String>,
    /// When the identity was first used.
    pub created_at: DateTime<Utc>,
}

/// An identity about to be inserted.
#[derive(Debug, Insertable)]
#[diesel(table_name = identities)]
pub struct NewIdentity<'a> {
    /// See [`IdentityRow::id`].
    pub id: &'a IdentityId,
    /// See [`IdentityRow::user_id`].
    pub user_id: &'a UserId,
    /// See [`IdentityRow::provider`].
    pub provider: &'a str,
    /// See [`IdentityRow::subject`].
    pub subject: &'a str,
    /// See [`IdentityRow::email`].
    pub email: Option<&'a str>,
}

/// An identity carried over with its user, dated as the user is.
#[derive(Debug, Insertable)]
#[diesel(table_name = identities)]
pub struct CarriedOverIdentity<'a> {
    /// See [`IdentityRow::id`].
    pub id: IdentityId,
    /// See [`IdentityRow::user_id`].
    pub user_id: &'a UserId,
    /// See [`IdentityRow::provider`].
    pub provider: &'a str,
    /// See [`IdentityRow::subject`].
    pub subject: &'a str,
    /// See [`IdentityRow::email`].
    pub email: Option<&'a str>,
    /// See [`IdentityRow::created_at`].
    pub created_at: DateTime<Utc>,
}

/// A browser sign-in waiting for the provider to send the browser back.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_flows, check_for_backend(diesel::pg::Pg))]
pub struct AuthFlowRow {
    /// The SHA-256 hex of the `state` sent to the provider.
    pub state_hash: FlowStateHash,
    /// The provider the flow was started with.
    pub provider: String,
    /// The nonce the `id_token` must carry.
    pub nonce: String,
    /// The PKCE verifier whose challenge the provider got.
    pub pkce_verifier: String,
    /// Where to send the browser afterwards, already checked against the allowed redirects.
    pub redirect_to: Option<String>,
    /// The SHA-256 hex of the value of the browser-binding cookie.
    pub binding_hash: String,
    /// When the flow started.
    pub created_at: DateTime<Utc>,
    /// When the flow stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A post as stored.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Identifiable)]
#[diesel(table_name = posts, check_for_backend(diesel::pg::Pg))]
pub struct PostRow {
    /// An opaque id: `post_` and a time-ordered UUID for new posts.
    pub id: PostId,
    /// 1 to 200 characters, trimmed.
    pub title: String,
    /// 1 to 10,000 characters, trimmed.
    pub content: String,
    /// The author's [`UserRow::id`].
    pub author_id: UserId,
    /// When the post was created.
    pub created_at: DateTime<Utc>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
}

impl Keyed for PostRow {
    fn keyset(&self) -> Keyset {
        Keyset {
            created_at: self.created_at,
            id: self.id.as_str().to_owned(),
        }
    }
}

/// A post as reads return it, with only the columns the reader asked for.
///
/// `content` is `None` when the read left it out (the column itself is never null): it is the
/// one column that can be large, up to 10,000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName)]
#[diesel(table_name = posts, check_for_backend(diesel::pg::Pg))]
pub struct PostReadRow {
    /// See [`PostRow::id`].
    pub id: PostId,
    /// See [`PostRow::title`].
    pub title: String,
    /// See [`PostRow::content`]; `None` when not read.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub content: Option<String>,
    /// See [`PostRow::author_id`].
    pub author_id: UserId,
    /// See [`PostRow::created_at`].
    pub created_at: DateTime<Utc>,
    /// See [`PostRow::updated_at`].
    pub updated_at: DateTime<Utc>,
}

/// A whole post, as writes return it, is a read with every column.
impl From<PostRow> for PostReadRow {
    fn from(row: PostRow) -> Self {
        Self {
            id: row.id,
            title: row.title,
            content: Some(row.content),
            author_id: row.author_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl Keyed for PostReadRow {
    fn keyset(&self) -> Keyset {
        Keyset {
            created_at: self.created_at,
            id: self.id.as_str().to_owned(),
        }
    }
}

/// A post about to be inserted.
#[derive(Debug, Insertable)]
#[diesel(table_name = posts)]
pub struct NewPost<'a> {
    /// See [`PostRow::id`].
    pub id: &'a PostId,
    /// See [`PostRow::title`].
    pub title: &'a str,
    /// See [`PostRow::content`].
    pub content: &'a str,
    /// See [`PostRow::author_id`].
    pub author_id: &'a UserId,
}

/// A post carried over whole from another system, timestamps included: what an import writes.
#[derive(Debug, Insertable)]
#[diesel(table_name = posts)]
pub struct CarriedOverPost<'a> {
    /// Every column but the timestamps.
    #[diesel(embed)]
    pub post: NewPost<'a>,
    /// See [`PostRow::created_at`].
    pub created_at: DateTime<Utc>,
    /// See [`PostRow::updated_at`].
    pub updated_at: DateTime<Utc>,
}

/// Changes to a post; `None` leaves a column as it is.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = posts)]
pub struct PostChanges {
    /// A new title.
    pub title: Option<String>,
    /// A new content.
    pub content: Option<String>,
}

/// A session as stored: one sign-in, from its start until logout or expiry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = sessions, check_for_backend(diesel::pg::Pg))]
pub struct SessionRow {
    /// `session_` and a time-ordered UUID; the `sid` claim of the session's access tokens.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// How the user signed in: an identity provider, or `festapi` for `festapi token issue`.
    pub provider: String,
    /// The identity the user signed in with, where identities are recorded.
    pub identity_id: Option<String>,
    /// The `User-Agent` of the request that started the session, at most 512 characters.
    pub user_agent: Option<String>,
    /// The address of the client that started the session.
    pub ip: Option<IpNet>,
    /// When the session started.
    pub created_at: DateTime<Utc>,
    /// When it was last used to sign in, refresh or make a request, to the minute.
    pub last_used_at: DateTime<Utc>,
    /// When it expires unless refreshed before.
    pub expires_at: DateTime<Utc>,
    /// When it was ended, by logout or because a rotated refresh token came back.
    pub ended_at: Option<DateTime<Utc>>,
}

/// A session about to be inserted.
#[derive(Debug, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    /// See [`SessionRow::id`].
    pub id: &'a SessionId,
    /// See [`SessionRow::user_id`].
    pub user_id: &'a UserId,
    /// See [`SessionRow::provider`].
    pub provider: &'a str,
    /// See [`SessionRow::identity_id`].
    pub identity_id: Option<&'a str>,
    /// See [`SessionRow::user_agent`].
    pub user_agent: Option<&'a str>,
    /// See [`SessionRow::ip`].
    pub ip: Option<IpNet>,
    /// See [`SessionRow::expires_at`].
    pub expires_at: DateTime<Utc>,
}

/// A refresh token a session was given, known by its hash alone.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = refresh_tokens, primary_key(hash), check_for_backend(diesel::pg::Pg))]
pub struct RefreshTokenRow {
    /// The SHA-256 hash of the token.
    pub hash: Vec<u8>,
    /// The session it refreshes.
    pub session_id: SessionId,
    /// When it was handed out.
    pub created_at: DateTime<Utc>,
    /// When it was exchanged for its successor; `None` while it is the session's current one.
    pub rotated_at: Option<DateTime<Utc>>,
}
