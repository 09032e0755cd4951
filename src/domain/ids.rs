//! Ids named by clients, checked before they reach a query.

use crate::db::ids::{PostId, SessionId, UserId};
use crate::domain::validation::identifier;
use crate::error::AppError;

/// An id type a client may name.
pub trait ParseId: Sized {
    /// The id `raw` spells, or BAD_USER_INPUT on argument `field` when no row could have it
    /// (empty, too long, or holding control characters). An id that merely names no row is
    /// accepted: finding that out is the query's job.
    fn parse(field: &'static str, raw: &str) -> Result<Self, AppError>;
}

/// Every id is text under the same rules, so each parses alike.
macro_rules! parse_text_ids {
    ($($id:ty),+) => {$(
        impl ParseId for $id {
            fn parse(field: &'static str, raw: &str) -> Result<Self, AppError> {
                identifier(field, raw).map(Self::from_trusted)
            }
        }
    )+};
}

parse_text_ids!(UserId, PostId, SessionId);
