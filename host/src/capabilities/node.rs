//! `kubeforge:phase/node`: facts about the node and actions on it, each named in the grant —
//! paths it may ask about, services it may control, health endpoints it may probe.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::capabilities::PhaseState;
use crate::effects::{Entry, Outcome};
use crate::runtime::bindings::PhaseError;
use crate::runtime::bindings::kubeforge::phase::node::{Host, ProbeOutcome, ServiceAction};

/// How long one probe may take, connection and answer together.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Host for PhaseState {
    fn path_exists(&mut self, path: String) -> wasmtime::Result<Result<bool, PhaseError>> {
        if !self.grant.node_paths.contains(&path) {
            return Ok(Err(self.deny("node", format!("path-exists {path}"))));
        }
        Ok(Ok(self.host.node_path(&path).exists()))
    }

    async fn control_service(
        &mut self,
        service: String,
        action: ServiceAction,
    ) -> wasmtime::Result<Result<bool, PhaseError>> {
        let verb = match action {
            ServiceAction::Stop => "stop",
            ServiceAction::Start => "start",
            ServiceAction::Restart => "restart",
        };
        let what = format!("{verb} service {service}");
        if !self.grant.node_services.contains(&service) {
            return Ok(Err(self.deny("node", what)));
        }
        if self.host.effects.is_dry_run() {
            self.host
                .effects
                .plan_node_action(&self.origin.phase, &what);
            return Ok(Ok(true));
        }
        // The service reads what the phase wrote: its staged files land first.
        if let Err(e) = self.host.effects.commit() {
            return Ok(Err(PhaseError::Failed(format!(
                "writing the phase's files before it could {what}: {e:#}"
            ))));
        }
        let started = Instant::now();
        let result = self.host.services.control(verb, &service).await;
        self.journal_node(&what, &result, started);
        Ok(result.map_err(PhaseError::Failed))
    }

    async fn probe(&mut self, url: String) -> wasmtime::Result<Result<ProbeOutcome, PhaseError>> {
        if !self
            .grant
            .node_probes
            .iter()
            .any(|pattern| glob_matches(pattern, &url))
        {
            return Ok(Err(self.deny("node", format!("probe {url}"))));
        }
        let target = match ProbeTarget::parse(&url) {
            Ok(target) => target,
            Err(why) => return Ok(Err(PhaseError::Failed(format!("probe {url}: {why}")))),
        };
        if !target.host.is_loopback() && Some(target.host) != self.host.advertise_address {
            return Ok(Err(self.deny(
                "node",
                format!("probe {url} (only the node's loopback and advertise addresses)"),
            )));
        }
        Ok(Ok(
            match tokio::time::timeout(PROBE_TIMEOUT, target.get()).await {
                Ok(Ok(status)) => ProbeOutcome::Status(status),
                Ok(Err(why)) => ProbeOutcome::Unreachable(why),
                Err(_) => ProbeOutcome::Unreachable(format!("no answer within {PROBE_TIMEOUT:?}")),
            },
        ))
    }
}

impl PhaseState {
    fn journal_node(&self, what: &str, result: &Result<bool, String>, started: Instant) {
        if let Some(journal) = self.host.effects.journal() {
            journal.append(
                &self.origin,
                Entry {
                    capability: "node",
                    operation: "service",
                    target: what,
                    outcome: if result.is_ok() {
                        Outcome::Ok
                    } else {
                        Outcome::Error
                    },
                    detail: result.as_ref().err().map(String::as_str),
                    duration: started.elapsed(),
                },
            );
        }
    }
}

/// How the host drives the node's services: a program run as `<program> [args…] <action>
/// <service>`, `systemctl` by default (`--service-command`).
#[derive(Debug, Clone)]
pub struct ServiceManager {
    command: Vec<String>,
}

impl Default for ServiceManager {
    fn default() -> Self {
        Self {
            command: vec!["systemctl".into()],
        }
    }
}

impl ServiceManager {
    /// A manager from a command line split on whitespace; an empty one means `systemctl`.
    pub fn new(command: &str) -> Self {
        let command: Vec<String> = command.split_whitespace().map(String::from).collect();
        if command.is_empty() {
            Self::default()
        } else {
            Self { command }
        }
    }

