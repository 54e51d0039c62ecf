use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn block(text: &str) -> IpBlock {
    IpBlock::parse(text).unwrap_or_else(|| panic!("{text} did not parse"))
}

fn rules(allow: &[&str], deny: &[&str]) -> IpRules {
    let raw = RawIpRules {
        allow: allow.iter().map(|s| s.to_string()).collect(),
        deny: deny.iter().map(|s| s.to_string()).collect(),
    };
    IpRules::compile(raw, &ConfigPath::root().field("ip")).unwrap()
}

fn head(xff: &[&str]) -> RequestHead {
    let mut head = RequestHead::from_pairs([(":method", "GET"), (":path", "/")]);
    for value in xff {
        head.headers.append("x-forwarded-for", *value);
    }
    head
}

#[test]
fn ipv4_blocks_match_their_prefix() {
    let b = block("10.0.0.0/8");
    assert!(b.contains(ip("10.0.0.0")));
    assert!(b.contains(ip("10.255.255.255")));
    assert!(!b.contains(ip("11.0.0.0")));
    assert!(!b.contains(ip("9.255.255.255")));
    let pair = block("192.0.2.6/31");
    assert!(pair.contains(ip("192.0.2.6")) && pair.contains(ip("192.0.2.7")));
    assert!(!pair.contains(ip("192.0.2.5")) && !pair.contains(ip("192.0.2.8")));
    let one = block("192.0.2.7/32");
    assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.6")));
    let all = block("0.0.0.0/0");
    assert!(all.contains(ip("0.0.0.0")) && all.contains(ip("255.255.255.255")));
    assert!(!all.contains(ip("::1")), "an IPv4 block never matches a (non-mapped) IPv6 address");
}

