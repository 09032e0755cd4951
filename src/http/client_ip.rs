//! Who the client is on the network: the address the connection comes from, unless that is a
//! trusted reverse proxy (`TRUSTED_PROXIES`), in which case the proxies' forwarding header says.
//!
//! Anyone can send a forwarding header, so it is read only when a trusted proxy sends the
//! request, and only as far as trusted proxies wrote it: from the right, past every trusted
//! address, to the first one that is not trusted. Addresses a client put further left are
//! never read, so forging the header gains nothing.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, HeaderName, header};

use crate::config::{ForwardedHeader, ProxyConfig};
use crate::http::HttpState;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The client's address, as far as it can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientIp(pub IpAddr);

impl FromRequestParts<HttpState> for ClientIp {
    type Rejection = Infallible;

    /// Requests that reach the router without a connection address (called in-process rather
    /// than served with `into_make_service_with_connect_info`) all count as one client, the
    /// unspecified address.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &HttpState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(of_request(
            &parts.extensions,
            &parts.headers,
            &state.app.proxies,
        )))
    }
}

/// The client of a request with `extensions` and `headers`, as [`ClientIp`] tells it.
pub(crate) fn of_request(
    extensions: &Extensions,
    headers: &HeaderMap,
    proxies: &ProxyConfig,
) -> IpAddr {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| {
            peer.ip()
        });
    client_ip(peer, headers, proxies)
}

/// The client behind a request the connection `peer` delivered with `headers`.
fn client_ip(peer: IpAddr, headers: &HeaderMap, proxies: &ProxyConfig) -> IpAddr {
    let mut client = peer.to_canonical();
    if !proxies.trusts(client) {
        return client;
    }
    for hop in hops_right_to_left(headers, proxies.header) {
        // What a trusted proxy wrote and cannot be read leaves the proxy as the client.
        let Some(address) = hop else {
            return client;
        };
        client = address;
        if !proxies.trusts(address) {
            return client;
        }
    }
    client
}

/// The addresses in the forwarding header, nearest proxy first; `None` for an entry that is not
/// an address (`unknown`, an obfuscated name, garbage).
fn hops_right_to_left(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let (name, address_in): (HeaderName, fn(&str) -> Option<IpAddr>) = match header {
        ForwardedHeader::XForwardedFor => (X_FORWARDED_FOR, node_address),
        ForwardedHeader::Forwarded => (header::FORWARDED, forwarded_for),
    };
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    // Several header lines count as one comma-separated list, in order (RFC 9110 §5.3).
    for line in headers.get_all(name) {
        match line.to_str() {
            Ok(line) => hops.extend(line.split(',').map(address_in)),
            Err(_) => hops.push(None),
        }
    }
    hops.reverse();
    hops
}

/// The `for=` address of one element of a `Forwarded` header (RFC 7239 §4).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let (_, node) = element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))?;
    node_address(node)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`), or quoted as `Forwarded` requires for the latter.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    let node = node
        .strip_prefix('"')
        .and_then(|quoted| quoted.strip_suffix('"'))
        .unwrap_or(node);
    let address = if let Ok(address) = node.parse::<IpAddr>() {
        address
    } else if let Some(bracketed) = node.strip_prefix('[') {
        let (address, _port) = bracketed.split_once(']')?;
        IpAddr::V6(address.parse::<Ipv6Addr>().ok()?)
    } else {
        let (address, _port) = node.split_once(':')?;
        IpAddr::V4(address.parse::<Ipv4Addr>().ok()?)
    };
    Some(address.to_canonical())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(trusted: &[&str], header: ForwardedHeader) -> ProxyConfig {
        ProxyConfig {
            trusted: trusted
                .iter()
                .map(|network| network.parse().unwrap())
                .collect(),
            header,
        }
    }

    fn headers(name: &'static str, lines: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(name, HeaderValue::from_static(line));
        }
        headers
    }

    const PROXY: &str = "10.0.0.5";

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let forged = headers("x-forwarded-for", &["198.51.100.7"]);

        assert_eq!(
            client_ip(address("203.0.113.9"), &forged, &proxies),
            address("203.0.113.9")
        );
        let nobody_trusted = ProxyConfig::default();
        assert_eq!(
            client_ip(address(PROXY), &forged, &nobody_trusted),
            address(PROXY)
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_address_is_the_client() {
        let proxies = proxies(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        let cases: &[(&[&'static str], &str)] = &[
            (&["198.51.100.7"], "198.51.100.7"),
            // The client forged the first entry; the proxy appended the real address.
            (&["1.2.3.4, 198.51.100.7"], "198.51.100.7"),
            (&["1.2.3.4, 198.51.100.7, 10.0.0.9"], "198.51.100.7"),
            (&["1.2.3.4", "198.51.100.7,10.0.0.9"], "198.51.100.7"),
            (&[" 198.51.100.7:4711 , 10.0.0.9 "], "198.51.100.7"),
            (&["2001:db8::7"], "2001:db8::7"),
            (&["[2001:db8::7]:4711"], "2001:db8::7"),
            (&["::ffff:198.51.100.7"], "198.51.100.7"),
            // Only trusted proxies: the farthest of them.
            (&["10.0.0.8, 10.0.0.9"], "10.0.0.8"),
            // No header: the proxy itself.
            (&[], PROXY),
            // Unreadable where the proxy wrote: the last proxy that wrote legibly.
            (&["198.51.100.7, unknown"], PROXY),
            (&["198.51.100.7, garbage, 10.0.0.9"], "10.0.0.9"),
        ];
        for (lines, client) in cases {
            let headers = headers("x-forwarded-for", lines);
            assert_eq!(
                client_ip(address(PROXY), &headers, &proxies),
                address(client),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn the_forwarded_header_is_read_when_configured() {
        let proxies = proxies(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let cases: &[(&[&'static str], &str)] = &[
            (&["for=198.51.100.7"], "198.51.100.7"),
            (
                &["for=1.2.3.4, For=\"198.51.100.7:4711\";proto=https;by=10.0.0.5"],
                "198.51.100.7",
            ),
            (&["for=\"[2001:db8::7]:4711\""], "2001:db8::7"),
            (&["for=198.51.100.7", "for=10.0.0.9"], "198.51.100.7"),
            (&["for=198.51.100.7, for=_hidden"], PROXY),
            (&["proto=https"], PROXY),
        ];
        for (lines, client) in cases {
            let headers = headers("forwarded", lines);
            assert_eq!(
                client_ip(address(PROXY), &headers, &proxies),
                address(client),
                "{lines:?}"
            );
        }
        // The header not configured is ignored.
        let other = headers("x-forwarded-for", &["198.51.100.7"]);
        assert_eq!(client_ip(address(PROXY), &other, &proxies), address(PROXY));
    }
}
