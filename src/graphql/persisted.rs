//! Automatic persisted queries, as Apollo's clients send them.
//!
//! A client sends `extensions.persistedQuery` = `{"version": 1, "sha256Hash": "<hex>"}`, first
//! without `query`. When this instance knows the hash it runs the document; otherwise it answers
//! `PersistedQueryNotFound` (code `PERSISTED_QUERY_NOT_FOUND`) and the client sends the hash again
//! with the text, which is checked against the hash, run, and remembered. The documents are the
//! [`DocumentCache`]'s, so each instance learns the hashes it is sent, and a document is
//! remembered only when it passes the limits on its text.

use async_graphql::Value;

use crate::graphql::document::{DocumentCache, DocumentHash};

/// The only version of the protocol there is.
const VERSION: i32 = 1;
/// The key of the protocol in a request's `extensions`.
const EXTENSION: &str = "persistedQuery";

/// Why an automatic persisted query cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistedQueryError {
    /// The hash is not one this instance knows: the client is to send the text with it.
    NotFound,
    /// The text sent is not the one the hash names.
    HashMismatch,
    /// A version of the protocol other than 1.
    UnsupportedVersion(String),
    /// `extensions.persistedQuery` is not `{"version": 1, "sha256Hash": "<64 hex digits>"}`.
    Malformed,
}

impl PersistedQueryError {
    /// The error's `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            Self::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            Self::UnsupportedVersion(_) | Self::Malformed => "BAD_REQUEST",
        }
    }

    /// Whether the client is expected to retry with the text: Apollo's clients look for this
    /// error in a successful response.
    pub fn asks_for_text(&self) -> bool {
        *self == Self::NotFound
    }
}

impl std::fmt::Display for PersistedQueryError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The exact message Apollo's persisted-query link reacts to.
            Self::NotFound => formatter.write_str("PersistedQueryNotFound"),
            Self::HashMismatch => formatter.write_str(
                "provided sha does not match query: `extensions.persistedQuery.sha256Hash` must \
                 be the SHA-256 of `query`, in hexadecimal",
            ),
            Self::UnsupportedVersion(version) => write!(
                formatter,
                "Unsupported persisted query version {version}: only version {VERSION} is supported"
            ),
            Self::Malformed => write!(
                formatter,
                "`extensions.{EXTENSION}` must be {{\"version\": {VERSION}, \"sha256Hash\": \
                 \"<SHA-256 of the query in 64 hexadecimal digits>\"}}"
            ),
        }
    }
}

/// Resolves the persisted query of `request`, if it has one: fills in the text of a request
/// sent by hash alone, or checks the text against the hash. Returns the hash, which is the
/// text's.
pub(crate) fn resolve(
    documents: &DocumentCache,
    request: &mut async_graphql::Request,
) -> Result<Option<DocumentHash>, PersistedQueryError> {
    let fields = match request.extensions.get(EXTENSION) {
        // `null` is no persisted query, as an absent entry is.
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(PersistedQueryError::Malformed),
    };
    match fields.get("version") {
        Some(Value::Number(version)) if version.as_i64() == Some(VERSION.into()) => {}
        Some(Value::Number(version)) => {
            return Err(PersistedQueryError::UnsupportedVersion(version.to_string()));
        }
        _ => return Err(PersistedQueryError::Malformed),
    }
    let hash = match fields.get("sha256Hash") {
        Some(Value::String(hex)) => DocumentHash::from_hex(hex),
        _ => None,
    }
    .ok_or(PersistedQueryError::Malformed)?;
    if request.query.is_empty() {
        let document = documents.get(&hash).ok_or(PersistedQueryError::NotFound)?;
        request.query = document.text().to_owned();
    } else if DocumentHash::of(&request.query) != hash {
        return Err(PersistedQueryError::HashMismatch);
    }
    Ok(Some(hash))
}
