//! Accounts and the identities that sign in to them.
//!
//! A person is one identity: a provider and that provider's subject, nothing else. A sign-in
//! through an identity seen before reaches its account; a new identity creates an account,
//! unless its e-mail address already belongs to one. Then it is refused with ACCOUNT_EXISTS: the
//! owner signs in as before and links the new provider explicitly, so whoever controls that
//! address at a weaker provider cannot take the account over.
//!
//! An identity whose provider shares no address (Kakao and Naver ask the person first) makes an
//! account without one; since accounts are never found by address, nothing else changes. Whether
//! the provider verified an address only sets the account's verified flag: an unverified address
//! still names the account, so it still cannot be reused by a new identity.

use diesel_async::AsyncConnection as _;
use uuid::Uuid;

use crate::auth::providers::Profile;
use crate::config::ProviderName;
use crate::db::ids::{IdentityId, UserId};
use crate::db::models::{IdentityRow, NewIdentity, NewUser, UserChanges, UserRow};
use crate::db::{Database, identities, users};
use crate::domain::users::{
    LOCAL_PROVIDER, new_identity_id, valid_email, valid_name, valid_picture,
};
use crate::error::AppError;

/// The longest subject kept, in bytes (the `identities.subject` limit).
const MAX_SUBJECT_BYTES: usize = 255;

/// A provider's profile as FestAPI stores it.
#[derive(Debug)]
struct CheckedProfile {
    subject: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
    picture: Option<String>,
}

impl CheckedProfile {
    /// Keeps what fits FestAPI's rules; a name or picture that does not is dropped, not fatal.
    fn from(profile: &Profile) -> Result<Self, AppError> {
        let subject = profile.subject.trim();
        if subject.is_empty() || subject.len() > MAX_SUBJECT_BYTES {
            return Err(AppError::Unauthenticated(
                "the provider named the person with an unusable subject".into(),
            ));
        }
        let email = match &profile.email {
            Some(email) => Some(valid_email(email).map_err(|_| {
                AppError::Unauthenticated(
                    "the provider gave an e-mail address that is not usable".into(),
                )
            })?),
            None => None,
        };
        Ok(Self {
            subject: subject.to_owned(),
            // Nobody can have verified an address that was not given.
            email_verified: profile.email_verified && email.is_some(),
            email,
            name: profile
                .name
                .as_deref()
                .and_then(|name| valid_name(name).ok()),
            picture: profile
                .picture
                .as_deref()
                .and_then(|picture| valid_picture(picture).ok()),
        })
    }
}

/// An account reached through one of its identities.
#[derive(Debug)]
pub struct SignedInAccount {
    /// The account.
    pub user: UserRow,
    /// The identity that reached it.
    pub identity_id: IdentityId,
}

/// The account `profile` signs in to at `provider`, created when the identity is new and its
/// e-mail address is not taken; refreshed from the profile otherwise.
pub async fn sign_in(
    database: &Database,
    provider: ProviderName,
    profile: &Profile,
) -> Result<SignedInAccount, AppError> {
    let profile = CheckedProfile::from(profile)?;
    let mut connection = database.connection().await?;
    // Twice at most: a concurrent first sign-in of the same person may create the account
    // between the look-up and the insert; the second look-up then finds it.
    for _ in 0..2 {
        if let Some((identity, user)) =
            identities::find_with_user(&mut connection, provider.as_str(), &profile.subject).await?
        {
            let user = refresh(&mut connection, &identity, user, &profile).await?;
            return Ok(SignedInAccount {
                user,
                identity_id: identity.id,
            });
        }
        if let Some(email) = &profile.email
            && let Some(owner) = users::find_by_email(&mut connection, email).await?
        {
            return Err(account_exists(&mut connection, &owner).await?);
        }
        if let Some(account) = create(&mut connection, provider, &profile).await? {
            return Ok(account);
        }
    }
    Err(AppError::unavailable(anyhow::anyhow!(
        "a concurrent sign-in of {provider} subject {:?} kept conflicting",
        profile.subject
    )))
}

/// Attaches the identity `profile` at `provider` to the signed-in user `user_id`.
pub async fn link(
    database: &Database,
    user_id: &UserId,
    provider: ProviderName,
    profile: &Profile,
) -> Result<UserRow, AppError> {
    let profile = CheckedProfile::from(profile)?;
    let mut connection = database.connection().await?;
    let identity = NewIdentity {
        id: &new_identity_id(),
        user_id,
        provider: provider.as_str(),
        subject: &profile.subject,
        email: profile.email.as_deref(),
    };
    identities::insert_if_absent(&mut connection, &identity).await?;
    match identities::find_with_user(&mut connection, provider.as_str(), &profile.subject).await? {
        Some((_, user)) if user.id == *user_id => Ok(user),
        Some(_) => Err(AppError::Forbidden(
            format!("this {provider} account already signs in to another user").into(),
        )),
        None => Err(AppError::internal(anyhow::anyhow!(
            "identity {provider}/{:?} vanished after insert",
            profile.subject
        ))),
    }
}

