//! The rules of the service, independent of HTTP and GraphQL: what valid input is, who may change
//! what, and how lists are paged.

pub mod accounts;
pub mod ids;
pub mod pagination;
pub mod posts;
pub mod users;
mod validation;
