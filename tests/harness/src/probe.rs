//! Minimal HTTP(S) GET for readiness probes, like the kubelet's: HTTPS
//! without certificate verification, status 200..=399 means success.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::manifest::HttpProbe;

/// Accepts any server certificate (the kubelet does not verify probe TLS
/// either) but still checks the handshake signatures.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
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

fn tls_config() -> Result<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c.clone());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// Result of one probe: the HTTP status and the (truncated) body.
#[derive(Debug, Clone)]
pub struct ProbeResponse {
    pub status: u16,
    pub body: String,
}

impl ProbeResponse {
    pub fn success(&self) -> bool {
        (200..400).contains(&self.status)
    }
}

/// Performs one GET against `probe` with the given timeout.
pub fn http_get(probe: &HttpProbe, timeout: Duration) -> Result<ProbeResponse> {
    let addr = (probe.host.as_str(), probe.port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {}", probe.url()))?
        .next()
        .with_context(|| format!("no address for {}", probe.url()))?;
    let tcp = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {}", probe.url()))?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.set_write_timeout(Some(timeout))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: kubeforge-testenv-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        probe.path, probe.host, probe.port
    );
    let mut raw = Vec::new();
    if probe.https {
        let name = ServerName::try_from(probe.host.clone())
            .with_context(|| format!("server name {:?}", probe.host))?;
        let conn = rustls::ClientConnection::new(tls_config()?, name)
            .context("creating TLS connection")?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(request.as_bytes())
            .with_context(|| format!("writing request to {}", probe.url()))?;
        read_to_end_lenient(&mut tls, &mut raw)
            .with_context(|| format!("reading response from {}", probe.url()))?;
    } else {
        let mut tcp = tcp;
        tcp.write_all(request.as_bytes())
            .with_context(|| format!("writing request to {}", probe.url()))?;
        read_to_end_lenient(&mut tcp, &mut raw)
            .with_context(|| format!("reading response from {}", probe.url()))?;
    }
    parse_response(&raw).with_context(|| format!("response from {}", probe.url()))
}

/// Reads until EOF; a TLS peer that closes without close_notify after
/// sending data is accepted.
fn read_to_end_lenient(r: &mut impl Read, out: &mut Vec<u8>) -> std::io::Result<()> {
    match r.read_to_end(out) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => Ok(()),
        Err(e) => Err(e),
    }
}

fn parse_response(raw: &[u8]) -> Result<ProbeResponse> {
    let text = String::from_utf8_lossy(raw);
    let status_line = text.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("malformed status line {status_line:?}");
    };
    if !version.starts_with("HTTP/") {
        bail!("malformed status line {status_line:?}");
    }
    let status: u16 = code
        .parse()
        .with_context(|| format!("status code {code:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let body: String = body.chars().take(4096).collect();
    Ok(ProbeResponse { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, "ok");
        assert!(r.success());
        let r =
            parse_response(b"HTTP/1.1 500 Internal Server Error\r\n\r\n[-]etcd failed").unwrap();
        assert!(!r.success());
        assert!(parse_response(b"garbage").is_err());
    }
}