/// ACCOUNT_EXISTS naming a provider `owner` signs in with: their oldest identity at a real
/// provider, so `festapi` is named only for an account no provider has been linked to yet.
async fn account_exists(
    connection: &mut diesel_async::AsyncPgConnection,
    owner: &UserRow,
) -> Result<AppError, AppError> {
    let providers: Vec<String> = identities::of_user(connection, &owner.id)
        .await?
        .into_iter()
        .map(|identity| identity.provider)
        .collect();
    let provider = providers
        .iter()
        .find(|provider| *provider != LOCAL_PROVIDER)
        .or(providers.first())
        .unwrap_or(&owner.provider)
        .clone();
    Ok(AppError::AccountExists { provider })
}

/// Creates the account and its first identity together; `None` when a concurrent sign-in took
/// the id, the address or the identity first.
async fn create(
    connection: &mut diesel_async::AsyncPgConnection,
    provider: ProviderName,
    profile: &CheckedProfile,
) -> Result<Option<SignedInAccount>, AppError> {
    // `{provider}_{subject}`, as accounts have always been named, unless that is too long.
    let mut id = format!("{provider}_{}", profile.subject);
    if id.len() > crate::db::ids::MAX_ID_CHARS {
        id = format!("{provider}_{}", Uuid::now_v7().simple());
    }
    let id = UserId::from_trusted(id);
    let identity_id = new_identity_id();
    let email = profile.email.as_deref();
    let fallback_name;
    let name = match &profile.name {
        Some(name) => name.as_str(),
        None => {
            fallback_name = email
                .and_then(|email| valid_name(email.split('@').next().unwrap_or_default()).ok())
                .unwrap_or_else(|| provider.to_string());
            fallback_name.as_str()
        }
    };
    let created = connection
        .transaction(async |connection| -> Result<Option<UserRow>, AppError> {
            {
                let user = NewUser {
                    id: &id,
                    email,
                    name,
                    picture: profile.picture.as_deref(),
                    verified_email: profile.email_verified,
                    provider: provider.as_str(),
                    provider_id: &profile.subject,
                };
                if users::insert_if_absent(connection, &user).await? == 0 {
                    return Ok(None);
                }
                let identity = NewIdentity {
                    id: &identity_id,
                    user_id: &id,
                    provider: provider.as_str(),
                    subject: &profile.subject,
                    email,
                };
                if identities::insert_if_absent(connection, &identity).await? == 0 {
                    // Someone else's first sign-in won; undo ours.
                    return Err(AppError::NotFound("concurrent sign-in".into()));
                }
                Ok(users::find(connection, &id).await?)
            }
        })
        .await;
    match created {
        Err(AppError::NotFound(_)) => Ok(None),
        Ok(user) => Ok(user.map(|user| SignedInAccount { user, identity_id })),
        Err(error) => Err(error),
    }
}

/// Brings the account up to date with the provider's profile, leaving what the user set.
async fn refresh(
    connection: &mut diesel_async::AsyncPgConnection,
    identity: &IdentityRow,
    user: UserRow,
    profile: &CheckedProfile,
) -> Result<UserRow, AppError> {
    if identity.email != profile.email {
        identities::set_email(connection, identity, profile.email.as_deref()).await?;
    }
    let same_address = profile
        .email
        .as_deref()
        .zip(user.email.as_deref())
        .is_some_and(|(given, kept)| given.eq_ignore_ascii_case(kept));
    let changes = UserChanges {
        name: profile
            .name
            .clone()
            .filter(|name| !user.name_set_by_user && *name != user.name),
        picture: profile
            .picture
            .clone()
            .filter(|picture| !user.picture_set_by_user && user.picture.as_ref() != Some(picture))
            .map(Some),
        verified_email: same_address
            .then_some(profile.email_verified)
            .filter(|verified| *verified != user.verified_email),
        name_set_by_user: None,
        picture_set_by_user: None,
    };
    if changes.name.is_none() && changes.picture.is_none() && changes.verified_email.is_none() {
        return Ok(user);
    }
    users::update(connection, &user.id, &changes)
        .await?
        .ok_or_else(|| AppError::NotFound("the account was deleted while signing in".into()))
}
