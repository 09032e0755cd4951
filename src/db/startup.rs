//! Waiting for PostgreSQL at start-up.
//!
//! A database that starts together with the server (a container beside it, a managed instance
//! still booting, a failover in progress) is tried again with exponential backoff, capped and
//! jittered so that many replicas do not knock in step, until `DATABASE_CONNECT_TIMEOUT_SECONDS`
//! have passed. A failure that no retry can fix (a wrong password, a role PostgreSQL does not let
//! in, a missing database the role may not create, a failing migration) ends the wait at once.

use std::time::Duration;

use tokio::time::Instant;

use crate::db::errors::retrying_may_help;

/// The wait before the second attempt; each later wait doubles, up to [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, fails in a way retrying cannot fix, or `timeout` has passed
/// since the first attempt; logs each failed attempt with its number, the wait before the next
/// one and the cause, on one line. A `timeout` of zero makes one attempt.
pub async fn retry_until_reachable<T, Attempt>(
    timeout: Duration,
    mut attempt: impl FnMut() -> Attempt,
) -> anyhow::Result<T>
where
    Attempt: Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut backoff = Backoff::default();
    let mut attempts: u32 = 0;
    loop {
        attempts += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        if !retrying_may_help(&error) {
            return Err(error.context("preparing the database failed in a way retrying cannot fix"));
        }
        let remaining = timeout.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            return Err(error.context(format!(
                "PostgreSQL could not be reached within DATABASE_CONNECT_TIMEOUT_SECONDS ({} s, \
                 {attempts} attempts)",
                timeout.as_secs()
            )));
        }
        let delay = backoff.next_delay().min(remaining);
        tracing::warn!(
            attempt = attempts,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            cause = format!("{error:#}"),
            "PostgreSQL is not reachable yet; retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

/// Capped exponential backoff with "equal jitter": each wait is half the current step plus a
/// random part of the other half, so waits grow but never fall in step across replicas.
#[derive(Debug)]
struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            step: FIRST_RETRY_DELAY,
        }
    }
}

impl Backoff {
    fn next_delay(&mut self) -> Duration {
        let half = self.step / 2;
        let jitter = half.mul_f64(fastrand::f64());
        self.step = (self.step * 2).min(MAX_RETRY_DELAY);
        half + jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_cap_with_jitter_inside_each_step() {
        let mut backoff = Backoff::default();
        let mut step = FIRST_RETRY_DELAY;
        for _ in 0..20 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
            step = (step * 2).min(MAX_RETRY_DELAY);
        }
        assert_eq!(backoff.step, MAX_RETRY_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn unreachable_databases_are_retried_until_the_timeout() {
        let mut attempts = 0;
        let started = tokio::time::Instant::now();
        let error = retry_until_reachable::<(), _>(Duration::from_secs(10), || {
            attempts += 1;
            async {
                Err(anyhow::Error::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                )))
            }
        })
        .await
        .unwrap_err();

        assert!(attempts > 3, "{attempts}");
        assert!(started.elapsed() >= Duration::from_secs(10));
        let message = format!("{error:#}");
        assert!(
            message.contains("DATABASE_CONNECT_TIMEOUT_SECONDS (10 s"),
            "{message}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_retrying_cannot_fix_end_the_wait_at_once() {
        let mut attempts = 0;
        let error = retry_until_reachable::<(), _>(Duration::from_secs(60), || {
            attempts += 1;
            async { Err(anyhow::anyhow!("password authentication failed")) }
        })
        .await
        .unwrap_err();

        assert_eq!(attempts, 1);
        assert!(
            format!("{error:#}").contains("retrying cannot fix"),
            "{error:#}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_timeout_makes_one_attempt() {
        let mut attempts = 0;
        let outcome = retry_until_reachable::<(), _>(Duration::ZERO, || {
            attempts += 1;
            async {
                Err(anyhow::Error::new(std::io::Error::from(
                    std::io::ErrorKind::ConnectionRefused,
                )))
            }
        })
        .await;

        assert!(outcome.is_err());
        assert_eq!(attempts, 1);
    }
}
