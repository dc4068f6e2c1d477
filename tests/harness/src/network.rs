//! A cluster's network: one bridge in a network namespace of the cluster's own (the lab), a
//! veth from each node's namespace into it, and one from the host, so traffic stays inside
//! namespaces the test env made and the host (kubectl, tests) reaches every node.
//!
//! Cluster `index` i gets 10.77.i.0/24: the bridge (and a load balancer in front of HA control
//! planes) is 10.77.i.1, node `ordinal` n is 10.77.i.(11+n), the host's end 10.77.i.254. Node n's
//! pods get 10.244.n.0/24 (inside the conventional pod subnet 10.244.0.0/16, which the test
//! env's configs set as `networking.podSubnet`), and every node routes each other node's pod
//! subnet through that node's address — what a flat-network CNI (kindnet, flannel host-gw)
//! does. The kube-controller-manager allocates `Node.spec.podCIDR` in registration order, so
//! it names the same subnets when nodes register in ordinal order.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The pod subnet the node subnets below lie in.
pub const POD_SUBNET: &str = "10.244.0.0/16";

pub fn gateway(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, index, 1)
}

pub fn node_address(index: u8, ordinal: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, index, 11 + ordinal)
}

pub fn host_address(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, index, 254)
}

pub fn pod_subnet(ordinal: u8) -> String {
    format!("10.244.{ordinal}.0/24")
}

/// The host's end of the cluster's veth (in the host's namespace).
pub fn host_link(index: u8) -> String {
    format!("kf{index}")
}

/// The lab's end of node `ordinal`'s veth.
fn node_link(index: u8, ordinal: u8) -> String {
    format!("kf{index}n{ordinal}")
}

/// Runs `ip ARGS` in the network namespace of process `pid` (the host's when `None`).
pub fn ip(netns_of: Option<i32>, args: &[&str]) -> Result<()> {
    let mut command = match netns_of {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net")).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    let output = command
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (iproute2) / nsenter (util-linux)")?;
    if !output.status.success() {
        bail!(
            "ip {} (in the netns of {}) failed: {}",
            args.join(" "),
            netns_of.map_or("the host".to_string(), |p| format!("pid {p}")),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Sets up the lab process `lab`'s namespace: the bridge, and the host's veth into it.
pub fn create_lab(index: u8, lab: i32) -> Result<()> {
    let host = host_link(index);
    let host_cidr = format!("{}/24", host_address(index));
    let gateway_cidr = format!("{}/24", gateway(index));
    let lab_pid = lab.to_string();
    let lab = Some(lab);
    ip(lab, &["link", "set", "lo", "up"])?;
    ip(lab, &["link", "add", "br0", "type", "bridge"])?;
    ip(lab, &["addr", "add", &gateway_cidr, "dev", "br0"])?;
    ip(lab, &["link", "set", "br0", "up"])?;
    // A leftover of a killed run with this index would make the add fail.
    let _ = ip(None, &["link", "del", &host]);
    ip(
        None,
        &[
            "link", "add", &host, "type", "veth", "peer", "name", "host", "netns", &lab_pid,
        ],
    )?;
    ip(lab, &["link", "set", "host", "master", "br0", "up"])?;
    ip(None, &["addr", "add", &host_cidr, "dev", &host])?;
    ip(None, &["link", "set", &host, "up"])
}

/// Plugs node `ordinal` (its supervisor `node`) into the lab `lab`: `eth0` with its address and
/// a default route through the bridge.
pub fn attach_node(index: u8, ordinal: u8, lab: i32, node: i32) -> Result<()> {
    let link = node_link(index, ordinal);
    let address = format!("{}/24", node_address(index, ordinal));
    let gateway = gateway(index).to_string();
    ip(
        None,
        &[
            "link",
            "add",
            &link,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            &node.to_string(),
        ],
    )?;
    ip(None, &["link", "set", &link, "netns", &lab.to_string()])?;
    ip(Some(lab), &["link", "set", &link, "master", "br0", "up"])?;
    let node = Some(node);
    ip(node, &["link", "set", "lo", "up"])?;
    ip(node, &["addr", "add", &address, "dev", "eth0"])?;
    ip(node, &["link", "set", "eth0", "up"])?;
    ip(node, &["route", "add", "default", "via", &gateway])
}

/// Routes node `from`'s traffic for node `to`'s pods through `to`'s address.
pub fn route_pods(index: u8, from: i32, to: u8) -> Result<()> {
    let via = node_address(index, to).to_string();
    ip(
        Some(from),
        &["route", "replace", &pod_subnet(to), "via", &via],
    )
}
