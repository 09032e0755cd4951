//! Request rate limits: per client address, per signed-in user, and stricter ones for mutations
//! (see [`RateLimitConfig`]).
//!
//! Each limit is a keyed GCRA limiter from `governor`: a client may spend a minute's allowance at
//! once, which then refills evenly. Limits live in the memory of each instance, so behind a load
//! balancer a client gets roughly its allowance per instance. A key stays in memory only while
//! its allowance is not full again; [`RateLimits::forget_refilled`] drops the others, and
//! [`crate::server`] calls it periodically, so memory follows the clients of the last minute or
//! two however many addresses send requests.

use std::fmt;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;

use governor::clock::Clock as _;
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::config::RateLimitConfig;
use crate::db::ids::UserId;
use crate::error::AppError;

/// One limit, keyed by client address or user id; `None` when the limit is off.
type Limit<K> = Option<DefaultKeyedRateLimiter<K>>;

/// Every request limit of one server instance.
pub struct RateLimits {
    per_client: Limit<IpAddr>,
    per_user: Limit<UserId>,
    mutations_per_client: Limit<IpAddr>,
    mutations_per_user: Limit<UserId>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("RateLimits")
            .field("per_client", &self.per_client.is_some())
            .field("per_user", &self.per_user.is_some())
            .field("mutations_per_client", &self.mutations_per_client.is_some())
            .field("mutations_per_user", &self.mutations_per_user.is_some())
            .finish()
    }
}

impl RateLimits {
    /// The limits `config` asks for, each off where its setting is 0.
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            per_client: limit(config.per_ip_per_minute),
            per_user: limit(config.per_user_per_minute),
            mutations_per_client: limit(config.mutations_per_minute),
            mutations_per_user: limit(config.mutations_per_minute),
        }
    }

    /// Counts a request from `client`, refusing it with [`AppError::RateLimited`] once that
    /// address has used up its allowance. IPv6 clients are counted per /64 network, the block
    /// one subscriber usually holds, so changing addresses within it does not escape the limit.
    pub fn check_client(&self, client: IpAddr, is_mutation: bool) -> Result<(), AppError> {
        let key = client_key(client);
        check(&self.per_client, &key)?;
        if is_mutation {
            check(&self.mutations_per_client, &key)?;
        }
        Ok(())
    }

    /// Counts a request from the signed-in user `user`, whatever address it comes from.
    pub fn check_user(&self, user: &UserId, is_mutation: bool) -> Result<(), AppError> {
        check(&self.per_user, user)?;
        if is_mutation {
            check(&self.mutations_per_user, user)?;
        }
        Ok(())
    }

    /// Forgets every client and user whose allowance is full again, and frees the memory.
    pub fn forget_refilled(&self) {
        forget_refilled(&self.per_client);
        forget_refilled(&self.per_user);
        forget_refilled(&self.mutations_per_client);
        forget_refilled(&self.mutations_per_user);
    }

    /// How many clients and users the limits remember.
    pub fn remembered_keys(&self) -> usize {
        remembered_keys(&self.per_client)
            + remembered_keys(&self.per_user)
            + remembered_keys(&self.mutations_per_client)
            + remembered_keys(&self.mutations_per_user)
    }
}

fn limit<K: Clone + Eq + Hash>(per_minute: u32) -> Limit<K> {
    NonZeroU32::new(per_minute)
        .map(|per_minute| DefaultKeyedRateLimiter::dashmap(Quota::per_minute(per_minute)))
}

fn check<K: Clone + Eq + Hash>(limit: &Limit<K>, key: &K) -> Result<(), AppError> {
    let Some(limiter) = limit else {
        return Ok(());
    };
    limiter.check_key(key).map_err(|not_until| {
        AppError::rate_limited(not_until.wait_time_from(limiter.clock().now()))
    })
}

