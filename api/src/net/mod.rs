//! Address arithmetic and endpoint formatting the phases share (SANs, service IPs, URLs).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::EffectiveConfig;

/// kube-apiserver's default secure port, used when the config leaves `bindPort` unset or 0.
pub const DEFAULT_BIND_PORT: u16 = 6443;

/// A subnet in CIDR notation, normalised to its network address (Go's `net.ParseCIDR`
/// accepts `10.96.0.1/12` and yields `10.96.0.0/12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

/// Why a string is not a CIDR or endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetError {
    pub input: String,
    pub reason: String,
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.input, self.reason)
    }
}

impl std::error::Error for NetError {}

fn net_error(input: &str, reason: impl Into<String>) -> NetError {
    NetError {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, NetError> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| net_error(text, "not in CIDR notation (address/prefix-length)"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| net_error(text, "the address part is not a valid IP address"))?;
        let max_prefix = if addr.is_ipv4() { 32 } else { 128 };
        let prefix_len: u8 = match prefix.parse::<u8>() {
            Ok(len) if len <= max_prefix && !prefix.starts_with('+') => len,
            _ => {
                return Err(net_error(
                    text,
                    format!("the prefix length must be a number from 0 to {max_prefix}"),
                ));
            }
        };
        let cidr = Self {
            network: addr,
            prefix_len,
        };
        let masked = cidr.network_bits() & cidr.network_mask();
        Ok(Self {
            network: cidr.address_from_bits(masked),
            prefix_len,
        })
    }

    pub fn network(&self) -> IpAddr {
        self.network
    }

    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    pub fn is_ipv6(&self) -> bool {
        self.network.is_ipv6()
    }

    fn address_width(&self) -> u8 {
        if self.is_ipv6() { 128 } else { 32 }
    }

    /// Bits left for hosts: 20 for a `/12` IPv4 or a `/108` IPv6 subnet.
    pub fn host_bits(&self) -> u8 {
        self.address_width() - self.prefix_len
    }

    /// How many addresses the subnet spans, saturating at `u128::MAX` for `::/0`.
    pub fn address_count(&self) -> u128 {
        1u128
            .checked_shl(u32::from(self.host_bits()))
            .unwrap_or(u128::MAX)
    }

    /// The address `index` positions past the network address, if it is inside the subnet:
    /// index 1 is the API server's service IP, index 10 the cluster DNS IP.
    pub fn nth_ip(&self, index: u128) -> Option<IpAddr> {
        if index > self.address_count() - 1 {
            return None;
        }
        Some(self.address_from_bits(self.network_bits() + index))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.is_ipv6() && (ip_bits(ip) & self.network_mask()) == self.network_bits()
    }

    fn network_bits(&self) -> u128 {
        ip_bits(self.network)
    }

    fn address_from_bits(&self, bits: u128) -> IpAddr {
        if self.is_ipv6() {
            IpAddr::V6(Ipv6Addr::from(bits))
        } else {
            // Only ever called with values inside a /0..=/32 IPv4 range.
            IpAddr::V4(Ipv4Addr::from(bits as u32))
        }
    }

    fn network_mask(&self) -> u128 {
        let all: u128 = if self.is_ipv6() {
            u128::MAX
        } else {
            u128::from(u32::MAX)
        };
        let host_mask = 1u128
            .checked_shl(u32::from(self.host_bits()))
            .map_or(u128::MAX, |n| n - 1);
        all & !host_mask
    }
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl std::str::FromStr for Cidr {
    type Err = NetError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// Parses `serviceSubnet`/`podSubnet`: one CIDR, or two of different families for dual-stack.
pub fn parse_cidr_list(text: &str) -> Result<Vec<Cidr>, NetError> {
    let cidrs = text
        .split(',')
        .map(Cidr::parse)
        .collect::<Result<Vec<_>, _>>()?;
    match cidrs.as_slice() {
        [_] => Ok(cidrs),
        [first, second] if first.is_ipv6() != second.is_ipv6() => Ok(cidrs),
        [_, _] => Err(net_error(
            text,
            "a dual-stack list needs one IPv4 and one IPv6 CIDR",
        )),
        _ => Err(net_error(
            text,
            "expected at most two CIDRs (one per IP family)",
        )),
    }
}

/// The `index`-th address of the primary (first) subnet of a possibly dual-stack list.
fn nth_ip_of_primary(subnets: &str, index: u128) -> Result<IpAddr, NetError> {
    let primary = parse_cidr_list(subnets)?[0];
    primary
        .nth_ip(index)
        .ok_or_else(|| net_error(subnets, format!("has no address at index {index}")))
}

/// The `kubernetes` Service's cluster IP: the first address of the primary service subnet.
pub fn api_server_service_ip(service_subnet: &str) -> Result<IpAddr, NetError> {
    nth_ip_of_primary(service_subnet, 1)
}

/// The cluster DNS Service's IP: the tenth address of the primary service subnet.
pub fn dns_service_ip(service_subnet: &str) -> Result<IpAddr, NetError> {
    nth_ip_of_primary(service_subnet, 10)
}

/// `host:port`, bracketing IPv6 literals (`[fd00::1]:6443`), like Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6 literal into host and
/// optional port. The host is returned without brackets and is not otherwise validated.
pub fn split_host_port(endpoint: &str) -> Result<(String, Option<u16>), NetError> {
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .ok()
            .filter(|&p| p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| net_error(endpoint, "the port must be a number from 1 to 65535"))
    };
    if let Some(bracketed) = endpoint.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| net_error(endpoint, "missing ']' after an IPv6 address"))?;
        return match after {
            "" => Ok((host.to_owned(), None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host.to_owned(), Some(parse_port(port)?))),
                None => Err(net_error(endpoint, "unexpected text after ']'")),
            },
        };
    }
    match endpoint.matches(':').count() {
        1 => {
            let (host, port) = endpoint.split_once(':').unwrap_or((endpoint, ""));
            Ok((host.to_owned(), Some(parse_port(port)?)))
        }
        // No colon, or several: a host name or an unbracketed IPv6 literal.
        _ => Ok((endpoint.to_owned(), None)),
    }
}

