//! The rules of the service, independent of HTTP and GraphQL: what valid input is, who may change
//! what, how lists are paged, how sessions start and end, how the old service's data moves in,
//! and how synthetic data for benchmarks is made.

pub mod accounts;
pub mod ids;
pub mod import;
pub mod pagination;
pub mod posts;
pub mod seed;
pub mod sessions;
pub mod sign_in;
pub mod users;
mod validation;