fn forget_refilled<K: Clone + Eq + Hash>(limit: &Limit<K>) {
    if let Some(limiter) = limit {
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

fn remembered_keys<K: Clone + Eq + Hash>(limit: &Limit<K>) -> usize {
    limit.as_ref().map_or(0, |limiter| limiter.len())
}

/// The key `client` is counted under: an IPv4 address as it is (also when written as an
/// IPv4-mapped IPv6 address), an IPv6 address as its /64 network.
fn client_key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(address) => {
            let network = u128::from(address) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(per_ip: u32, per_user: u32, mutations: u32) -> RateLimits {
        RateLimits::new(&RateLimitConfig {
            per_ip_per_minute: per_ip,
            per_user_per_minute: per_user,
            mutations_per_minute: mutations,
        })
    }

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn user(id: &str) -> UserId {
        UserId::from_trusted(id)
    }

    fn retry_after_seconds(result: Result<(), AppError>) -> u64 {
        match result {
            Err(AppError::RateLimited {
                retry_after_seconds,
            }) => retry_after_seconds,
            other => panic!("expected RateLimited, got {other:?}"),
        }
    }

    #[test]
    fn each_address_gets_its_own_allowance() {
        let limits = limits(2, 0, 0);
        let (first, second) = (address("192.0.2.1"), address("192.0.2.2"));

        assert!(limits.check_client(first, false).is_ok());
        assert!(limits.check_client(first, false).is_ok());
        // Two a minute refill one every 30 s.
        assert_eq!(retry_after_seconds(limits.check_client(first, false)), 30);
        assert!(limits.check_client(second, false).is_ok());
    }

    #[test]
    fn mutations_have_a_stricter_allowance_of_their_own() {
        let limits = limits(10, 10, 1);
        let client = address("192.0.2.1");

        assert!(limits.check_client(client, true).is_ok());
        assert_eq!(retry_after_seconds(limits.check_client(client, true)), 60);
        assert!(limits.check_client(client, false).is_ok());

        assert!(limits.check_user(&user("alice"), true).is_ok());
        assert!(limits.check_user(&user("alice"), true).is_err());
        assert!(limits.check_user(&user("alice"), false).is_ok());
        assert!(limits.check_user(&user("bob"), true).is_ok());
    }

    #[test]
    fn each_user_gets_its_own_allowance() {
        let limits = limits(0, 1, 0);

        assert!(limits.check_user(&user("alice"), false).is_ok());
        assert!(limits.check_user(&user("alice"), false).is_err());
        assert!(limits.check_user(&user("bob"), false).is_ok());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = limits(0, 0, 0);
        for _ in 0..1_000 {
            assert!(limits.check_client(address("192.0.2.1"), true).is_ok());
            assert!(limits.check_user(&user("alice"), true).is_ok());
        }
        assert_eq!(limits.remembered_keys(), 0);
    }

    #[test]
    fn ipv6_clients_are_counted_per_64_network() {
        let limits = limits(1, 0, 0);

        assert!(
            limits
                .check_client(address("2001:db8:1:2::1"), false)
                .is_ok()
        );
        assert!(
            limits
                .check_client(address("2001:db8:1:2:ffff::9"), false)
                .is_err()
        );
        assert!(
            limits
                .check_client(address("2001:db8:1:3::1"), false)
                .is_ok()
        );
        assert!(
            limits
                .check_client(address("::ffff:192.0.2.1"), false)
                .is_ok()
        );
        assert!(limits.check_client(address("192.0.2.1"), false).is_err());
    }

    #[test]
    fn refilled_keys_are_forgotten() {
        // 60,000 a minute refill one every millisecond.
        let limits = limits(60_000, 60_000, 60_000);
        for index in 0..1_000_u32 {
            let client = IpAddr::from(index.to_be_bytes());
            assert!(limits.check_client(client, true).is_ok());
            assert!(limits.check_user(&user(&index.to_string()), true).is_ok());
        }
        assert_eq!(limits.remembered_keys(), 4_000);

        std::thread::sleep(Duration::from_millis(20));
        limits.forget_refilled();

        assert_eq!(limits.remembered_keys(), 0);
    }
}
