//! Running readiness probes against the real thing: a command, an HTTP endpoint, a TCP port,
//! the process's output, or its notify socket. What a probe *is* and how results add up lives
//! in `berth_core::probe`; this module only carries out one attempt. HTTP goes through hyper's
//! client (`https` through rustls with the ring provider).

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use berth_core::probe::ProbeCheck;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::{TcpStream, UnixDatagram};

/// What a probe looks at besides its own check.
pub struct Target {
    /// Where `exec` runs.
    pub cwd: PathBuf,
    /// The process's output log, for `log`.
    pub log: PathBuf,
    /// Where in the log this run's output starts.
    pub log_offset: u64,
    /// Bound before the process starts, for `notify`.
    pub notify: Option<UnixDatagram>,
    /// `log`: the compiled pattern.
    pattern: Option<regex::Regex>,
    /// Bytes of the log after `log_offset` not yet ending in a newline.
    partial: String,
}

impl Target {
    /// Prepares a target; fails only on a `log` pattern that is not a valid regular expression.
    pub fn new(
        check: &ProbeCheck,
        cwd: PathBuf,
        log: PathBuf,
        notify: Option<UnixDatagram>,
    ) -> Result<Target, String> {
        let pattern = match check {
            ProbeCheck::Log { pattern } => Some(
                regex::Regex::new(pattern)
                    .map_err(|e| format!("invalid log pattern {pattern:?}: {e}"))?,
            ),
            _ => None,
        };
        let log_offset = std::fs::metadata(&log).map_or(0, |m| m.len());
        Ok(Target {
            cwd,
            log,
            log_offset,
            notify,
            pattern,
            partial: String::new(),
        })
    }
}

/// One attempt, bounded by `timeout`: `true` when the check passes.
pub async fn attempt(check: &ProbeCheck, target: &mut Target, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, once(check, target))
        .await
        .unwrap_or(false)
}

async fn once(check: &ProbeCheck, target: &mut Target) -> bool {
    match check {
        ProbeCheck::Exec { command } => tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&target.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .is_ok_and(|s| s.success()),
        ProbeCheck::Tcp { address } => TcpStream::connect(address.as_str()).await.is_ok(),
        ProbeCheck::Http { url } => http_ok(url).await,
        ProbeCheck::Log { .. } => log_matches(target).await,
        ProbeCheck::Notify => notified(target),
    }
}

/// Where an HTTP probe connects and what it asks for.
#[derive(Debug, PartialEq, Eq)]
struct HttpTarget {
    tls: bool,
    /// The host to connect to (an IPv6 address without its brackets).
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: String,
    path: String,
}

/// An `http://` or `https://` URL as an [`HttpTarget`], with the scheme's default port.
fn http_target(url: &str) -> Option<HttpTarget> {
    let uri: hyper::Uri = url.parse().ok()?;
    let tls = match uri.scheme_str()? {
        "http" => false,
        "https" => true,
        _ => return None,
    };
    let host = uri.host()?;
    Some(HttpTarget {
        tls,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
        authority: uri.authority()?.as_str().to_string(),
        path: uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
    })
}

/// `GET url` answers 2xx, over HTTP/1.1 (hyper's client), `https` through rustls. The
/// server's certificate is not verified: a readiness probe (like a kubelet's) asks a service
/// of the user's own — often with a self-signed development certificate — whether it is up,
/// and sends nothing that needs protecting.
async fn http_ok(url: &str) -> bool {
    let Some(t) = http_target(url) else {
        return false;
    };
    let Ok(tcp) = TcpStream::connect((t.host.as_str(), t.port)).await else {
        return false;
    };
    let Ok(request) = hyper::Request::get(t.path.as_str())
        .header(hyper::header::HOST, t.authority.as_str())
        .header(hyper::header::USER_AGENT, "berth")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
    else {
        return false;
    };
    if !t.tls {
        return answers_2xx(tcp, request).await;
    }
    let (Ok(name), Some(connector)) = (ServerName::try_from(t.host), tls_connector()) else {
        return false;
    };
    match connector.connect(name, tcp).await {
        Ok(tls) => answers_2xx(tls, request).await,
        Err(_) => false,
    }
}

/// Sends `request` over `io` and whether the answer's status is 2xx.
async fn answers_2xx<T>(io: T, request: hyper::Request<http_body_util::Empty<bytes::Bytes>>) -> bool
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(io);
    let Ok((mut sender, connection)) = hyper::client::conn::http1::handshake(io).await else {
        return false;
    };
    let driver = tokio::spawn(connection);
    let ok = sender
        .send_request(request)
        .await
        .is_ok_and(|answer| answer.status().is_success());
    driver.abort();
    ok
}

