//! The HTTPS client under the EC2 client: rustls with aws-lc like the SDK's default, the
//! system's root certificates plus any extra CA bundle, and a proxy chosen from the plugin's
//! `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` / `NO_PROXY` (either case) the way the SDK's
//! default client reads them (hyper-util's matcher: the upper-case name first). The proxy is
//! given explicitly, so the agent uses the plugin's proxy settings, never its own environment.

use aws_sdk_ec2::config::SharedHttpClient;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_http_client::{Builder, ConnectorBuilder};

use crate::aws::error::{Error, Result};

/// The proxy for one endpoint: its URL ("" = none) and the hosts that bypass it.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Proxy {
    /// `http://[user:password@]host:port` ("" = connect directly).
    pub url: String,
    /// `NO_PROXY` rules (curl's syntax: hosts, domains, IPs, CIDRs, `*`).
    pub no_proxy: String,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("url", &redact_userinfo(&self.url))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

fn first_env(names: &[&str]) -> String {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        .unwrap_or_default()
}

impl Proxy {
    /// The proxy this process's environment names for `endpoint_url` ("" = AWS's, HTTPS).
    pub fn from_env(endpoint_url: &str) -> Proxy {
        let url = if endpoint_url.starts_with("http://") {
            first_env(&["HTTP_PROXY", "http_proxy"])
        } else {
            first_env(&["HTTPS_PROXY", "https_proxy"])
        };
        let url = if url.is_empty() {
            first_env(&["ALL_PROXY", "all_proxy"])
        } else {
            url
        };
        if url.is_empty() {
            return Proxy::default();
        }
        Proxy {
            url,
            no_proxy: first_env(&["NO_PROXY", "no_proxy"]),
        }
    }

    fn config(&self) -> Result<ProxyConfig> {
        if self.url.is_empty() {
            return Ok(ProxyConfig::disabled());
        }
        // The EC2 client talks to one endpoint, whose scheme chose the URL: it serves both.
        let c = ProxyConfig::all(self.url.as_str()).map_err(|e| {
            Error::Other(format!(
                "the proxy {} (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) is not a URL: {e}",
                redact_userinfo(&self.url)
            ))
        })?;
        Ok(if self.no_proxy.is_empty() {
            c
        } else {
            c.no_proxy(&self.no_proxy)
        })
    }
}

/// `url` without a password it may carry (`http://user:secret@host` → `http://user:…@host`).
pub fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:…@{host}")
        }
        None => url.to_string(),
    }
}

/// An HTTPS client with `proxy`, trusting the system's roots and the PEM certificates in
/// `ca_bundle` (if any).
pub fn client(proxy: &Proxy, ca_bundle: &[u8]) -> Result<SharedHttpClient> {
    let proxy = proxy.config()?;
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
    fn proxy_passwords_are_not_shown() {
        assert_eq!(
            redact_userinfo("http://bob:hunter2@proxy:3128"),
            "http://bob:…@proxy:3128"
        );
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
    }

    #[test]
    fn a_bad_ca_bundle_is_refused() {
        let err = client(&Proxy::default(), b"not a certificate")
            .expect_err("refused")
            .to_string();
        assert!(err.contains("AWS_CA_BUNDLE"), "{err}");
        assert!(client(&Proxy::default(), b"").is_ok());
    }
}
