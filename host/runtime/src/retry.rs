//! Whether and when a failed attempt runs again.

use std::time::Duration;

use cloacina_contract::manifest::{AttemptFailure, Backoff, RetryPolicy};
use cloacina_loader::TaskFailure;

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    RetryIn(Duration),
    GiveUp,
}

/// The decision for attempt `attempt` (from 1) that failed with `failure`.
pub fn after_failure(policy: &RetryPolicy, attempt: u32, failure: &TaskFailure) -> AfterFailure {
    let failure = match failure {
        TaskFailure::Retryable(_) => AttemptFailure::Retryable,
        TaskFailure::TimedOut(_) => AttemptFailure::TimedOut,
        TaskFailure::Fatal(_) | TaskFailure::Cancelled | TaskFailure::InvalidOutput(_) => {
            AttemptFailure::Final
        }
    };
    if policy.retries(attempt, failure) {
        AfterFailure::RetryIn(delay(policy, attempt))
    } else {
        AfterFailure::GiveUp
    }
}

/// The delay before attempt `attempt + 1`: `delay_ms` times 1 (fixed),
/// `attempt` (linear) or 2^(attempt-1) (exponential), capped by
/// `max_delay_ms`; with jitter, a uniform draw between zero and that.
pub fn delay(policy: &RetryPolicy, attempt: u32) -> Duration {
    let base = policy.delay_ms;
    let grown = match policy.backoff {
        Backoff::Fixed => base,
        Backoff::Linear => base.saturating_mul(u64::from(attempt.max(1))),
        Backoff::Exponential => base.saturating_mul(
            1u64.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u64::MAX),
        ),
    };
    let capped = policy.max_delay_ms.map_or(grown, |max| grown.min(max));
    let millis = if policy.jitter {
        random_below(capped + 1)
    } else {
        capped
    };
    Duration::from_millis(millis)
}

fn random_below(bound: u64) -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return bound / 2;
    }
    u64::from_le_bytes(bytes) % bound.max(1)
}

#[cfg(test)]
mod tests {
    use cloacina_contract::manifest::RetryCondition;

    use super::*;

    fn policy(backoff: Backoff) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            backoff,
            delay_ms: 100,
            max_delay_ms: Some(1_000),
            jitter: false,
            condition: RetryCondition::Retryable,
        }
    }

    #[test]
    fn delays_grow_by_the_backoff_and_stop_at_the_cap() {
        let ms = |b, a| delay(&policy(b), a).as_millis();
        assert_eq!((ms(Backoff::Fixed, 1), ms(Backoff::Fixed, 4)), (100, 100));
        assert_eq!((ms(Backoff::Linear, 1), ms(Backoff::Linear, 3)), (100, 300));
        assert_eq!(
            [1, 2, 3, 4, 5].map(|a| ms(Backoff::Exponential, a)),
            [100, 200, 400, 800, 1_000]
        );
        let jittered = RetryPolicy {
            jitter: true,
            ..policy(Backoff::Exponential)
        };
        assert!((0..50).all(|_| delay(&jittered, 3).as_millis() <= 400));
    }

    #[test]
    fn fatal_errors_and_spent_attempts_give_up() {
        let p = policy(Backoff::Fixed);
        let retryable = TaskFailure::Retryable("flaky".into());
        assert!(matches!(
            after_failure(&p, 1, &retryable),
            AfterFailure::RetryIn(_)
        ));
        assert_eq!(after_failure(&p, 5, &retryable), AfterFailure::GiveUp);
        assert_eq!(
            after_failure(&p, 1, &TaskFailure::Fatal("no".into())),
            AfterFailure::GiveUp
        );
        let timeouts_only = RetryPolicy {
            condition: RetryCondition::Timeout,
            ..p.clone()
        };
        assert_eq!(
            after_failure(&timeouts_only, 1, &retryable),
            AfterFailure::GiveUp
        );
        assert!(matches!(
            after_failure(&timeouts_only, 1, &TaskFailure::TimedOut(10)),
            AfterFailure::RetryIn(_)
        ));
    }
}