/// A TLS client that takes any certificate (see [`http_ok`]); `None` if rustls refuses the
/// configuration (it does not: ring supports the default protocol versions). rustls marks its
/// ring provider deprecated for lacking post-quantum key exchange, which a readiness probe of a
/// local service does not need; ring builds without the C toolchain aws-lc-rs wants.
#[allow(deprecated)]
fn tls_connector() -> Option<tokio_rustls::TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Takes any certificate; the handshake's signatures are still checked.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
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

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A line of this run's output matches the pattern.
async fn log_matches(target: &mut Target) -> bool {
    let Some(pattern) = &target.pattern else {
        return false;
    };
    let Ok(mut file) = tokio::fs::File::open(&target.log).await else {
        return false;
    };
    let len = file.metadata().await.map_or(0, |m| m.len());
    if len < target.log_offset {
        target.log_offset = 0; // rotated
    }
    if file.seek(SeekFrom::Start(target.log_offset)).await.is_err() {
        return false;
    }
    let mut fresh = Vec::new();
    if file.read_to_end(&mut fresh).await.is_err() {
        return false;
    }
    target.log_offset += fresh.len() as u64;
    target.partial.push_str(&String::from_utf8_lossy(&fresh));
    let mut matched = false;
    while let Some(end) = target.partial.find('\n') {
        let line: String = target.partial.drain(..=end).collect();
        // Keeper lines are "<time> out| <text>": match the text as a terminal shows it
        // (a terminal agent's colours and carriage returns are not part of what it says).
        matched |= pattern.is_match(&berth_core::output_line::shown_text(line.trim_end()));
    }
    matched
}

/// A `READY=1` datagram arrived on the notify socket.
fn notified(target: &mut Target) -> bool {
    let Some(sock) = &target.notify else {
        return false;
    };
    let mut buf = [0u8; 4096];
    let mut ready = false;
    while let Ok(n) = sock.try_recv(&mut buf) {
        ready |= String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l.trim() == "READY=1");
    }
    ready
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    #[test]
    fn urls_get_their_schemes_default_port_also_for_an_ipv6_host() {
        let t = http_target("http://[::1]/").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (false, "::1", 80));
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("[::1]", "/"));
        let t = http_target("https://localhost/health").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "localhost", 443));
        let t = http_target("http://127.0.0.1:8080/ready?deep=1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (8080, "/ready?deep=1"));
        assert_eq!(http_target("https://[::1]:8443").unwrap().port, 8443);
        for bad in ["ftp://host/", "localhost:80", "http://", ""] {
            assert_eq!(http_target(bad), None, "{bad}");
        }
    }

    /// Serves every connection on `listener` one answer with `status`; TLS when `tls`.
    async fn serve(listener: TcpListener, status: u16, tls: Option<tokio_rustls::TlsAcceptor>) {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let answer = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                match tls {
                    Some(acceptor) => {
                        let mut s = acceptor.accept(tcp).await.unwrap();
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf).await;
                        s.write_all(answer.as_bytes()).await.unwrap();
                        let _ = s.shutdown().await;
                    }
                    None => {
                        let mut s = tcp;
                        let mut buf = [0u8; 1024];
                        let _ = s.read(&mut buf).await;
                        s.write_all(answer.as_bytes()).await.unwrap();
                    }
                }
            });
        }
    }

    #[allow(deprecated)] // rustls's ring provider, as in `tls_connector`
    fn acceptor() -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::PrivateKeyDer;
        use rustls::pki_types::pem::PemObject;
        let cert =
            CertificateDer::from_pem_slice(include_bytes!("testdata/probe-cert.pem")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(include_bytes!("testdata/probe-key.pem")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    #[tokio::test]
    async fn http_and_https_probes_pass_on_2xx_only_over_ipv4_and_ipv6() {
        let cases = [
            ("127.0.0.1:0", "http", 204, None, true),
            ("127.0.0.1:0", "http", 503, None, false),
            ("[::1]:0", "http", 200, None, true),
            // A self-signed development certificate is fine for a readiness probe.
            ("127.0.0.1:0", "https", 200, Some(acceptor()), true),
            ("127.0.0.1:0", "https", 500, Some(acceptor()), false),
        ];
        for (bind, scheme, status, tls, want) in cases {
            let listener = TcpListener::bind(bind)
                .await
                .unwrap_or_else(|e| panic!("cannot listen on {bind} (needs IPv6 loopback): {e}"));
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(serve(listener, status, tls));
            let url = format!("{scheme}://{addr}/health");
            assert_eq!(http_ok(&url).await, want, "{url} answering {status}");
            server.abort();
        }
        // Nothing listening.
        assert!(!http_ok("http://127.0.0.1:1/").await);
    }
}
