//! TLS to Postgres with rustls, as `sslmode` in the database URL asks, with libpq's meanings so that a URL means here
//! what it means to `psql`:
//!
//! | `sslmode` | TLS | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | - |
//! | `prefer` (the default) | when the server offers it | not checked |
//! | `require` | always | not checked, unless `sslrootcert` is given: then as `verify-ca`, as libpq does |
//! | `verify-ca` | always | signed by a CA in `sslrootcert` |
//! | `verify-full` | always | signed by a CA in `sslrootcert`, and for the host connected to |
//!
//! `sslrootcert` is a PEM file of CA certificates; without it (or with `sslrootcert=system`) the verifying modes use
//! the system's roots. tokio-postgres knows neither the verifying modes nor `sslrootcert`, so [`split`] takes them
//! out of the URL before it is parsed and [`MakeRustlsConnect`] does the checking. The crypto provider is aws-lc-rs,
//! the workspace's one provider. Channel binding is not offered: SCRAM still authenticates both ways, and a
//! verified certificate is what stops a man in the middle.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use synckit_store::StoreError;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};

/// How much of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Nothing,
    Issuer,
    IssuerAndHost,
}

/// What `sslmode` and `sslrootcert` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    /// What tokio-postgres is told: whether TLS is off, tried or required.
    pub mode: SslMode,
    check: Check,
    root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of a `postgres://` URL or a `key=value` string.
pub(crate) fn split(url: &str) -> Result<(String, TlsSettings), StoreError> {
    let (mut sslmode, mut root_cert) = (None, None);
    // Keeps every other parameter.
    let mut take = |param: &str| {
        match param.split_once('=') {
            Some(("sslmode", value)) => sslmode = Some(value.to_owned()),
            Some(("sslrootcert", value)) => root_cert = Some(value.to_owned()),
            _ => return true,
        }
        false
    };
    let rest = if let Some((base, query)) = url.split_once('?').filter(|_| url.contains("://")) {
        let kept: Vec<&str> = query.split('&').filter(|p| take(p)).collect();
        if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
    } else if url.contains("://") {
        url.to_owned()
    } else {
        url.split_whitespace().filter(|p| take(p)).collect::<Vec<_>>().join(" ")
    };
    let root_cert = root_cert.filter(|r| r != "system");
    let (mode, check) = match sslmode.as_deref().unwrap_or("prefer") {
        "disable" => (SslMode::Disable, Check::Nothing),
        "prefer" => (SslMode::Prefer, Check::Nothing),
        "require" if root_cert.is_some() => (SslMode::Require, Check::Issuer),
        "require" => (SslMode::Require, Check::Nothing),
        "verify-ca" => (SslMode::Require, Check::Issuer),
        "verify-full" => (SslMode::Require, Check::IssuerAndHost),
        other => {
            return Err(StoreError::other(format!(
                "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
            )));
        }
    };
    Ok((rest, TlsSettings { mode, check, root_cert }))
}

impl TlsSettings {
    /// The connector: reads `sslrootcert` now, so a missing or empty file fails at start-up.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect, StoreError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(StoreError::other)?;
        let verifier: Arc<dyn ServerCertVerifier> = match self.check {
            Check::Nothing => Arc::new(AnyCertificate(provider)),
            Check::Issuer | Check::IssuerAndHost => {
                let roots = Arc::new(self.roots()?);
                let webpki =
                    WebPkiServerVerifier::builder_with_provider(roots, provider).build().map_err(StoreError::other)?;
                if self.check == Check::Issuer { Arc::new(AnyHost(webpki)) } else { webpki }
            }
        };
        let config = builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth();
        Ok(MakeRustlsConnect { config: Arc::new(config) })
    }

    fn roots(&self) -> Result<RootCertStore, StoreError> {
        let mut roots = RootCertStore::empty();
        match &self.root_cert {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| StoreError::other(format!("sslrootcert={path}: {e}")))?;
                roots.add_parsable_certificates(certs);
                if roots.is_empty() {
                    return Err(StoreError::other(format!("sslrootcert={path} holds no CA certificate")));
                }
            }
            None => {
                roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
                if roots.is_empty() {
                    return Err(StoreError::other("no system CA certificates found: give sslrootcert=<CA file>"));
                }
            }
        }
        Ok(roots)
    }
}

/// Whether `err` is a refused server certificate: a wrong CA or host name, which no retry fixes.
pub(crate) fn is_certificate_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        let inner = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()).map(|e| e as &dyn std::error::Error);
        if let Some(rustls::Error::InvalidCertificate(_)) = inner.and_then(|e| e.downcast_ref::<rustls::Error>()) {
            return true;
        }
        source = err.source();
    }
    false
}

/// `sslmode=prefer` and `require` without a CA: encrypt, check nothing of the certificate (but the handshake's
/// signatures), as libpq does.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

/// `verify-ca`: the certificate must chain to a trusted CA; its names are not compared with the host.
#[derive(Debug)]
struct AnyHost(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for AnyHost {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked before the name, so a name error means the chain was good.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Makes a TLS connection per database connection, for the host tokio-postgres connects to.
#[derive(Debug, Clone)]
pub(crate) struct MakeRustlsConnect {
    config: Arc<ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, host: &str) -> Result<RustlsConnect, Self::Error> {
        let name = ServerName::try_from(host.to_owned())?;
        Ok(RustlsConnect { connector: tokio_rustls::TlsConnector::from(self.config.clone()), name })
    }
}

/// One TLS handshake, with the server named `name`.
pub(crate) struct RustlsConnect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move { self.connector.connect(self.name, stream).await.map(RustlsStream) })
    }
}

/// A connection to Postgres under TLS.
pub(crate) struct RustlsStream<S>(tokio_rustls::client::TlsStream<S>);

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream for RustlsStream<S> {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_leave_the_url() {
        let (rest, tls) =
            split("postgres://u@h/db?sslmode=verify-full&application_name=x&sslrootcert=/ca.pem").unwrap();
        assert_eq!(rest, "postgres://u@h/db?application_name=x");
        assert_eq!(
            (tls.mode, tls.check, tls.root_cert.as_deref()),
            (SslMode::Require, Check::IssuerAndHost, Some("/ca.pem"))
        );

        let (rest, tls) = split("postgres://u@h/db").unwrap();
        assert_eq!((rest.as_str(), tls.mode, tls.check), ("postgres://u@h/db", SslMode::Prefer, Check::Nothing));
        let (rest, tls) = split("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!((rest.as_str(), tls.mode), ("postgres://u@h/db", SslMode::Disable));
        let (_, tls) = split("postgres://u@h/db?sslmode=require").unwrap();
        assert_eq!((tls.mode, tls.check), (SslMode::Require, Check::Nothing));
        let (_, tls) = split("postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem").unwrap();
        assert_eq!(tls.check, Check::Issuer, "a CA file makes require check the issuer, as in libpq");
        let (_, tls) = split("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!((tls.check, tls.root_cert), (Check::Issuer, None));

        let (rest, tls) = split("host=h user=u sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!((rest.as_str(), tls.check), ("host=h user=u", Check::Issuer));

        let err = split("postgres://u@h/db?sslmode=verify").unwrap_err();
        assert!(format!("{err:?}").contains("sslmode=verify is not one of"), "{err:?}");
    }
}
