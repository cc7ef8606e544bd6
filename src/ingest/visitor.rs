//! Visitor identity without storing who the visitor is.
//!
//! A visitor id is the first 8 bytes of BLAKE3 keyed with the day's random salt over
//! (site, client IP, User-Agent). The salt changes at 00:00 UTC and the database keeps only today's and
//! yesterday's, so nobody (we included) can map an id back to an IP once a day has passed, and ids of
//! different days or sites cannot be joined. During the first [`SESSION_TIMEOUT_MS`] of a day the id
//! under yesterday's salt is computed too (`visitor_id_prev`), so a session can continue across
//! midnight. The IP and the UA string are never stored.

use std::net::IpAddr;
use std::sync::RwLock;

use crate::store::{Store, StoreError};

pub const DAY_MS: i64 = 86_400_000;
/// Inactivity that ends a session.
pub const SESSION_TIMEOUT_MS: i64 = 30 * 60 * 1000;

#[derive(Clone, Copy)]
struct DaySalts {
    day: i64,
    today: [u8; 32],
    yesterday: Option<[u8; 32]>,
}

/// Hands out visitor ids, caching the current day's salts in memory.
pub struct Visitors {
    store: Store,
    /// `None` until the first request; replaced when the UTC day changes.
    salts: RwLock<Option<DaySalts>>,
}

impl Visitors {
    pub fn new(store: Store) -> Visitors {
        Visitors { store, salts: RwLock::new(None) }
    }

    /// `(visitor_id, visitor_id_prev)` for a hit at `at_ms`.
    pub async fn ids(
        &self,
        at_ms: i64,
        site_id: i64,
        ip: IpAddr,
        user_agent: &str,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let day = at_ms.div_euclid(DAY_MS);
        let salts = match self.cached(day) {
            Some(salts) => salts,
            // Once a day: boxed, so the future every request carries stays small.
            None => Box::pin(self.load(day)).await?,
        };
        let id = visitor_id(&salts.today, site_id, ip, user_agent);
        let prev = match salts.yesterday {
            Some(key) if at_ms - day * DAY_MS < SESSION_TIMEOUT_MS => Some(visitor_id(&key, site_id, ip, user_agent)),
            _ => None,
        };
        Ok((id, prev))
    }

    fn cached(&self, day: i64) -> Option<DaySalts> {
        let guard = self.salts.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.filter(|s| s.day == day)
    }

    async fn load(&self, day: i64) -> Result<DaySalts, StoreError> {
        // Several requests may load at once at midnight; the database makes them agree on one salt.
        let today = self.store.visitor_salt(day).await?;
        let yesterday = self.store.existing_visitor_salt(day - 1).await?;
        let salts = DaySalts { day, today, yesterday };
        let mut guard = self.salts.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none_or(|current| current.day <= day) {
            *guard = Some(salts);
        }
        Ok(salts)
    }
}

fn visitor_id(key: &[u8; 32], site_id: i64, ip: IpAddr, user_agent: &str) -> i64 {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&site_id.to_le_bytes());
    match ip.to_canonical() {
        IpAddr::V4(v4) => hasher.update(&v4.octets()),
        IpAddr::V6(v6) => hasher.update(&v6.octets()),
    };
    hasher.update(&[0]);
    hasher.update(user_agent.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    i64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_salt_site_ip_and_agent() {
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let base = visitor_id(&[1; 32], 1, ip, "UA");
        assert_eq!(base, visitor_id(&[1; 32], 1, ip, "UA"));
        assert_ne!(base, visitor_id(&[2; 32], 1, ip, "UA"));
        assert_ne!(base, visitor_id(&[1; 32], 2, ip, "UA"));
        assert_ne!(base, visitor_id(&[1; 32], 1, "203.0.113.10".parse().unwrap(), "UA"));
        assert_ne!(base, visitor_id(&[1; 32], 1, ip, "UA2"));
        assert_eq!(base, visitor_id(&[1; 32], 1, "::ffff:203.0.113.9".parse().unwrap(), "UA"));
    }
}
