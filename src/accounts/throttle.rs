//! Login throttling: failed attempts counted per client IP and per account, in memory.
//!
//! Separate from anything else (tracking, `/up` and the rest of the API are never throttled here).
//! Fixed windows: the first failure opens a window of `window`; once `limit` failures fall inside it,
//! attempts are refused until it closes, and the caller gets the seconds left for `Retry-After`. A
//! successful login clears the account's counter (not the IP's, so one valid account can't be used
//! to keep guessing others from the same address).
//!
//! In-process state: with several `serve` processes behind a balancer each counts on its own, which
//! at worst multiplies the allowance by the process count. The map is swept when it grows, so a
//! flood of distinct keys costs bounded memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept.
const SWEEP_AT: usize = 10_000;

#[derive(Debug)]
pub struct Throttle {
    limit: u32,
    window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    opened: Instant,
}

impl Throttle {
    /// `limit` 0 disables the throttle.
    pub fn new(limit: u32, window: Duration) -> Throttle {
        Throttle { limit, window, entries: Mutex::new(HashMap::new()) }
    }

    /// `Err(retry_after)` while `key` is blocked.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match entries.get(key) {
            Some(entry) if entry.failures >= self.limit => {
                let closes = entry.opened + self.window;
                if closes > now { Err(closes - now) } else { Ok(()) }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, key: &str, now: Instant) {
        if self.limit == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= SWEEP_AT {
            let window = self.window;
            entries.retain(|_, entry| entry.opened + window > now);
        }
        let entry = entries.entry(key.to_string()).or_insert(Entry { failures: 0, opened: now });
        if entry.opened + self.window <= now {
            *entry = Entry { failures: 0, opened: now };
        }
        entry.failures += 1;
    }

    pub fn clear(&self, key: &str) {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(key);
    }
}

/// The two login throttles.
#[derive(Debug)]
pub struct LoginThrottle {
    pub per_ip: Throttle,
    pub per_account: Throttle,
}

impl LoginThrottle {
    pub fn new(per_ip: u32, per_account: u32, window: Duration) -> LoginThrottle {
        LoginThrottle { per_ip: Throttle::new(per_ip, window), per_account: Throttle::new(per_account, window) }
    }

    /// `Err(retry_after)` when either the IP or the account is blocked (the longer wait wins).
    pub fn check(&self, ip: &str, account: &str, now: Instant) -> Result<(), Duration> {
        match (self.per_ip.check(ip, now), self.per_account.check(account, now)) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(a), _) | (_, Err(a)) => Err(a),
        }
    }

    pub fn record_failure(&self, ip: &str, account: &str, now: Instant) {
        self.per_ip.record_failure(ip, now);
        self.per_account.record_failure(account, now);
    }

    pub fn record_success(&self, account: &str) {
        self.per_account.clear(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_until_the_window_closes() {
        let throttle = Throttle::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(throttle.check("k", t0).is_ok());
            throttle.record_failure("k", t0);
        }
        let wait = throttle.check("k", t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(throttle.check("other", t0).is_ok());
        assert!(throttle.check("k", t0 + Duration::from_secs(60)).is_ok());
        throttle.record_failure("k", t0 + Duration::from_secs(61));
        assert!(throttle.check("k", t0 + Duration::from_secs(61)).is_ok(), "a new window starts at one failure");
    }

    #[test]
    fn success_clears_the_account_but_not_the_ip() {
        let login = LoginThrottle::new(2, 2, Duration::from_secs(60));
        let t0 = Instant::now();
        login.record_failure("1.2.3.4", "a@x", t0);
        login.record_failure("1.2.3.4", "a@x", t0);
        assert!(login.check("5.6.7.8", "a@x", t0).is_err(), "account blocked from any IP");
        assert!(login.check("1.2.3.4", "b@x", t0).is_err(), "IP blocked for any account");
        login.record_success("a@x");
        assert!(login.check("5.6.7.8", "a@x", t0).is_ok());
        assert!(login.check("1.2.3.4", "a@x", t0).is_err());
    }
}
