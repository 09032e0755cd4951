//! Typed ids: a user's, a post's, a session's, an identity's and a sign-in flow's ids are
//! distinct types, so no query can be handed one in place of another.
//!
//! Each wraps the text of its `text` column. An id comes from the database, from the server
//! minting a new one, or from client input that has been checked first; `from_trusted` is the
//! door for all three, so text a client sent must be checked before it goes through.

use std::fmt;

use diesel_derive_newtype::DieselNewType;

/// The longest id a row can have, in characters (the tables' CHECK constraints).
pub const MAX_ID_CHARS: usize = 255;

macro_rules! text_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, DieselNewType)]
        pub struct $name(String);

        impl $name {
            /// Wraps text known to be an id of this kind: read from the database, minted by the
            /// server, or checked client input.
            pub fn from_trusted(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id's text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(&self.0)
            }
        }
    };
}

text_id! {
    /// A user's id (`users.id`, `posts.author_id`): `{provider}_{provider_id}`.
    UserId
}

text_id! {
    /// A post's id (`posts.id`): `post_` and a time-ordered UUID for new posts.
    PostId
}

text_id! {
    /// A session's id (`sessions.id`, the `sid` claim of its access tokens): `session_` and a
    /// time-ordered UUID.
    SessionId
}

text_id! {
    /// An identity's id (`identities.id`): `identity_` and a time-ordered UUID.
    IdentityId
}

text_id! {
    /// A sign-in flow's key (`auth_flows.state_hash`): the SHA-256 hex of its `state`.
    FlowStateHash
}
