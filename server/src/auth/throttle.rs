//! Throttling: failed authentications per client address, and requests
//! per key.
//!
//! - Every request with a key the server does not know counts against its
//!   client address (`--auth-failures-per-minute`, a burst of as many).
//!   Past that, the address is refused with 429 and `Retry-After` until
//!   its budget refills, before its key is even looked at: guessing keys
//!   from one address is slowed to that rate, and a right guess made while
//!   refused is not told apart from a wrong one.
//! - With `--key-requests-per-second`, each key may make that many
//!   requests a second (a burst of as many); more get 429 and
//!   `Retry-After`. Off by default.
//!
//! The rates are GCRA limiters (the `governor` crate), keyed by address and
//! by key id; their state is a few bytes per key, pruned as it grows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Addresses or keys remembered before stale ones are pruned.
const PRUNE_ABOVE: usize = 10_000;

/// The server's throttles.
pub struct Throttle {
    failures: DefaultKeyedRateLimiter<IpAddr>,
    /// Addresses refused until the instant given, after spending their
    /// budget of failures.
    refused: Mutex<HashMap<IpAddr, Instant>>,
    per_key: Option<DefaultKeyedRateLimiter<uuid::Uuid>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("per_key", &self.per_key.is_some())
            .finish_non_exhaustive()
    }
}

impl Throttle {
    pub fn new(
        auth_failures_per_minute: NonZeroU32,
        key_requests_per_second: Option<NonZeroU32>,
    ) -> Self {
        Throttle {
            failures: RateLimiter::keyed(Quota::per_minute(auth_failures_per_minute)),
            refused: Mutex::new(HashMap::new()),
            per_key: key_requests_per_second
                .map(|rate| RateLimiter::keyed(Quota::per_second(rate))),
            clock: DefaultClock::default(),
        }
    }

    /// 429 while `address` has spent its failures.
    pub fn check_address(&self, address: IpAddr) -> Result<(), ApiError> {
        let mut refused = self.lock_refused();
        match refused.get(&address) {
            Some(until) if *until > Instant::now() => {
                Err(too_many_failures(*until - Instant::now()))
            }
            Some(_) => {
                refused.remove(&address);
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Counts a failed authentication from `address`: the 401 to answer,
    /// or a 429 once the address has spent its budget.
    pub fn failed(&self, address: IpAddr, unauthorized: ApiError) -> ApiError {
        if self.failures.len() > PRUNE_ABOVE {
            self.failures.retain_recent();
        }
        match self.failures.check_key(&address) {
            Ok(()) => unauthorized,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let mut refused = self.lock_refused();
                if refused.len() > PRUNE_ABOVE {
                    let now = Instant::now();
                    refused.retain(|_, until| *until > now);
                }
                refused.insert(address, Instant::now() + wait);
                tracing::warn!(%address, retry_in = ?wait, "too many failed authentications; the address is refused for a while");
                too_many_failures(wait)
            }
        }
    }

    /// 429 when `key` is over its request rate.
    pub fn check_key(&self, key: uuid::Uuid) -> Result<(), ApiError> {
        let Some(per_key) = &self.per_key else {
            return Ok(());
        };
        if per_key.len() > PRUNE_ABOVE {
            per_key.retain_recent();
        }
        per_key.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            too_many(
                "rate_limited",
                "this key is over its request rate; slow down",
                wait,
            )
        })
    }

    fn lock_refused(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn too_many_failures(wait: Duration) -> ApiError {
    too_many(
        "too_many_failed_authentications",
        "too many failed authentications from this address; try again later",
        wait,
    )
}

/// 429, to be tried again after `wait`.
fn too_many(code: &'static str, message: &str, wait: Duration) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).retry_after(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> IpAddr {
        IpAddr::from([192, 0, 2, 1])
    }

    #[test]
    fn an_address_is_refused_after_its_budget_of_failures() {
        let throttle = Throttle::new(NonZeroU32::new(3).expect("nonzero"), None);
        for _ in 0..3 {
            assert!(throttle.check_address(address()).is_ok());
            let error = throttle.failed(address(), ApiError::unauthorized("no"));
            assert_eq!(error.status, StatusCode::UNAUTHORIZED);
        }
        let error = throttle.failed(address(), ApiError::unauthorized("no"));
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(error.retry_after.is_some_and(|s| (1..=60).contains(&s)));
        let refused = throttle.check_address(address()).expect_err("refused");
        assert_eq!(refused.code, "too_many_failed_authentications");
        // Another address is not concerned.
        assert!(throttle.check_address(IpAddr::from([192, 0, 2, 2])).is_ok());
    }

    #[test]
    fn a_key_over_its_rate_gets_429() {
        let throttle = Throttle::new(NonZeroU32::new(3).expect("nonzero"), NonZeroU32::new(2));
        let key = uuid::Uuid::new_v4();
        assert!(throttle.check_key(key).is_ok());
        assert!(throttle.check_key(key).is_ok());
        let error = throttle.check_key(key).expect_err("over");
        assert_eq!(error.code, "rate_limited");
        assert_eq!(error.retry_after, Some(1));
        assert!(throttle.check_key(uuid::Uuid::new_v4()).is_ok());
    }

    #[test]
    fn without_a_key_rate_keys_are_not_limited() {
        let throttle = Throttle::new(NonZeroU32::new(3).expect("nonzero"), None);
        let key = uuid::Uuid::new_v4();
        for _ in 0..1_000 {
            assert!(throttle.check_key(key).is_ok());
        }
    }
}
