//! Users: profile rules, lookups, and the accounts FestAPI creates itself.

use uuid::Uuid;

use crate::db::ids::{IdentityId, UserId};
use crate::db::models::{NewIdentity, NewUser, UserChanges, UserRow};
use crate::db::{Database, identities, users};
use crate::domain::pagination::{Page, PageRequest};
use crate::domain::validation::{storable, trimmed_text};
use crate::error::AppError;

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest picture URL, in bytes.
pub const MAX_PICTURE_URL_BYTES: usize = 2048;
/// The longest e-mail address (RFC 5321 limits), in bytes.
pub const MAX_EMAIL_BYTES: usize = 320;
/// The provider name of accounts that FestAPI itself creates (`festapi token issue`).
pub const LOCAL_PROVIDER: &str = "festapi";

/// A display name as stored: trimmed, 1 to [`MAX_NAME_CHARS`] characters.
pub fn valid_name(raw: &str) -> Result<String, AppError> {
    trimmed_text("name", raw, MAX_NAME_CHARS)
}

/// A picture URL as stored: an absolute http or https URL with a host.
pub fn valid_picture(raw: &str) -> Result<String, AppError> {
    let invalid = |why: &str| AppError::invalid_input("picture", format!("picture {why}"));
    let text = storable("picture", raw)?.trim();
    if text.len() > MAX_PICTURE_URL_BYTES {
        return Err(invalid(&format!(
            "must be at most {MAX_PICTURE_URL_BYTES} bytes long"
        )));
    }
    let url = url::Url::parse(text).map_err(|_| invalid("must be an http or https URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("must be an http or https URL"));
    }
    // Stored as given, unless the scheme is not in lower case: the normalized form fixes that.
    if text.starts_with("http://") || text.starts_with("https://") {
        Ok(text.to_owned())
    } else {
        Ok(url.to_string())
    }
}

/// An e-mail address as stored: trimmed, one `@` between a non-empty local part and domain.
pub fn valid_email(raw: &str) -> Result<String, AppError> {
    let email = storable("email", raw)?.trim();
    let well_formed = email.len() <= MAX_EMAIL_BYTES
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if well_formed {
        Ok(email.to_owned())
    } else {
        Err(AppError::invalid_input(
            "email",
            "email must be an address such as ada@example.com",
        ))
    }
}

/// The user with this id, if any.
pub async fn find(database: &Database, id: &UserId) -> Result<Option<UserRow>, AppError> {
    let mut connection = database.connection().await?;
    Ok(users::find(&mut connection, id).await?)
}

/// The user with this e-mail address (ignoring case), if any.
pub async fn find_by_email(database: &Database, email: &str) -> Result<Option<UserRow>, AppError> {
    let email = storable("email", email)?.trim();
    let mut connection = database.connection().await?;
    Ok(users::find_by_email(&mut connection, email).await?)
}

/// The users among `ids` that exist.
pub async fn find_many(database: &Database, ids: &[UserId]) -> Result<Vec<UserRow>, AppError> {
    let mut connection = database.connection().await?;
    Ok(users::find_many(&mut connection, ids).await?)
}

/// One page of users, newest first.
pub async fn page(database: &Database, request: &PageRequest) -> Result<Page<UserRow>, AppError> {
    let mut connection = database.connection().await?;
    let rows = users::list(&mut connection, &request.slice()).await?;
    Ok(request.page_from(rows))
}

/// A change to an optional value: leave it, clear it, or set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// Leave the value as it is.
    #[default]
    Keep,
    /// Remove the value.
    Clear,
    /// Replace the value.
    Set(T),
}

/// Changes the profile of user `id`.
pub async fn update_profile(
    database: &Database,
    id: &UserId,
    name: Option<&str>,
    picture: Patch<&str>,
) -> Result<UserRow, AppError> {
    let name = name.map(valid_name).transpose()?;
    let picture = match picture {
        Patch::Keep => None,
        Patch::Clear => Some(None),
        Patch::Set(url) => Some(Some(valid_picture(url)?)),
    };
    // What the user sets is theirs: later sign-ins leave it alone.
    let changes = UserChanges {
        name_set_by_user: name.is_some().then_some(true),
        picture_set_by_user: picture.is_some().then_some(true),
        name,
        picture,
        verified_email: None,
    };
    let mut connection = database.connection().await?;
    if changes.name.is_none() && changes.picture.is_none() {
        return users::find(&mut connection, id)
            .await?
            .ok_or_else(|| AppError::NotFound("the signed-in user no longer exists".into()));
    }
    users::update(&mut connection, id, &changes)
        .await?
        .ok_or_else(|| AppError::NotFound("the signed-in user no longer exists".into()))
}

/// The user with this e-mail address, created as a FestAPI account when there is none.
///
/// `name` defaults to the part of the address before the `@`. Safe against concurrent calls: a
/// user created meanwhile by another caller is returned, not duplicated.
pub async fn find_or_create_local(
    database: &Database,
    email: &str,
    name: Option<&str>,
) -> Result<UserRow, AppError> {
    let email = valid_email(email)?;
    let name = match name {
        Some(name) => valid_name(name)?,
        None => valid_name(email.split('@').next().unwrap_or_default())?,
    };
    let provider_id = Uuid::new_v4().simple().to_string();
    let id = UserId::from_trusted(format!("{LOCAL_PROVIDER}_{provider_id}"));
    let mut connection = database.connection().await?;
    let user = NewUser {
        id: &id,
        email: Some(&email),
        name: &name,
        picture: None,
        verified_email: false,
        provider: LOCAL_PROVIDER,
        provider_id: &provider_id,
    };
    if users::insert_if_absent(&mut connection, &user).await? == 1 {
        // Every account signs in through at least one identity; this one is FestAPI's own.
        let identity = NewIdentity {
            id: &new_identity_id(),
            user_id: &id,
            provider: LOCAL_PROVIDER,
            subject: &provider_id,
            email: Some(&email),
        };
        identities::insert_if_absent(&mut connection, &identity).await?;
    }
    users::find_by_email(&mut connection, &email)
        .await?
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("user {email:?} vanished after insert")))
}

/// A new identity id: `identity_` and a time-ordered UUID.
pub(crate) fn new_identity_id() -> IdentityId {
    IdentityId::from_trusted(format!("identity_{}", Uuid::now_v7()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_must_be_web_urls() {
        assert_eq!(
            valid_picture(" https://example.com/a.png ").unwrap(),
            "https://example.com/a.png"
        );
        assert!(valid_picture("http://example.com").is_ok());
        for bad in [
            "ftp://example.com/a.png",
            "javascript:alert(1)",
            "example.com",
            "https://",
            "",
        ] {
            assert!(valid_picture(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_need_one_at_sign_between_two_parts() {
        assert_eq!(valid_email(" ada@example.com ").unwrap(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "a b@example.com",
            "a@b@c",
        ] {
            assert!(valid_email(bad).is_err(), "{bad}");
        }
    }
}
