//! The HTTPS client under the EC2 client: rustls with aws-lc like the SDK's default, the
//! system's root certificates plus any extra CA bundle, and the proxy the plugin chose from its
//! environment as Go does ([`proxy`](crate::aws::proxy)). The proxy is given explicitly, so
//! the agent uses the plugin's proxy settings, never its own environment.

use aws_sdk_ec2::config::SharedHttpClient;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};

use crate::aws::error::{Error, Result};
use crate::aws::proxy::{Proxy, redact_userinfo};

/// The smithy client's proxy setting for `proxy`.
fn proxy_config(proxy: &Proxy) -> Result<ProxyConfig> {
    if proxy.url.is_empty() {
        return Ok(ProxyConfig::disabled());
    }
    // The EC2 client talks to one endpoint, whose scheme chose the URL: it serves both.
    let c = ProxyConfig::all(proxy.url.as_str()).map_err(|e| {
        Error::Other(format!(
            "the proxy {} (HTTPS_PROXY or HTTP_PROXY) is not a URL: {}",
            redact_userinfo(&proxy.url),
            redact_userinfo(&e.to_string())
        ))
    })?;
    Ok(if proxy.no_proxy.is_empty() {
        c
    } else {
        c.no_proxy(&proxy.no_proxy)
    })
}

/// An HTTPS client with `proxy`, trusting the system's roots and the PEM certificates in
/// `ca_bundle` (if any).
pub fn client(proxy: &Proxy, ca_bundle: &[u8]) -> Result<SharedHttpClient> {
    let proxy = proxy_config(proxy)?;
    let mut trust = TrustStore::default();
    if !ca_bundle.is_empty() {
        if !String::from_utf8_lossy(ca_bundle).contains("-----BEGIN CERTIFICATE-----") {
            return Err(Error::Other(
                "the CA bundle (AWS_CA_BUNDLE or the profile's ca_bundle) holds no PEM certificate"
                    .into(),
            ));
        }
        trust = trust.with_pem_certificate(ca_bundle.to_vec());
    }
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| Error::Other(format!("TLS settings: {e}")))?;
    // As aws-smithy-runtime's default HTTPS client, with our proxy and trust store.
    Ok(
        Builder::new().build_with_connector_fn(move |settings, components| {
            let mut c = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(tls.clone());
            c.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                c.set_sleep_impl(components.sleep_impl());
            }
            c.set_proxy_config(Some(proxy.clone()));
            c.build()
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_ca_bundle_is_refused() {
        let err = client(&Proxy::default(), b"not a certificate")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("AWS_CA_BUNDLE"), "{err}");
        assert!(client(&Proxy::default(), b"").is_ok());
    }
}
