//! Refresh tokens: opaque random values that get a session its next access token.
//!
//! A refresh token is 256 random bits written in base64url (43 characters), never a JWT, so
//! neither kind of token can pass for the other. The server keeps only its SHA-256 hash: the
//! value has all the entropy a secret needs, so a plain hash is enough, and a leak of the
//! database leaks no usable token.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use crate::error::AppError;

/// How many random bytes a refresh token holds.
const RANDOM_BYTES: usize = 32;
/// How long a refresh token is in characters: 32 bytes in unpadded base64.
const ENCODED_CHARS: usize = 43;

/// The SHA-256 hash of a refresh token: how the database knows it.
pub type RefreshTokenHash = [u8; 32];

/// A newly made refresh token, to hand to the client once, and its hash, to store.
pub struct RefreshToken {
    /// The token, for the client only.
    pub token: String,
    /// Its hash, for the database.
    pub hash: RefreshTokenHash,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RefreshToken")
            .finish_non_exhaustive()
    }
}

impl RefreshToken {
    /// A fresh token from the operating system's secure random source.
    pub fn generate() -> Result<Self, AppError> {
        let mut random = [0_u8; RANDOM_BYTES];
        getrandom::fill(&mut random).map_err(|error| {
            AppError::internal(anyhow::anyhow!("no secure random bytes: {error}"))
        })?;
        Ok(Self {
            token: URL_SAFE_NO_PAD.encode(random),
            hash: Sha256::digest(random).into(),
        })
    }
}

/// The hash of a token a client presented, or UNAUTHENTICATED when it cannot be one of ours
/// (an access token, say), decided without asking the database.
pub fn hash_presented(presented: &str) -> Result<RefreshTokenHash, AppError> {
    let invalid = || AppError::Unauthenticated("the refresh token is invalid".into());
    if presented.len() != ENCODED_CHARS {
        return Err(invalid());
    }
    // The decoder refuses padding and non-zero trailing bits: each token has one spelling.
    let random = URL_SAFE_NO_PAD.decode(presented).map_err(|_| invalid())?;
    Ok(Sha256::digest(random).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_43_url_safe_characters_hashed_as_presented() {
        let first = RefreshToken::generate().unwrap();
        let second = RefreshToken::generate().unwrap();
        assert_eq!(first.token.len(), ENCODED_CHARS);
        assert!(
            first
                .token
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        );
        assert_ne!(first.token, second.token);
        assert_eq!(hash_presented(&first.token).unwrap(), first.hash);
        assert_ne!(first.hash, second.hash);
    }

    #[test]
    fn anything_else_is_refused_as_unauthenticated() {
        let token = RefreshToken::generate().unwrap().token;
        let body = &token[..ENCODED_CHARS - 1];
        for presented in [
            String::new(),
            format!("{token}="),
            body.to_owned(),
            // `+` and `/` are standard base64, not base64url.
            format!("{body}+"),
            format!("{body}\0"),
            // 'B' sets a trailing bit that 256 bits never use.
            format!("{body}B"),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl".to_owned(),
        ] {
            let error = hash_presented(&presented).unwrap_err();
            assert!(
                matches!(error, AppError::Unauthenticated(_)),
                "{presented:?}"
            );
        }
    }
}
