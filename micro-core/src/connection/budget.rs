//! The cancel budget: how a server tells a client that cancels calls as its workload (the
//! HTTP/2 "rapid reset" attack) from one that cancels some of its calls.
//!
//! Every call a client cancels while its handler still runs costs a token; every call the
//! server finishes earns one back, and tokens also come back with time. A client that runs out
//! is disconnected. Cancelling is never a way around the concurrency limit (a cancelled handler
//! counts as running until it has been dropped), so the budget bounds the work spent on calls
//! that produce nothing, not memory.

use std::time::Instant;

/// A token bucket of cancellations.
#[derive(Debug)]
pub(crate) struct CancelBudget {
    tokens: f64,
    /// Most tokens held at once, and tokens regained per second.
    size: f64,
    refilled: Instant,
}

impl CancelBudget {
    /// A full budget of `size` cancellations, refilled at `size` per second.
    pub(crate) fn new(size: u32, now: Instant) -> CancelBudget {
        CancelBudget {
            tokens: f64::from(size),
            size: f64::from(size),
            refilled: now,
        }
    }

    /// Spends one token on a cancelled call; `false` once the budget is exhausted.
    pub(crate) fn spend(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.tokens = (self.tokens + elapsed * self.size).min(self.size);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Gives a token back for a call that ran to its end.
    pub(crate) fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.size);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_up_to_the_size_is_allowed_then_refused() {
        let now = Instant::now();
        let mut budget = CancelBudget::new(100, now);
        assert!((0..100).all(|_| budget.spend(now)));
        assert!(!budget.spend(now));
    }

    #[test]
    fn finished_calls_pay_for_cancelled_ones() {
        let now = Instant::now();
        let mut budget = CancelBudget::new(10, now);
        // One call in two cancelled, forever, at no time cost: never exhausted.
        for _ in 0..100_000 {
            assert!(budget.spend(now));
            budget.refund();
        }
    }

    #[test]
    fn time_refills_up_to_the_size_only() {
        let start = Instant::now();
        let mut budget = CancelBudget::new(10, start);
        assert!((0..10).all(|_| budget.spend(start)));
        assert!(!budget.spend(start));
        // A tenth of a second later: one token back.
        let later = start + Duration::from_millis(100);
        assert!(budget.spend(later));
        assert!(!budget.spend(later));
        // An hour later: full again, but no more than full.
        let much_later = later + Duration::from_secs(3600);
        assert!((0..10).all(|_| budget.spend(much_later)));
        assert!(!budget.spend(much_later));
        budget.refund();
        budget.refund();
        assert!(budget.spend(much_later));
    }
}