/// A host for a certificate SAN or an endpoint: an IP address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Ip(IpAddr),
    Dns(String),
}

impl Host {
    /// Classifies a user-supplied SAN or endpoint host the way kubeadm does: a valid IP is an
    /// IP, an RFC 1123 subdomain (or `*.` wildcard of one) a DNS name, anything else `None`.
    pub fn classify(text: &str) -> Option<Host> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Some(Host::Ip(ip));
        }
        let name = text.strip_prefix("*.").unwrap_or(text);
        is_dns1123_subdomain(name).then(|| Host::Dns(text.to_owned()))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => ip.fmt(f),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

/// RFC 1123 subdomain as Kubernetes defines it: at most 253 characters of lowercase
/// alphanumerics, `-` and `.`, each dot-separated label starting and ending alphanumeric.
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253 && !name.is_empty() && name.split('.').all(is_dns1123_label_chars)
}

/// RFC 1123 label: a subdomain without dots and at most 63 characters.
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && is_dns1123_label_chars(name)
}

fn is_dns1123_label_chars(label: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-')
        }
        _ => false,
    }
}

/// `https://<advertiseAddress>:<bindPort>`: this node's own API server, used by the
/// controller-manager and scheduler kubeconfigs.
pub fn local_api_endpoint_url(config: &EffectiveConfig) -> String {
    format!(
        "https://{}",
        join_host_port(config.advertise_address(), config.bind_port())
    )
}

/// The cluster's API endpoint: `https://<controlPlaneEndpoint>` (with `:<bindPort>` added when
/// it names no port), or this node's endpoint when `controlPlaneEndpoint` is unset.
///
/// Expects a validated config; an unparsable `controlPlaneEndpoint` is used verbatim.
pub fn control_plane_endpoint_url(config: &EffectiveConfig) -> String {
    match control_plane_endpoint(config) {
        None => local_api_endpoint_url(config),
        Some(endpoint) => match split_host_port(endpoint) {
            Ok((host, port)) => format!(
                "https://{}",
                join_host_port(&host, port.unwrap_or_else(|| config.bind_port()))
            ),
            Err(_) => format!("https://{endpoint}"),
        },
    }
}

/// The host of `controlPlaneEndpoint` as it goes into the API server certificate's SANs;
/// `None` when no endpoint is set or its host is neither an IP nor a DNS name.
pub fn control_plane_endpoint_host(config: &EffectiveConfig) -> Option<Host> {
    let (host, _) = split_host_port(control_plane_endpoint(config)?).ok()?;
    Host::classify(&host)
}

fn control_plane_endpoint(config: &EffectiveConfig) -> Option<&str> {
    config
        .cluster
        .control_plane_endpoint
        .as_deref()
        .filter(|endpoint| !endpoint.is_empty())
}

#[cfg(test)]
mod tests;
