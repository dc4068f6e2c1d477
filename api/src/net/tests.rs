use std::net::IpAddr;

use super::*;
use crate::v1beta4::{ApiEndpoint, ClusterConfiguration, InitConfiguration};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cidr(text: &str) -> Cidr {
    Cidr::parse(text).unwrap()
}

#[test]
fn nth_ip_ipv4() {
    assert_eq!(cidr("10.96.0.0/12").nth_ip(1), Some(ip("10.96.0.1")));
    assert_eq!(cidr("10.96.0.0/12").nth_ip(10), Some(ip("10.96.0.10")));
    assert_eq!(cidr("10.96.0.0/12").nth_ip(256), Some(ip("10.96.1.0")));
    assert_eq!(
        cidr("10.96.0.0/12").nth_ip((1 << 20) - 1),
        Some(ip("10.111.255.255"))
    );
    assert_eq!(cidr("10.96.0.0/12").nth_ip(1 << 20), None);
    assert_eq!(cidr("192.168.0.0/29").nth_ip(10), None);
    assert_eq!(
        cidr("0.0.0.0/0").nth_ip(u128::from(u32::MAX)),
        Some(ip("255.255.255.255"))
    );
    assert_eq!(cidr("1.2.3.4/32").nth_ip(0), Some(ip("1.2.3.4")));
    assert_eq!(cidr("1.2.3.4/32").nth_ip(1), None);
}

#[test]
fn nth_ip_ipv6() {
    assert_eq!(cidr("fd00::/108").nth_ip(1), Some(ip("fd00::1")));
    assert_eq!(cidr("fd00::/108").nth_ip(10), Some(ip("fd00::a")));
    assert_eq!(
        cidr("fd00:10:96::/112").nth_ip(10),
        Some(ip("fd00:10:96::a"))
    );
    assert_eq!(
        cidr("fd00::/108").nth_ip((1 << 20) - 1),
        Some(ip("fd00::f:ffff"))
    );
    assert_eq!(cidr("fd00::/108").nth_ip(1 << 20), None);
    assert_eq!(
        cidr("::/0").nth_ip(u128::MAX - 1),
        Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"))
    );
}

