//! The classifier on known blocks and, property-tested, on random addresses; CIDR
//! parsing on random text; the target check's rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn known_blocks() {
    use AddressClass::*;
    for (a, c) in [
        ("127.0.0.1", Loopback),
        ("127.255.0.9", Loopback),
        ("::1", Loopback),
        ("::ffff:127.0.0.1", Loopback),
        ("10.1.2.3", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("172.32.0.1", Global),
        ("192.168.1.1", Private),
        ("100.64.0.1", Private),
        ("100.127.255.255", Private),
        ("100.128.0.1", Global),
        ("fd00::1", Private),
        ("fc00::1", Private),
        ("169.254.169.254", LinkLocal),
        ("fe80::1", LinkLocal),
        ("0.0.0.0", Unspecified),
        ("::", Unspecified),
        ("224.0.0.1", Multicast),
        ("255.255.255.255", Multicast),
        ("ff02::1", Multicast),
        ("192.0.2.1", Reserved),
        ("2001:db8::1", Reserved),
        ("64:ff9b::a00:1", Private),
        ("64:ff9b::808:808", Global),
        ("2002:a00:1::", Reserved),
        ("8.8.8.8", Global),
        ("1.1.1.1", Global),
        ("2606:4700:4700::1111", Global),
        ("::ffff:8.8.8.8", Global),
    ] {
        assert_eq!(classify(ip(a)), c, "{a}");
    }
}

#[test]
fn cidrs_parse_and_contain() {
    let n: Cidr = "10.1.0.0/16".parse().unwrap();
    assert!(n.contains(ip("10.1.200.3")));
    assert!(n.contains(ip("::ffff:10.1.0.1")));
    assert!(!n.contains(ip("10.2.0.1")));
    let h: Cidr = "::1".parse().unwrap();
    assert_eq!(h.to_string(), "::1/128");
    assert!(h.contains(ip("::1")));
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    assert!("10.0.0.0/".parse::<Cidr>().is_err());
    assert!("10.0.0.0/+8".parse::<Cidr>().is_err());
    assert!("host/8".parse::<Cidr>().is_err());
    let all: Cidr = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains(ip("8.8.8.8")) && !all.contains(ip("2001::1")));
}

#[test]
fn target_rules() {
    let lo: Vec<Cidr> = vec!["127.0.0.0/8".parse().unwrap()];
    let t = Target::parse("http://127.0.0.1:9000/hook?x=1").unwrap();
    assert_eq!((t.tls, t.port, t.path.as_str()), (false, 9000, "/hook?x=1"));
    assert!(matches!(
        check_addresses(&t, &[ip("127.0.0.1")], &[]),
        Err(TargetError::NotAllowed { .. })
    ));
    assert!(check_addresses(&t, &[ip("127.0.0.1")], &lo).is_ok());
    // Plain http to a global address: refused; https fine.
    assert!(matches!(
        check_addresses(&t, &[ip("8.8.8.8")], &lo),
        Err(TargetError::PlainHttp { .. })
    ));
    let s = Target::parse("https://hooks.example/x").unwrap();
    assert_eq!((s.port, s.host_header()), (443, "hooks.example".to_owned()));
    assert!(check_addresses(&s, &[ip("8.8.8.8")], &[]).is_ok());
    // Every address counts: one private among global ones refuses.
    assert!(matches!(
        check_addresses(&s, &[ip("8.8.8.8"), ip("10.0.0.1")], &[]),
        Err(TargetError::NotAllowed { .. })
    ));
    assert!(check_addresses(&s, &[ip("169.254.169.254")], &[]).is_err());
    assert!(check_addresses(&s, &[], &[]).is_err());
    for bad in [
        "ftp://x/",
        "https://user:pw@x/",
        "/relative",
        "https://x/#frag",
        "https://x/ y",
    ] {
        let e = Target::parse(bad).unwrap_err();
        assert!(!e.to_string().contains("pw"), "{e}");
    }
    assert_eq!(
        Target::parse("https://[::1]:8443/").unwrap().host_header(),
        "[::1]:8443"
    );
}

proptest! {
    #[test]
    fn rfc1918_and_cgnat_are_never_global(a in any::<u32>()) {
        let v4 = Ipv4Addr::from_bits(a);
        let o = v4.octets();
        let private = o[0] == 10
            || (o[0] == 172 && (16..32).contains(&o[1]))
            || (o[0] == 192 && o[1] == 168)
            || (o[0] == 100 && (64..128).contains(&o[1]));
        if private {
            prop_assert_eq!(classify(IpAddr::V4(v4)), AddressClass::Private);
        }
        // The std predicates agree where they exist.
        if v4.is_loopback() || v4.is_link_local() || v4.is_multicast() || v4.is_broadcast()
            || v4.is_documentation() || v4.is_unspecified() || v4.is_private()
        {
            prop_assert_ne!(classify(IpAddr::V4(v4)), AddressClass::Global);
        }
        // An IPv4 address and its mapped IPv6 form class alike.
        prop_assert_eq!(classify(IpAddr::V4(v4)), classify(IpAddr::V6(v4.to_ipv6_mapped())));
    }

    #[test]
    fn ipv6_global_only_in_2000_3(a in any::<u128>()) {
        let v6 = Ipv6Addr::from_bits(a);
        let c = classify(IpAddr::V6(v6));
        if c == AddressClass::Global && v6.to_ipv4_mapped().is_none() && (a >> 96) != 0x0064_ff9b {
            prop_assert_eq!(a >> 125, 1);
        }
        if (a >> 121) == (0xfc00u128 >> 9) {
            prop_assert_eq!(c, AddressClass::Private);
        }
        if v6.is_multicast() {
            prop_assert_eq!(c, AddressClass::Multicast);
        }
    }

    #[test]
    fn cidr_parser_never_panics(s in "\\PC{0,40}") {
        let _ = s.parse::<Cidr>();
    }

    #[test]
    fn cidr_contains_its_own_address(a in any::<u32>(), p in 0u8..=32) {
        let n = Cidr::new(IpAddr::V4(Ipv4Addr::from_bits(a)), p).unwrap();
        prop_assert!(n.contains(IpAddr::V4(Ipv4Addr::from_bits(a))));
        let back: Cidr = n.to_string().parse().unwrap();
        prop_assert_eq!(back, n);
    }

    #[test]
    fn url_parser_never_panics(s in "\\PC{0,80}") {
        if let Err(e) = Target::parse(&s) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
