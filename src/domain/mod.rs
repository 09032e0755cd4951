//! The rules of the service, independent of HTTP and GraphQL: what valid input is, who may change
//! what, how lists are paged, and how sessions start and end.

pub mod accounts;
pub mod ids;
pub mod pagination;
pub mod posts;
pub mod sessions;
pub mod sign_in;
pub mod users;
mod validation;
