//! The proxy the EC2 client goes through, chosen from the plugin's environment exactly as Go's
//! `net/http` chooses it for amazonec2 (`http.ProxyFromEnvironment`, i.e.
//! `golang.org/x/net/http/httpproxy`):
//!
//! * `HTTPS_PROXY` (then `https_proxy`) for an `https://` endpoint, `HTTP_PROXY` (then
//!   `http_proxy`) for an `http://` one; `ALL_PROXY` is not read (Go does not).
//! * A value without a scheme, such as `proxy.corp:3128`, means `http://proxy.corp:3128`
//!   (`parseProxy` retries with `http://`).
//! * `NO_PROXY` (then `no_proxy`): comma-separated; `*` for everything; an IP, a CIDR, or
//!   `[IPv6]`/`IP` with `:port`; a domain `foo.com` matches it and its subdomains, `.foo.com`
//!   and `*.foo.com` the subdomains only, each optionally with `:port` (matched against the
//!   endpoint's port, 443 or 80 when the URL gives none).
//! * `localhost` and loopback addresses are never proxied.
//!
//! The EC2 client talks to one endpoint, so the decision is made once, here in the plugin; the
//! agent gets the outcome (a proxy URL or none) and never reads its own environment. No message
//! or log line shows a proxy's password ([`redact_userinfo`]).

use std::net::IpAddr;

/// The proxy for one endpoint.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Proxy {
    /// `scheme://[user:password@]host:port` ("" = connect directly).
    pub url: String,
    /// Hosts that bypass it, for a proxy handed over by an agent protocol peer; what
    /// [`Proxy::from_env`] chooses has `NO_PROXY` applied already and leaves this empty.
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
    /// The proxy this process's environment names for `endpoint` (the EC2 endpoint's URL).
    pub fn from_env(endpoint: &str) -> Proxy {
        Self::choose(endpoint, first_env)
    }

    /// [`from_env`](Self::from_env) with the environment read by `var` (first non-empty of
    /// the names it is given).
    pub fn choose(endpoint: &str, var: impl Fn(&[&str]) -> String) -> Proxy {
        let (scheme, host, port) = split_endpoint(endpoint);
        let raw = if scheme == "http" {
            var(&["HTTP_PROXY", "http_proxy"])
        } else {
            var(&["HTTPS_PROXY", "https_proxy"])
        };
        if raw.is_empty() || !use_proxy(&host, &port, &var(&["NO_PROXY", "no_proxy"])) {
            return Proxy::default();
        }
        Proxy {
            url: with_scheme(&raw),
            no_proxy: String::new(),
        }
    }
}

/// Go's `parseProxy`: a value that does not parse as an absolute URL with a host is read
/// with `http://` in front.
fn with_scheme(raw: &str) -> String {
    let raw = raw.trim();
    match raw.split_once("://") {
        Some((scheme, rest))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty() =>
        {
            raw.to_string()
        }
        _ => format!("http://{raw}"),
    }
}

/// The scheme, lower-case host (no brackets) and port (the scheme's default when none) of
/// `endpoint`.
fn split_endpoint(endpoint: &str) -> (String, String, String) {
    let (scheme, rest) = endpoint
        .split_once("://")
        .map_or(("https", endpoint), |(s, r)| (s, r));
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default_port = if scheme == "http" { "80" } else { "443" };
    let (host, port) = split_host_port(authority);
    (
        scheme,
        host.to_ascii_lowercase(),
        port.unwrap_or(default_port).to_string(),
    )
}

/// `host[:port]` or `[v6][:port]` → host (no brackets), port.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').filter(|p| !p.is_empty()));
    }
    match s.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((h, p)) if !h.contains(':') => (h, Some(p).filter(|p| !p.is_empty())),
        _ => (s, None),
    }
}

/// Go's `useProxy`: whether a request to `host:port` goes through the proxy under `no_proxy`.
fn use_proxy(host: &str, port: &str, no_proxy: &str) -> bool {
    if host == "localhost" {
        return false;
    }
    let ip = host.parse::<IpAddr>().ok();
    if ip.is_some_and(|ip| ip.is_loopback()) {
        return false;
    }
    for entry in no_proxy.split(',') {
        let p = entry.trim().to_ascii_lowercase();
        if p.is_empty() {
            continue;
        }
        if p == "*" {
            return false;
        }
        if let Some(net) = cidr(&p) {
            if ip.is_some_and(|ip| net.contains(ip)) {
                return false;
            }
            continue;
        }
        let (phost, pport) = match split_host_port(&p) {
            (h, Some(port)) => (h.to_string(), port.to_string()),
            (h, None) => (h.to_string(), String::new()),
        };
        if phost.is_empty() {
            continue;
        }
        let port_ok = pport.is_empty() || pport == port;
        if let Ok(pip) = phost.parse::<IpAddr>() {
            if ip == Some(pip) && port_ok {
                return false;
            }
            continue;
        }
        if ip.is_some() {
            continue;
        }
        let phost = phost.strip_prefix('*').unwrap_or(&phost);
        let (suffix, match_host) = match phost.strip_prefix('.') {
            Some(_) => (phost.to_string(), false),
            None => (format!(".{phost}"), true),
        };
        if (host.ends_with(&suffix) || (match_host && host == &suffix[1..])) && port_ok {
            return false;
        }
    }
    true
}

