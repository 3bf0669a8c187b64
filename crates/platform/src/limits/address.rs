//! The client's address, as the rate limits count it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::request::Parts;

/// The address a request came from: the connection's peer, or, behind a reverse proxy named
/// by `limits.client_address_header`, the last address that proxy wrote into that header.
/// IPv6 addresses count per /64 (one subscriber's usual allocation: any address in it is
/// theirs to use); IPv4-mapped IPv6 addresses count as the IPv4 address. `None` when the
/// server does not know the peer (a router driven without a listener). Handlers take it as
/// an extractor (see `crate::extract`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl ClientAddress {
    /// The address of the request in `parts`, by the proxy header `forwarded_header` when set.
    pub fn of(parts: &Parts, forwarded_header: Option<&str>) -> Self {
        let forwarded = forwarded_header.and_then(|name| forwarded_address(parts, name));
        let peer = || {
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip())
        };
        Self(forwarded.or_else(peer).map(counted_as))
    }
}

/// The last address in the last `name` header: the one the trusted proxy appended (those
/// before it are whatever the client claimed).
fn forwarded_address(parts: &Parts, name: &str) -> Option<IpAddr> {
    let value = parts
        .headers
        .get_all(name)
        .iter()
        .next_back()?
        .to_str()
        .ok()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

/// The address as counted: IPv4 as it is, IPv6 as its /64.
pub fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(counted_as(a), counted_as(b));
        assert_ne!(counted_as(a), counted_as(other));
        assert_eq!(counted_as(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(counted_as(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(counted_as(v4), v4);
    }

    #[test]
    fn the_proxy_s_own_entry_counts() {
        let request = axum::http::Request::builder()
            .header("x-forwarded-for", "6.6.6.6")
            .header("x-forwarded-for", "10.0.0.1, 192.0.2.9")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        assert_eq!(
            forwarded_address(&parts, "x-forwarded-for"),
            Some("192.0.2.9".parse().unwrap())
        );
        assert_eq!(forwarded_address(&parts, "x-real-ip"), None);
    }
}
