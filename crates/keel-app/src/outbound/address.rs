//! Which addresses Keel may connect to: the public internet only.
//!
//! Pure functions, used both on literal hosts in URLs and on every address
//! a name resolves to. Addresses that embed an IPv4 address (IPv4-mapped,
//! 6to4, NAT64) are judged by the address they lead to, because that is
//! where the packets go.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, or `None` for a public address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    refusal(ip).is_none()
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let reason = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() || o[0] == 0 {
        "unspecified (\"this network\")"
    } else if ip.is_private() {
        "private (RFC 1918)"
    } else if ip.is_link_local() {
        // 169.254.169.254 is where cloud instances serve their credentials.
        "link-local (incl. cloud metadata)"
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        "shared address space (CGNAT 100.64.0.0/10)"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_documentation() {
        "documentation"
    } else if o[0] == 198 && (o[1] & 0xfe) == 18 {
        "benchmarking (198.18.0.0/15)"
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        "IETF protocol assignments (192.0.0.0/24)"
    } else if o[0] == 192 && o[1] == 88 && o[2] == 99 {
        "6to4 relay anycast (192.88.99.0/24)"
    } else if o[0] >= 240 {
        "reserved (240.0.0.0/4)"
    } else {
        return None;
    };
    Some(reason)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4).map(|_| "IPv4-mapped, of a refused IPv4 address");
    }
    let reason = if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[..6] == [0; 6] {
        // ::a.b.c.d, deprecated since 2006: nothing public uses it.
        "IPv4-compatible (deprecated)"
    } else if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        // ::ffff:0:a.b.c.d (SIIT) is translated to the embedded IPv4.
        return refusal_v4(embedded_v4(s[6], s[7])).map(|_| "IPv4-translated, of a refused IPv4 address");
    } else if ip.is_multicast() {
        "multicast"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique local (fc00::/7)"
    } else if (s[0] & 0xffc0) == 0xfe80 {
        "link-local (fe80::/10)"
    } else if (s[0] & 0xffc0) == 0xfec0 {
        "site-local (fec0::/10, deprecated)"
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        // NAT64 (64:ff9b::/96): the translator connects to the embedded IPv4.
        return refusal_v4(embedded_v4(s[6], s[7])).map(|_| "NAT64, of a refused IPv4 address");
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
        "local-use NAT64 (64:ff9b:1::/48)"
    } else if s[0] == 0x2002 {
        // 6to4 (2002::/16): the embedded IPv4 is the tunnel's end.
        return refusal_v4(embedded_v4(s[1], s[2])).map(|_| "6to4, of a refused IPv4 address");
    } else if s[0] == 0x2001 && s[1] == 0 {
        // The client's IPv4 is embedded obfuscated; the relay path cannot be judged.
        "Teredo (2001::/32)"
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x3fff && s[1] < 0x1000) {
        "documentation"
    } else if s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0 {
        "benchmarking (2001:2::/48)"
    } else if s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0000 {
        "IETF protocol assignments (2001::/23)"
    } else if s[0] == 0x0100 && s[1..4] == [0; 3] {
        "discard-only (100::/64)"
    } else {
        return None;
    };
    Some(reason)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from(((hi as u32) << 16) | lo as u32)
}

/// Whether a name is a loopback name (RFC 6761: `localhost` and anything
/// under it), with or without the trailing dot.
pub fn is_loopback_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost" || h.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s} parses"))
    }

    #[test]
    fn refused_ipv4() {
        for a in [
            "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1",
            "169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.255", "255.255.255.255", "224.0.0.1", "239.1.2.3",
            "192.0.2.1", "198.51.100.7", "203.0.113.9", "198.18.0.1", "198.19.255.255", "192.0.0.8", "192.88.99.1",
            "240.0.0.1", "250.1.2.3",
        ] {
            assert!(!is_public(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn refused_ipv6() {
        for a in [
            "::1", "::", "::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1",
            "::8.8.8.8", "fc00::1", "fd00::1", "fdff:ffff::1", "fe80::1", "febf::1", "fec0::1", "feff::1", "ff02::1",
            "ff0e::1", "2002:7f00:1::", "2002:a00:1::1", "2002:a9fe:a9fe::", "64:ff9b::7f00:1", "64:ff9b::a00:1",
            "64:ff9b::169.254.169.254", "64:ff9b:1::1", "2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:db8::1",
            "3fff::1", "3fff:fff::1", "2001:2::1", "::ffff:0:7f00:1", "2001:10::1", "100::1",
        ] {
            assert!(!is_public(ip(a)), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "93.184.216.34", "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.1", "172.32.0.1", "169.255.0.1",
            "192.0.3.1", "198.20.0.1", "223.255.255.254", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "2001:4860:4860::8888",
        ] {
            assert!(is_public(ip(a)), "{a} is public");
        }
    }

    #[test]
    fn reasons_name_the_range() {
        assert_eq!(refusal(ip("169.254.169.254")), Some("link-local (incl. cloud metadata)"));
        assert_eq!(refusal(ip("2002:7f00:1::")), Some("6to4, of a refused IPv4 address"));
        assert_eq!(refusal(ip("64:ff9b::7f00:1")), Some("NAT64, of a refused IPv4 address"));
        assert_eq!(refusal(ip("8.8.8.8")), None);
    }

    #[test]
    fn loopback_names() {
        for n in ["localhost", "LOCALHOST.", "localhost.", "foo.localhost", "a.b.localhost."] {
            assert!(is_loopback_name(n), "{n}");
        }
        for n in ["localhost.example.com", "mylocalhost", "example.com"] {
            assert!(!is_loopback_name(n), "{n}");
        }
    }
}