    /// Run the action; `Ok(false)` if the program is not there (no init system to drive).
    async fn control(&self, verb: &str, service: &str) -> Result<bool, String> {
        let (program, args) = self
            .command
            .split_first()
            .expect("a service command has a program");
        let output = tokio::process::Command::new(program)
            .args(args)
            .args([verb, service])
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        match output {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(format!("running {}: {e}", self.command.join(" "))),
            Ok(output) if output.status.success() => Ok(true),
            Ok(output) => Err(format!(
                "`{} {verb} {service}` failed ({}): {}",
                self.command.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }
    }
}

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A parsed `http(s)://<ip>:<port>/<path>` probe URL.
struct ProbeTarget {
    tls: bool,
    host: IpAddr,
    port: u16,
    path: String,
}

impl ProbeTarget {
    fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err("only http:// and https:// URLs can be probed".into());
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => (
                host,
                port.parse::<u16>()
                    .map_err(|_| format!("{port:?} is not a port"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .map_err(|_| format!("{host:?} is not an IP address"))?;
        // The path goes into the request line as it is: a space or a line break would let the
        // phase write any request, to an address its grant's pattern (`https://*/livez`) matches.
        if !path.bytes().all(|byte| byte.is_ascii_graphic()) {
            return Err(format!(
                "the path {path:?} has a character a URL cannot (a space, a control character or \
                 non-ASCII; percent-encode it)"
            ));
        }
        Ok(Self {
            tls,
            host,
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    /// The status code of one GET.
    async fn get(&self) -> Result<u16, String> {
        let stream = TcpStream::connect((self.host, self.port))
            .await
            .map_err(|e| e.to_string())?;
        if self.tls {
            let connector = tokio_rustls::TlsConnector::from(insecure_tls());
            let name = ServerName::IpAddress(self.host.into());
            let stream = connector
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            self.exchange(stream).await
        } else {
            self.exchange(stream).await
        }
    }

    async fn exchange(
        &self,
        mut stream: impl AsyncRead + AsyncWrite + Unpin,
    ) -> Result<u16, String> {
        let host = match self.host {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {host}:{}\r\nUser-Agent: kubeforge\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path, self.port
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 32];
        let mut read = 0;
        while read < 12 {
            match stream.read(&mut head[read..]).await {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(e) => return Err(e.to_string()),
            }
        }
        let line = String::from_utf8_lossy(&head[..read]);
        line.strip_prefix("HTTP/1.")
            .and_then(|rest| rest.get(2..5))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
    }
}

/// Health checks skip verifying the server, as kubeadm's do: the point is whether it answers.
fn insecure_tls() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            Arc::new(
                rustls::ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .expect("aws-lc-rs supports the default TLS versions")
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Accepts any server certificate but still checks the handshake signatures.
#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_patterns_match_whole_urls() {
        assert!(glob_matches(
            "https://*/livez",
            "https://10.0.0.1:6443/livez"
        ));
        assert!(glob_matches(
            "http://127.0.0.1:10248/healthz",
            "http://127.0.0.1:10248/healthz"
        ));
        assert!(!glob_matches(
            "https://*/livez",
            "https://10.0.0.1:6443/livez/x"
        ));
        assert!(!glob_matches(
            "https://*/livez",
            "http://10.0.0.1:6443/livez"
        ));
        assert!(glob_matches("*", "anything"));
    }

    #[test]
    fn probe_urls_name_an_ip_port_and_path() {
        let target = ProbeTarget::parse("https://[::1]:6443/livez").unwrap();
        assert_eq!(
            (target.tls, target.host, target.port, target.path.as_str()),
            (true, "::1".parse::<IpAddr>().unwrap(), 6443, "/livez")
        );
        let target = ProbeTarget::parse("http://127.0.0.1:10248").unwrap();
        assert_eq!((target.port, target.path.as_str()), (10248, "/"));
        assert!(ProbeTarget::parse("http://localhost:10248/healthz").is_err());
        assert!(ProbeTarget::parse("ftp://127.0.0.1/").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;
    use crate::fuzzing::{fuzz, odd_text};

    /// A probe URL as a phase may give one: a scheme, an address (or not), a port (or not), a
    /// path; or any text.
    fn probe_url() -> impl Strategy<Value = String> {
        let scheme = select(vec!["http://", "https://", "ftp://", ""]);
        let host = prop_oneof![
            any::<IpAddr>().prop_map(|ip| match ip {
                IpAddr::V4(ip) => ip.to_string(),
                IpAddr::V6(ip) => format!("[{ip}]"),
            }),
            odd_text(),
        ];
        let port = prop::option::of(prop_oneof![
            any::<u16>().prop_map(|p| p.to_string()),
            odd_text()
        ]);
        let path = prop_oneof![odd_text().prop_map(|path| format!("/{path}")), odd_text()];
        let url = (scheme, host, port, path).prop_map(|(scheme, host, port, path)| {
            let port = port.map(|port| format!(":{port}")).unwrap_or_default();
            format!("{scheme}{host}{port}{path}")
        });
        prop_oneof![4 => url, 1 => odd_text()]
    }

    /// Found by `probe_urls`: `http://0.0.0.0/ü` was requested as it is. A line break in the
    /// path let a phase whose grant matches `https://*/livez` send any request (any method,
    /// path and headers, without credentials) to any port of the node's loopback or advertise
    /// address.
    #[test]
    fn probe_paths_that_would_change_the_request_are_refused() {
        for url in [
            "http://0.0.0.0/ü",
            "https://127.0.0.1:10250/x HTTP/1.1\r\nHost: a\r\n\r\nPOST /run/kube-system/etcd-cp/etcd HTTP/1.1\r\n\r\n/livez",
            "https://127.0.0.1:6443/livez ",
        ] {
            let error = ProbeTarget::parse(url).err().expect("refused");
            assert!(error.contains("percent-encode"), "{error}");
        }
        assert!(ProbeTarget::parse("https://127.0.0.1:6443/livez?verbose=%20").is_ok());
    }

    #[test]
    fn probe_urls() {
        fuzz((probe_url(), odd_text()), |(url, pattern)| {
            glob_matches(&pattern, &url);
            assert!(glob_matches("*", &url));
            if !pattern.contains('*') {
                assert_eq!(glob_matches(&pattern, &url), pattern == url);
            }
            if let Ok(target) = ProbeTarget::parse(&url) {
                // It goes into the request line as it is.
                assert!(
                    target.path.starts_with('/')
                        && target.path.bytes().all(|b| b.is_ascii_graphic()),
                    "the path {:?} of {url:?} would change the HTTP request",
                    target.path
                );
            }
        });
    }
}
