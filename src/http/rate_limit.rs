//! The per-client rate limit on tracking (`SQUIRREL_TRACK_RATE_LIMIT`): a keyed GCRA limiter from
//! `governor`, one key per client address as `client_ip` resolves it (IPv6 clients by their /64,
//! since one host is routinely handed a whole /64 and could otherwise rotate through it).
//!
//! Memory stays bounded by the clients of the recent past: keys whose state has returned to "fresh"
//! are swept every [`SWEEP_EVERY`] by the request that finds the sweep due, so no task is needed.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimit;

/// How often idle clients are dropped from the limiter.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

pub struct TrackLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    started: Instant,
    /// Seconds after `started` of the last sweep.
    last_sweep: AtomicU64,
}

impl TrackLimiter {
    pub fn new(limit: RateLimit) -> TrackLimiter {
        // `requests` per `period` with bursts of `requests`: one request's allowance comes back every
        // period / requests (at least a nanosecond, which `Quota` needs to be non-zero).
        let replenish = (limit.period / limit.requests.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(replenish).expect("the period is at least 1 ns").allow_burst(limit.requests);
        TrackLimiter { limiter: RateLimiter::dashmap(quota), started: Instant::now(), last_sweep: AtomicU64::new(0) }
    }

    /// `Ok` when `client` may send one more hit now; otherwise how long until it may.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        self.sweep_if_due();
        self.limiter.check_key(&key(client)).map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Clients the limiter currently remembers.
    pub fn tracked_clients(&self) -> usize {
        self.limiter.len()
    }

    /// Forgets every client whose allowance is full again.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn sweep_if_due(&self) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_sweep.load(Ordering::Relaxed);
        // One request wins the exchange and sweeps; the others go on at once.
        if now >= last + SWEEP_EVERY.as_secs()
            && self.last_sweep.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.sweep();
        }
    }
}

/// The limiter's key: the address itself, or an IPv6 address's /64 network.
fn key(client: IpAddr) -> IpAddr {
    match client.to_canonical() {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(spec: &str) -> TrackLimiter {
        TrackLimiter::new(RateLimit::parse(spec).unwrap())
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_while_others_go_on() {
        let limiter = limiter("3/min");
        let alice: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(alice).is_ok());
        }
        let wait = limiter.check(alice).unwrap_err();
        assert!(wait > Duration::from_secs(15) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok(), "another client has its own allowance");
    }

    #[test]
    fn ipv6_clients_share_their_64() {
        let limiter = limiter("1/hour");
        assert!(limiter.check("2001:db8:1:2::1".parse().unwrap()).is_ok());
        assert!(limiter.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err(), "same /64");
        assert!(limiter.check("2001:db8:1:3::1".parse().unwrap()).is_ok(), "another /64");
        assert!(limiter.check("::ffff:192.0.2.7".parse().unwrap()).is_ok());
        assert!(limiter.check("192.0.2.7".parse().unwrap()).is_err(), "an IPv4-mapped address is its IPv4");
    }

    #[test]
    fn sweeping_forgets_clients_whose_allowance_is_full_again() {
        let limiter = limiter("1000/sec");
        for i in 0..50u8 {
            assert!(limiter.check(IpAddr::from([198, 51, 100, i])).is_ok());
        }
        assert_eq!(limiter.tracked_clients(), 50);
        std::thread::sleep(Duration::from_millis(5));
        limiter.sweep();
        assert_eq!(limiter.tracked_clients(), 0);
    }
}