/// A parsed `addr/bits` entry.
struct Cidr {
    addr: IpAddr,
    bits: u32,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX.checked_shl(32 - self.bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX.checked_shl(128 - self.bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

fn cidr(p: &str) -> Option<Cidr> {
    let (addr, bits) = p.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let bits: u32 = bits.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some(Cidr { addr, bits })
}

/// `url` without the password it may carry (`http://user:secret@host` → `http://user:…@host`),
/// with or without a scheme. Everything up to the last `@` counts as user info — a password
/// holding `@` or `/` (not percent-encoded, as people write them) is hidden whole; a proxy URL
/// has no path for an `@` to be in.
pub fn redact_userinfo(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split([':', '/']).next().unwrap_or_default();
            format!("{scheme}{user}:…@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&[&str]) -> String + 'a {
        move |names: &[&str]| {
            names
                .iter()
                .find_map(|n| {
                    vars.iter()
                        .find(|(k, v)| k == n && !v.is_empty())
                        .map(|(_, v)| v.to_string())
                })
                .unwrap_or_default()
        }
    }

    const AWS: &str = "";

    #[test]
    fn a_proxy_without_a_scheme_is_http_as_go_reads_it() {
        let p = Proxy::choose(AWS, env(&[("HTTPS_PROXY", "proxy.corp:3128")]));
        assert_eq!(p.url, "http://proxy.corp:3128");
        let p = Proxy::choose(AWS, env(&[("https_proxy", "bob:pw@proxy.corp:3128")]));
        assert_eq!(p.url, "http://bob:pw@proxy.corp:3128");
        let p = Proxy::choose(AWS, env(&[("HTTPS_PROXY", "https://proxy.corp")]));
        assert_eq!(p.url, "https://proxy.corp");
    }

    #[test]
    fn the_endpoint_scheme_picks_the_variable_and_all_proxy_is_not_read() {
        let vars = [
            ("HTTP_PROXY", "http://plain:1"),
            ("HTTPS_PROXY", "http://secure:2"),
            ("ALL_PROXY", "socks5://all:3"),
        ];
        assert_eq!(Proxy::choose(AWS, env(&vars)).url, "http://secure:2");
        assert_eq!(
            Proxy::choose("http://ec2.example.test:8080", env(&vars)).url,
            "http://plain:1"
        );
        assert_eq!(
            Proxy::choose(AWS, env(&[("ALL_PROXY", "http://all:3")])),
            Proxy::default()
        );
        // The upper-case name wins, as in Go.
        let both = [
            ("HTTPS_PROXY", "http://upper:1"),
            ("https_proxy", "http://lower:1"),
        ];
        assert_eq!(Proxy::choose(AWS, env(&both)).url, "http://upper:1");
    }

    /// The NO_PROXY forms of `golang.org/x/net/http/httpproxy`'s own tests (`proxy_test.go`).
    #[test]
    fn no_proxy_matches_as_go_matches() {
        let direct = |endpoint: &str, no_proxy: &str| {
            let vars = [
                ("HTTPS_PROXY", "proxy:3128"),
                ("HTTP_PROXY", "proxy:3128"),
                ("NO_PROXY", no_proxy),
            ];
            Proxy::choose(endpoint, env(&vars)).url.is_empty()
        };
        let ec2 = "https://ec2.us-east-1.amazonaws.com";
        assert!(direct(ec2, "*"));
        assert!(direct(ec2, "amazonaws.com"));
        assert!(direct(ec2, ".amazonaws.com"));
        assert!(direct(ec2, "*.amazonaws.com"));
        assert!(direct(ec2, "foo.test, amazonaws.com:443"));
        assert!(!direct(ec2, "amazonaws.com:80"));
        assert!(!direct(ec2, "zonaws.com"));
        assert!(!direct(ec2, ""));
        // The domain itself: `foo.com` matches it, `.foo.com` only below it.
        assert!(direct("https://amazonaws.com", "amazonaws.com"));
        assert!(!direct("https://amazonaws.com", ".amazonaws.com"));
        // IPs, with ports, and CIDRs.
        assert!(direct("http://10.0.0.5:8080", "10.0.0.5"));
        assert!(direct("http://10.0.0.5:8080", "10.0.0.5:8080"));
        assert!(!direct("http://10.0.0.5:8080", "10.0.0.5:80"));
        assert!(direct("http://10.0.0.5:8080", "10.0.0.0/8"));
        assert!(!direct("http://11.0.0.5:8080", "10.0.0.0/8"));
        assert!(direct("http://[2001:db8::1]:80", "2001:db8::/32"));
        assert!(direct("http://[2001:db8::1]:80", "[2001:db8::1]:80"));
        // A domain entry never matches an IP, nor an IP entry a name.
        assert!(!direct("http://10.0.0.5", "0.0.5"));
        // Loopback and localhost are never proxied.
        assert!(direct("http://127.0.0.1:5000", ""));
        assert!(direct("http://localhost:5000", ""));
        assert!(direct("http://[::1]:5000", ""));
    }

    #[test]
    fn proxy_passwords_are_not_shown() {
        assert_eq!(
            redact_userinfo("http://bob:hunter2@proxy:3128"),
            "http://bob:…@proxy:3128"
        );
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(
            redact_userinfo("bob:hunter2@proxy:3128"),
            "bob:…@proxy:3128",
            "without a scheme"
        );
        assert_eq!(
            redact_userinfo("http://bob:hun@ter2@proxy:3128"),
            "http://bob:…@proxy:3128",
            "a password with @ is hidden whole"
        );
        assert_eq!(
            redact_userinfo("http://bob:s3/cr@et@proxy:3128"),
            "http://bob:…@proxy:3128",
            "and one with /"
        );
    }
}