#[test]
fn ipv6_blocks_match_their_prefix() {
    let b = block("2001:db8::/32");
    assert!(b.contains(ip("2001:db8::1")));
    assert!(b.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
    assert!(!b.contains(ip("2001:db9::")));
    let one = block("2001:db8::7/128");
    assert!(one.contains(ip("2001:db8::7")) && !one.contains(ip("2001:db8::8")));
    let all = block("::/0");
    assert!(all.contains(ip("::")) && all.contains(ip("ffff::1")));
    assert!(!all.contains(ip("10.0.0.1")), "an IPv6 block never matches an IPv4 address");
    assert!(block("2001:db8::/127").contains(ip("2001:db8::1")));
    assert!(!block("2001:db8::/127").contains(ip("2001:db8::2")));
}

#[test]
fn bare_addresses_are_single_hosts_and_host_bits_are_cleared() {
    assert_eq!(
        block("192.0.2.7"),
        IpBlock::V4 { network: u32::from(Ipv4Addr::new(192, 0, 2, 7)), prefix: 32 }
    );
    assert_eq!(block("2001:db8::1"), IpBlock::V6 { network: u128::from(ip6("2001:db8::1")), prefix: 128 });
    assert_eq!(block("10.1.2.3/8"), block("10.0.0.0/8"));
    assert!(block("192.0.2.7").contains(ip("192.0.2.7")));
    assert!(!block("192.0.2.7").contains(ip("192.0.2.70")));
}

fn ip6(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

#[test]
fn ipv4_mapped_addresses_and_rules_are_ipv4() {
    // A dual-stack listener reports an IPv4 client as ::ffff:a.b.c.d; IPv4 rules still apply to it.
    assert!(block("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
    assert!(!block("::/0").contains(ip("::ffff:10.1.2.3")));
    assert_eq!(block("::ffff:10.0.0.0/104"), block("10.0.0.0/8"));
    assert_eq!(block("::ffff:192.0.2.7"), block("192.0.2.7"));
    assert_eq!(parse_address("[::ffff:10.1.2.3]:443"), Some(ip("10.1.2.3")));
}

#[test]
fn not_blocks() {
    for text in [
        "10.0.0.0/33",
        "2001:db8::/129",
        "10.0.0.0/",
        "10.0.0.0/+8",
        "10.0.0/8",
        "host",
        "",
        "[::1]",
        "1.2.3.4:80",
    ] {
        assert_eq!(IpBlock::parse(text), None, "{text:?}");
    }
}

#[test]
fn deny_wins_and_a_non_empty_allow_must_match() {
    let r = rules(&["10.0.0.0/8", "2001:db8::/32"], &["10.6.0.0/16"]);
    assert_eq!(r.check(Some(ip("10.1.2.3"))), Ok(()));
    assert_eq!(r.check(Some(ip("2001:db8::5"))), Ok(()));
    assert_eq!(r.check(Some(ip("10.6.1.1"))), Err(IpDenial::NotAllowed));
    assert_eq!(r.check(Some(ip("192.0.2.1"))), Err(IpDenial::NotAllowed));
    let deny_only = rules(&[], &["192.0.2.0/24"]);
    assert_eq!(deny_only.check(Some(ip("192.0.2.9"))), Err(IpDenial::NotAllowed));
    assert_eq!(deny_only.check(Some(ip("198.51.100.1"))), Ok(()));
    let both = rules(&["192.0.2.7"], &["192.0.2.7"]);
    assert_eq!(both.check(Some(ip("192.0.2.7"))), Err(IpDenial::NotAllowed));
}

#[test]
fn an_unknown_address_fails_closed() {
    assert_eq!(rules(&[], &["192.0.2.0/24"]).check(None), Err(IpDenial::UnknownAddress));
    assert_eq!(rules(&["0.0.0.0/0", "::/0"], &[]).check(None), Err(IpDenial::UnknownAddress));
}

#[test]
fn rule_errors_name_their_path() {
    let compile = |allow: &[&str], deny: &[&str]| {
        let raw = RawIpRules {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        };
        IpRules::compile(raw, &ConfigPath::root().field("auth").field("routes").index(2).field("ip"))
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        compile(&["10.0.0.0/8", "10.0.0.0/33"], &[]),
        r#"auth.routes[2].ip.allow[1]: "10.0.0.0/33" is not an IP address or CIDR"#
    );
    assert_eq!(
        compile(&[], &["fe80::/200"]),
        r#"auth.routes[2].ip.deny[0]: "fe80::/200" is not an IP address or CIDR"#
    );
    assert_eq!(compile(&[], &[]), "auth.routes[2].ip: needs at least one address in allow or deny");
}

#[test]
fn addresses_lose_ports_and_brackets() {
    assert_eq!(parse_address("1.2.3.4:5"), Some(ip("1.2.3.4")));
    assert_eq!(parse_address(" 1.2.3.4 "), Some(ip("1.2.3.4")));
    assert_eq!(parse_address("[::1]:443"), Some(ip("::1")));
    assert_eq!(parse_address("[2001:db8::1]"), Some(ip("2001:db8::1")));
    assert_eq!(parse_address("2001:db8::1"), Some(ip("2001:db8::1")));
    for garbage in ["", "unknown", "1.2.3", "[1.2.3.4]:x", "1.2.3.4:99999", "/run/envoy.sock"] {
        assert_eq!(parse_address(garbage), None, "{garbage:?}");
    }
}

#[test]
fn the_source_is_the_peer_address() {
    let from = ClientAddress::Source;
    assert_eq!(from.resolve(&head(&["198.51.100.9"]), Some("10.0.0.1:5555")), Some(ip("10.0.0.1")));
    assert_eq!(from.resolve(&head(&["198.51.100.9"]), None), None);
}

#[test]
fn forwarded_for_counts_trusted_hops_from_the_right() {
    let one = ClientAddress::XForwardedFor { trusted_hops: 1 };
    let two = ClientAddress::XForwardedFor { trusted_hops: 2 };
    let chain = head(&["203.0.113.5, 10.0.0.2"]);
    assert_eq!(one.resolve(&chain, Some("10.9.9.9:1")), Some(ip("10.0.0.2")));
    assert_eq!(two.resolve(&chain, None), Some(ip("203.0.113.5")));
    // A client-written entry on the left cannot move the trusted position.
    let spoofed = head(&["1.1.1.1, 2.2.2.2, 203.0.113.5, 10.0.0.2"]);
    assert_eq!(two.resolve(&spoofed, None), Some(ip("203.0.113.5")));
    assert_eq!(one.resolve(&spoofed, None), Some(ip("10.0.0.2")));
}

#[test]
fn forwarded_for_without_a_usable_entry_is_unknown() {
    let two = ClientAddress::XForwardedFor { trusted_hops: 2 };
    assert_eq!(two.resolve(&head(&["10.0.0.2"]), Some("10.0.0.1:1")), None);
    assert_eq!(two.resolve(&head(&[]), Some("10.0.0.1:1")), None);
    assert_eq!(two.resolve(&head(&["garbage, 10.0.0.2"]), None), None);
    assert_eq!(two.resolve(&head(&[", 10.0.0.2"]), None), None);
    // Garbage further left than the trusted position does not matter.
    assert_eq!(two.resolve(&head(&["garbage, 203.0.113.5, 10.0.0.2"]), None), Some(ip("203.0.113.5")));
}

#[test]
fn several_forwarded_for_headers_are_one_list() {
    let two = ClientAddress::XForwardedFor { trusted_hops: 2 };
    let three = ClientAddress::XForwardedFor { trusted_hops: 3 };
    let h = head(&["1.1.1.1", "[2001:db8::5]:443 , 203.0.113.5:8080", "10.0.0.2"]);
    assert_eq!(two.resolve(&h, None), Some(ip("203.0.113.5")));
    assert_eq!(three.resolve(&h, None), Some(ip("2001:db8::5")));
}

#[test]
fn client_address_config() {
    let compile = |json: serde_json::Value| {
        let raw: RawClientAddress = serde_json::from_value(json).map_err(|e| e.to_string())?;
        ClientAddress::compile(Some(raw), &ConfigPath::root().field("auth").field("client_address"))
            .map_err(|e| e.to_string())
    };
    assert_eq!(ClientAddress::compile(None, &ConfigPath::root()).unwrap(), ClientAddress::Source);
    assert_eq!(compile(serde_json::json!({"from": "source"})), Ok(ClientAddress::Source));
    assert_eq!(
        compile(serde_json::json!({"from": "x_forwarded_for", "trusted_hops": 2})),
        Ok(ClientAddress::XForwardedFor { trusted_hops: 2 })
    );
    assert_eq!(
        compile(serde_json::json!({"from": "x_forwarded_for", "trusted_hops": 0})),
        Err("auth.client_address.trusted_hops: must be at least 1".to_string())
    );
    assert!(compile(serde_json::json!({"from": "x_forwarded_for"})).is_err());
    assert!(compile(serde_json::json!({"from": "x_real_ip"})).is_err());
    assert!(compile(serde_json::json!({"from": "source", "trusted_hops": 1})).is_err());
}