#[test]
fn cidr_parsing_normalises_and_rejects() {
    let parsed = cidr("10.96.0.1/12");
    assert_eq!(parsed.to_string(), "10.96.0.0/12");
    assert_eq!(parsed.host_bits(), 20);
    assert_eq!(parsed.address_count(), 1 << 20);
    assert!(parsed.contains(ip("10.111.0.1")));
    assert!(!parsed.contains(ip("10.112.0.1")));
    assert!(!parsed.contains(ip("fd00::1")));
    assert_eq!(cidr("fd00::1/108").to_string(), "fd00::/108");
    assert_eq!(cidr("fd00::/108").host_bits(), 20);
    assert_eq!(cidr("::/0").address_count(), u128::MAX);
    for bad in [
        "10.96.0.0",
        "10.96.0.0/33",
        "fd00::/129",
        "10.96.0/12",
        "10.96.0.0/+12",
        "x/1",
        "10.96.0.0/",
    ] {
        assert!(Cidr::parse(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn cidr_lists() {
    assert_eq!(
        parse_cidr_list("10.96.0.0/12").unwrap(),
        vec![cidr("10.96.0.0/12")]
    );
    assert_eq!(
        parse_cidr_list("10.96.0.0/12,fd00::/108").unwrap(),
        vec![cidr("10.96.0.0/12"), cidr("fd00::/108")]
    );
    assert!(parse_cidr_list("10.96.0.0/12,10.97.0.0/16").is_err());
    assert!(parse_cidr_list("10.96.0.0/12,fd00::/108,fd01::/108").is_err());
    assert!(parse_cidr_list("").is_err());
    assert!(parse_cidr_list("10.96.0.0/12, fd00::/108").is_err());
}

#[test]
fn service_ips_use_the_primary_family() {
    assert_eq!(
        api_server_service_ip("10.96.0.0/12").unwrap(),
        ip("10.96.0.1")
    );
    assert_eq!(dns_service_ip("10.96.0.0/12").unwrap(), ip("10.96.0.10"));
    assert_eq!(
        dns_service_ip("fd00::/108,10.96.0.0/12").unwrap(),
        ip("fd00::a")
    );
    assert_eq!(
        api_server_service_ip("10.96.0.0/12,fd00::/108").unwrap(),
        ip("10.96.0.1")
    );
    assert!(dns_service_ip("10.96.0.0/30").is_err());
}

#[test]
fn host_port_formatting() {
    assert_eq!(join_host_port("10.0.0.1", 6443), "10.0.0.1:6443");
    assert_eq!(join_host_port("fd00::1", 6443), "[fd00::1]:6443");
    assert_eq!(join_host_port("lb.example.com", 443), "lb.example.com:443");
    assert_eq!(split_host_port("lb:443").unwrap(), ("lb".into(), Some(443)));
    assert_eq!(split_host_port("lb").unwrap(), ("lb".into(), None));
    assert_eq!(
        split_host_port("[fd00::1]:443").unwrap(),
        ("fd00::1".into(), Some(443))
    );
    assert_eq!(
        split_host_port("[fd00::1]").unwrap(),
        ("fd00::1".into(), None)
    );
    assert_eq!(
        split_host_port("fd00::1").unwrap(),
        ("fd00::1".into(), None)
    );
    for bad in [
        "lb:0",
        "lb:65536",
        "lb:",
        "lb:x",
        "[fd00::1",
        "[fd00::1]x",
        "lb:+1",
    ] {
        assert!(split_host_port(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn hosts_are_classified_like_kubeadm_sans() {
    assert_eq!(Host::classify("10.0.0.1"), Some(Host::Ip(ip("10.0.0.1"))));
    assert_eq!(Host::classify("fd00::1"), Some(Host::Ip(ip("fd00::1"))));
    assert_eq!(
        Host::classify("lb.example.com"),
        Some(Host::Dns("lb.example.com".into()))
    );
    assert_eq!(
        Host::classify("*.example.com"),
        Some(Host::Dns("*.example.com".into()))
    );
    for bad in [
        "",
        "Upper.example.com",
        "-a.example.com",
        "a..b",
        "a_b",
        "*",
        "*.",
        "a.*.b",
        "a.b-",
    ] {
        assert_eq!(Host::classify(bad), None, "{bad:?}");
    }
    assert!(is_dns1123_subdomain(&"a".repeat(253)));
    assert!(!is_dns1123_subdomain(&"a".repeat(254)));
    assert!(is_dns1123_label(&"a".repeat(63)));
    assert!(!is_dns1123_label(&"a".repeat(64)));
    assert!(!is_dns1123_label("a.b"));
}

fn config(advertise: &str, port: Option<i32>, endpoint: Option<&str>) -> EffectiveConfig {
    EffectiveConfig {
        init: InitConfiguration {
            local_api_endpoint: ApiEndpoint {
                advertise_address: Some(advertise.into()),
                bind_port: port,
            },
            ..Default::default()
        },
        cluster: ClusterConfiguration {
            control_plane_endpoint: endpoint.map(Into::into),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn endpoint_urls() {
    let local = config("192.168.1.10", Some(6443), None);
    assert_eq!(local_api_endpoint_url(&local), "https://192.168.1.10:6443");
    assert_eq!(
        control_plane_endpoint_url(&local),
        "https://192.168.1.10:6443"
    );
    assert_eq!(control_plane_endpoint_host(&local), None);

    let empty_endpoint = config("192.168.1.10", Some(7443), Some(""));
    assert_eq!(
        control_plane_endpoint_url(&empty_endpoint),
        "https://192.168.1.10:7443"
    );

    let v6 = config("fd00::10", Some(6443), None);
    assert_eq!(local_api_endpoint_url(&v6), "https://[fd00::10]:6443");
    assert_eq!(control_plane_endpoint_url(&v6), "https://[fd00::10]:6443");

    let lb = config("192.168.1.10", Some(6443), Some("lb.example.com"));
    assert_eq!(
        control_plane_endpoint_url(&lb),
        "https://lb.example.com:6443"
    );
    assert_eq!(
        control_plane_endpoint_host(&lb),
        Some(Host::Dns("lb.example.com".into()))
    );
    assert_eq!(local_api_endpoint_url(&lb), "https://192.168.1.10:6443");

    let lb_port = config("192.168.1.10", Some(6443), Some("lb.example.com:443"));
    assert_eq!(
        control_plane_endpoint_url(&lb_port),
        "https://lb.example.com:443"
    );

    let vip_v6 = config("fd00::10", Some(8443), Some("fd00::100"));
    assert_eq!(
        control_plane_endpoint_url(&vip_v6),
        "https://[fd00::100]:8443"
    );
    assert_eq!(
        control_plane_endpoint_host(&vip_v6),
        Some(Host::Ip(ip("fd00::100")))
    );

    let vip_v6_port = config("fd00::10", Some(6443), Some("[fd00::100]:443"));
    assert_eq!(
        control_plane_endpoint_url(&vip_v6_port),
        "https://[fd00::100]:443"
    );

    let vip_v4 = config("10.0.0.5", None, Some("10.0.0.100"));
    assert_eq!(
        control_plane_endpoint_url(&vip_v4),
        "https://10.0.0.100:6443"
    );
    assert_eq!(
        control_plane_endpoint_host(&vip_v4),
        Some(Host::Ip(ip("10.0.0.100")))
    );
}
