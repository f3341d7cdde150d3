//! Who may be fetched: the address classifier of SPEC §4.
//!
//! Pure functions only. The classifier is applied by the connector to every address it would
//! dial (never only to the URL string: go-camo's bypass history is the lesson), so a name that
//! resolves to a private address, an IP literal, and a redirect hop all meet the same check.

use ipnet::IpNet;
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    sync::LazyLock,
};

/// Ranges no proxy should reach by default, with the name logged when one is hit.
static DENIED: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("0.0.0.0/8", "this-network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "cgnat"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "ietf-assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4-relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved-or-broadcast"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "nat64-local-use"),
        ("100::/64", "discard-only"),
        ("2001:2::/48", "benchmarking"),
        ("2001:10::/28", "orchid"),
        ("2001:20::/28", "orchid-v2"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    ]
    .into_iter()
    .map(|(net, why)| (net.parse().expect("static CIDR"), why))
    .collect()
});

/// IPv4 addresses that an IPv6 address carries and that a router would deliver to:
/// IPv4-mapped and -translated, IPv4-compatible, NAT64 well-known prefix, 6to4, and both ends
/// of Teredo. `::ffff:127.0.0.1` reaches loopback on a dual-stack host, so it must be judged
/// as `127.0.0.1`.
fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => vec![v4(hi, lo)], // mapped
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => vec![v4(hi, lo)], // translated (SIIT)
        [0, 0, 0, 0, 0, 0, hi, lo] => vec![v4(hi, lo)],      // compatible (also :: and ::1)
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => vec![v4(hi, lo)], // NAT64 well-known prefix
        [0x2002, hi, lo, ..] => vec![v4(hi, lo)],            // 6to4
        [0x2001, 0, shi, slo, _, _, chi, clo] => vec![v4(shi, slo), v4(!chi, !clo)], // Teredo
        _ => Vec::new(),
    }
}

/// The name of the denied range `ip` falls in, or `None` for a public address. Ignores policy
/// exemptions; see [`AddressPolicy::check`].
fn denied_range(ip: IpAddr) -> Option<&'static str> {
    DENIED
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|&(_, why)| why)
}

/// `security.allow_private` and `security.allow_networks` applied to the classifier.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub allow_private: bool,
    pub allow_networks: Vec<IpNet>,
}

impl AddressPolicy {
    /// `Ok` if imgrelay may connect to `ip`; otherwise the reason (for the log only).
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        if self.allow_private || self.allow_networks.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if let IpAddr::V6(v6) = ip {
            for v4 in embedded_v4(v6) {
                self.check(IpAddr::V4(v4))?;
            }
        }
        match denied_range(ip) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deny(ip: &str) -> bool {
        AddressPolicy::default().check(ip.parse().unwrap()).is_err()
    }

    #[test]
    fn every_denied_range_is_denied() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "64:ff9b:1::a00:1",
        ] {
            assert!(deny(ip), "{ip} should be denied");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450:4001::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!deny(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn ipv6_forms_of_denied_ipv4_are_denied() {
        for ip in [
            "::ffff:127.0.0.1", // IPv4-mapped
            "::ffff:7f00:1",    // the same, hex spelling
            "::ffff:10.0.0.1",
            "::ffff:0:169.254.169.254", // IPv4-translated
            "::127.0.0.1",              // IPv4-compatible
            "::10.1.2.3",
            "64:ff9b::127.0.0.1",           // NAT64 well-known prefix
            "64:ff9b::a9fe:a9fe",           // NAT64 of 169.254.169.254
            "2002:7f00:1::1",               // 6to4 of 127.0.0.1
            "2002:c0a8:101::",              // 6to4 of 192.168.1.1
            "2001:0:7f00:1::",              // Teredo with a loopback server
            "2001:0:808:808:0:0:80ff:fffe", // Teredo whose client is !0x80fffffe = 127.0.0.1
        ] {
            assert!(deny(ip), "{ip} should be denied");
        }
    }

    #[test]
    fn odd_ipv4_spellings_classify_as_what_they_are() {
        // The url crate normalises these WHATWG spellings before anything dials them.
        for spelling in [
            "2130706433",
            "0x7f.1",
            "017700000001",
            "127.1",
            "0177.0.0.1",
            "0x7f000001",
        ] {
            let url = url::Url::parse(&format!("http://{spelling}/a.jpg")).unwrap();
            let Some(url::Host::Ipv4(v4)) = url.host() else {
                panic!("{spelling} did not parse as IPv4");
            };
            assert_eq!(v4, Ipv4Addr::LOCALHOST, "{spelling}");
            assert!(deny(&v4.to_string()), "{spelling}");
        }
    }

    #[test]
    fn allow_networks_exempt_and_allow_private_disables() {
        let p = AddressPolicy {
            allow_private: false,
            allow_networks: vec!["127.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()],
        };
        assert!(p.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("fd00::5".parse().unwrap()).is_ok());
        assert!(
            p.check("::1".parse().unwrap()).is_err(),
            "::1 is not in 127.0.0.0/8"
        );
        assert!(p.check("10.0.0.1".parse().unwrap()).is_err());
        assert!(p.check("fc00::5".parse().unwrap()).is_err());
        let narrow = AddressPolicy {
            allow_private: false,
            allow_networks: vec!["127.0.0.3/32".parse().unwrap()],
        };
        assert!(narrow.check("127.0.0.3".parse().unwrap()).is_ok());
        assert!(narrow.check("127.0.0.1".parse().unwrap()).is_err());
        let open = AddressPolicy {
            allow_private: true,
            allow_networks: vec![],
        };
        assert!(open.check("10.0.0.1".parse().unwrap()).is_ok());
    }
}
