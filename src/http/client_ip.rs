//! The client's address: the TCP peer, or what a trusted proxy says in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is read right to left and the first address that is not itself a trusted proxy
//! wins; entries further left were written by the client and can be forged. With no trusted proxies
//! configured the header is ignored entirely (the original believed its first entry from anyone).

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, HeaderName};

use crate::config::TrustedProxies;

/// A ready-made name: looking the header up by `&str` parses and lower-cases it on every request.
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let peer_ip = peer.ip().to_canonical();
    if trusted.is_empty() || !trusted.contains(peer_ip) {
        return peer_ip;
    }
    let mut client = peer_ip;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            return client;
        };
        for entry in value.rsplit(',') {
            let Some(ip) = parse_entry(entry) else {
                return client;
            };
            client = ip;
            if !trusted.contains(ip) {
                return ip;
            }
        }
    }
    client
}

/// An XFF entry: a bare IP, `IP:port`, or `[IPv6]:port`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry.parse::<IpAddr>().or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip())).ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in xff {
            map.append("x-forwarded-for", v.parse().unwrap());
        }
        map
    }

    const PEER: &str = "10.0.0.5:4000";

    #[test]
    fn header_is_ignored_without_trusted_proxies() {
        let ip = client_ip(PEER.parse().unwrap(), &headers(&["1.2.3.4"]), &TrustedProxies::default());
        assert_eq!(ip, "10.0.0.5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn header_is_ignored_from_an_untrusted_peer() {
        let trusted = TrustedProxies::parse("10.0.0.9").unwrap();
        let ip = client_ip(PEER.parse().unwrap(), &headers(&["1.2.3.4"]), &trusted);
        assert_eq!(ip, "10.0.0.5".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let ip = client_ip(PEER.parse().unwrap(), &headers(&["6.6.6.6, 1.2.3.4, 10.0.0.7"]), &trusted);
        assert_eq!(ip, "1.2.3.4".parse::<IpAddr>().unwrap());
        let ip = client_ip(PEER.parse().unwrap(), &headers(&["6.6.6.6", "[2001:db8::1]:443"]), &trusted);
        assert_eq!(ip, "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_good_address() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let ip = client_ip(PEER.parse().unwrap(), &headers(&["1.2.3.4, garbage, 10.0.0.8"]), &trusted);
        assert_eq!(ip, "10.0.0.8".parse::<IpAddr>().unwrap());
    }
}
