//! SSRF-safe egress: the one way the server makes outbound HTTP requests
//! (trigger deliveries; later client metadata documents and components'
//! outbound HTTP).
//!
//! A destination is a URL an untrusted tenant chose. Before anything is
//! sent:
//!
//! 1. the URL is parsed as a browser would (WHATWG, the `url` crate:
//!    `http://0x7f.1` *is* 127.0.0.1, `http://[::ffff:127.0.0.1]` is
//!    loopback), and must be `https`, or `http` to a destination
//!    `serve --egress-allow` lists;
//! 2. the host is resolved, and every address that is not global — loopback,
//!    private, link-local (cloud metadata at 169.254.169.254 included),
//!    unique-local, CGNAT, documentation, benchmarking, multicast, reserved,
//!    `0.0.0.0/8`, and the IPv4-mapped, IPv4-compatible, NAT64 and 6to4
//!    forms of any of those — is dropped, unless `--egress-allow` lists it;
//! 3. the request connects to exactly the addresses that passed (the
//!    client is pinned to them: no second lookup can answer differently),
//!    follows no redirect and uses no proxy.
//!
//! A refusal names the rule that refused ([`Refusal`]). [`Egress::check_url`]
//! runs steps 1 and the address rule for IP literals without DNS, for
//! checks at create time; [`Egress::send`] runs them all at delivery.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// What `--egress-allow` opens: an address range, or a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allow {
    Net(IpNet),
    Host(String),
}

impl FromStr for Allow {
    type Err = String;

    /// `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8` or a host name
    /// (`hooks.internal`).
    fn from_str(s: &str) -> Result<Allow, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Allow::Net(net));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Allow::Net(IpNet::from(ip)));
        }
        let host = s.trim_end_matches('.').to_ascii_lowercase();
        let valid = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(Allow::Host(host))
        } else {
            Err(format!(
                "'{s}' is neither an address range (CIDR such as 10.0.0.0/8, or an address) nor a host name"
            ))
        }
    }
}

/// Why a destination was refused; the message names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn refuse<T>(m: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(m.into()))
}

/// The egress policy of a server (`serve --egress-allow`, none by default).
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allow: Vec<Allow>,
    /// Clients already pinned to checked addresses, so deliveries to the
    /// same receiver reuse connections (and TLS set-up).
    clients: std::sync::Arc<std::sync::Mutex<Clients>>,
}

/// (host, port, checked addresses, timeout) → a client pinned to them.
type ClientKey = (String, u16, Vec<SocketAddr>, Duration);

#[derive(Debug, Default)]
struct Clients {
    map: std::collections::HashMap<ClientKey, (reqwest::Client, std::time::Instant)>,
}

/// How long a pinned client is reused, and how many are kept.
const CLIENT_TTL: Duration = Duration::from_secs(60);
const MAX_CLIENTS: usize = 256;

/// A destination that passed [`Egress::check_url`].
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: url::Url,
    /// The host as the URL names it (a name, or an address literal).
    host: url::Host<String>,
    port: u16,
    /// `--egress-allow` names this host.
    host_allowed: bool,
}

impl Egress {
    pub fn new(allow: Vec<Allow>) -> Egress {
        Egress {
            allow,
            clients: Default::default(),
        }
    }

    fn net_allowed(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|a| match a {
            Allow::Net(n) => n.contains(&ip) || canonical(ip).is_some_and(|v4| n.contains(&v4)),
            Allow::Host(_) => false,
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allow
            .iter()
            .any(|a| matches!(a, Allow::Host(h) if h.eq_ignore_ascii_case(host)))
    }

    /// Checks what can be checked without DNS: the URL's form and scheme,
    /// and an address literal's range. A name is resolved (and checked
    /// again) only by [`Egress::send`].
    pub fn check_url(&self, raw: &str) -> Result<Destination, Refusal> {
        let url = url::Url::parse(raw.trim())
            .or_else(|e| refuse(format!("'{raw}' is not a URL ({e})")))?;
        if !url.username().is_empty() || url.password().is_some() {
            return refuse(format!(
                "'{raw}' carries user info (user:password@): put credentials in headers, not the URL"
            ));
        }
        let Some(host) = url.host().map(|h| h.to_owned()) else {
            return refuse(format!("'{raw}' names no host"));
        };
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Refusal(format!("'{raw}': only http and https URLs are allowed")))?;
        let (listed, ip) = match &host {
            url::Host::Domain(d) => (self.host_allowed(d), None),
            url::Host::Ipv4(ip) => (self.net_allowed(IpAddr::V4(*ip)), Some(IpAddr::V4(*ip))),
            url::Host::Ipv6(ip) => (self.net_allowed(IpAddr::V6(*ip)), Some(IpAddr::V6(*ip))),
        };
        if !matches!(url.scheme(), "http" | "https") {
            return refuse(format!(
                "'{raw}': scheme '{}' is not allowed; only https (or http to an --egress-allow destination)",
                url.scheme()
            ));
        }
        // The address rule first: it is the reason that matters
        // (`http://169.254.169.254` is refused as link-local, not as http).
        if let Some(ip) = ip
            && !listed
            && let Some(rule) = non_global(ip)
        {
            return refuse(format!("'{raw}': {ip} is {rule}"));
        }
        if let url::Host::Domain(d) = &host
            && !listed
            && is_local_name(d)
        {
            return refuse(format!(
                "'{raw}': '{d}' is a local name (rule: no loopback or local destinations)"
            ));
        }
        if url.scheme() == "http" && !listed {
            return refuse(format!(
                "'{raw}': plain http is allowed only to destinations `serve --egress-allow` lists; use https"
            ));
        }
        Ok(Destination {
            url,
            host,
            port,
            host_allowed: listed,
        })
    }

    /// The addresses `dest` may be reached at: resolved, with every
    /// non-global one dropped unless `--egress-allow` lists it (or the host).
    pub async fn resolve(&self, dest: &Destination) -> Result<Vec<SocketAddr>, Refusal> {
        let found: Vec<SocketAddr> = match &dest.host {
            url::Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), dest.port)],
            url::Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), dest.port)],
            url::Host::Domain(d) => tokio::net::lookup_host((d.as_str(), dest.port))
                .await
                .or_else(|e| refuse(format!("cannot resolve '{d}': {e}")))?
                .collect(),
        };
        let mut refused = Vec::new();
        let ok: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| {
                let ip = a.ip();
                if dest.host_allowed || self.net_allowed(ip) {
                    return true;
                }
                match non_global(ip) {
                    None => true,
                    Some(rule) => {
                        refused.push(format!("{ip} ({rule})"));
                        false
                    }
                }
            })
            .collect();
        if ok.is_empty() {
            return refuse(format!(
                "'{}' resolves only to addresses that are not global: {} \
                 (start the server with --egress-allow to reach such a destination)",
                dest.url,
                if refused.is_empty() {
                    "none at all".to_string()
                } else {
                    refused.join(", ")
                }
            ));
        }
        Ok(ok)
    }

    /// A client that reaches `dest` only at `addrs` (from
    /// [`Egress::resolve`]): no redirects, no proxy, `timeout` in all.
    pub fn client(
        &self,
        dest: &Destination,
        addrs: &[SocketAddr],
        timeout: Duration,
    ) -> Result<reqwest::Client, Refusal> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let url::Host::Domain(d) = &dest.host {
            b = b.resolve_to_addrs(d, addrs);
        }
        b.build()
            .or_else(|e| refuse(format!("cannot build an HTTP client: {e}")))
    }

    /// A client for `dest` pinned to `addrs`: a recent one for the same
    /// host and addresses (the addresses were just checked again), else a
    /// new one.
    fn pinned(
        &self,
        dest: &Destination,
        addrs: Vec<SocketAddr>,
        timeout: Duration,
    ) -> Result<reqwest::Client, Refusal> {
        let key: ClientKey = (dest.host.to_string(), dest.port, addrs, timeout);
        let now = std::time::Instant::now();
        let mut cache = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((c, at)) = cache.map.get(&key)
            && now.duration_since(*at) < CLIENT_TTL
        {
            return Ok(c.clone());
        }
        let client = self.client(dest, &key.2, timeout)?;
        if cache.map.len() >= MAX_CLIENTS {
            cache
                .map
                .retain(|_, (_, at)| now.duration_since(*at) < CLIENT_TTL);
            if cache.map.len() >= MAX_CLIENTS {
                cache.map.clear();
            }
        }
        cache.map.insert(key, (client.clone(), now));
        Ok(client)
    }

    /// Checks, resolves and sends `body` to `url` with `headers`, within
    /// `timeout`. A redirect is answered as it came (not followed).
    pub async fn send(
        &self,
        url: &str,
        headers: &[(&str, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Result<reqwest::Response, reqwest::Error>, Refusal> {
        let dest = self.check_url(url)?;
        let addrs = self.resolve(&dest).await?;
        let client = self.pinned(&dest, addrs, timeout)?;
        let mut req = client.post(dest.url.clone()).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        Ok(req.send().await)
    }
}

/// Names that mean this machine or its network, whatever DNS says.
fn is_local_name(host: &str) -> bool {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    h == "localhost"
        || h.ends_with(".localhost")
        || h.ends_with(".local")
        || h.ends_with(".internal")
        || h == "localhost.localdomain"
}

/// The IPv4 address an IPv6 address stands for (mapped `::ffff:a.b.c.d`,
/// compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002:aabb:ccdd::/48`).
fn canonical(ip: IpAddr) -> Option<IpAddr> {
    let IpAddr::V6(v6) = ip else {
        return None;
    };
    let s = v6.segments();
    let o = v6.octets();
    let v4 = |a: u8, b: u8, c: u8, d: u8| Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(IpAddr::V4(v4));
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return v4(o[12], o[13], o[14], o[15]); // IPv4-compatible
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4(o[12], o[13], o[14], o[15]); // NAT64
    }
    if s[0] == 0x2002 {
        return v4(o[2], o[3], o[4], o[5]); // 6to4
    }
    None
}

const V4_RULES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "in 0.0.0.0/8 (this network)"),
    ("10.0.0.0/8", "a private address (10.0.0.0/8)"),
    ("100.64.0.0/10", "a shared (CGNAT) address (100.64.0.0/10)"),
    ("127.0.0.0/8", "a loopback address (127.0.0.0/8)"),
    (
        "169.254.0.0/16",
        "a link-local address (169.254.0.0/16, cloud metadata included)",
    ),
    ("172.16.0.0/12", "a private address (172.16.0.0/12)"),
    ("192.0.0.0/24", "an IETF protocol assignment (192.0.0.0/24)"),
    ("192.0.2.0/24", "a documentation address (192.0.2.0/24)"),
    ("192.88.99.0/24", "a 6to4 relay address (192.88.99.0/24)"),
    ("192.168.0.0/16", "a private address (192.168.0.0/16)"),
    ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
    (
        "198.51.100.0/24",
        "a documentation address (198.51.100.0/24)",
    ),
    ("203.0.113.0/24", "a documentation address (203.0.113.0/24)"),
    ("224.0.0.0/4", "a multicast address (224.0.0.0/4)"),
    (
        "240.0.0.0/4",
        "a reserved address (240.0.0.0/4, broadcast included)",
    ),
];

const V6_RULES: &[(&str, &str)] = &[
    ("::/128", "the unspecified address (::)"),
    ("::1/128", "the loopback address (::1)"),
    ("100::/64", "a discard-only address (100::/64)"),
    ("2001:db8::/32", "a documentation address (2001:db8::/32)"),
    ("2001::/23", "an IETF protocol assignment (2001::/23)"),
    ("fc00::/7", "a unique-local address (fc00::/7)"),
    ("fe80::/10", "a link-local address (fe80::/10)"),
    ("fec0::/10", "a site-local address (fec0::/10)"),
    (
        "64:ff9b:1::/48",
        "a local-use NAT64 address (64:ff9b:1::/48)",
    ),
    (
        "::ffff:0:0:0/96",
        "an IPv4-translated address (::ffff:0:0:0/96)",
    ),
    ("ff00::/8", "a multicast address (ff00::/8)"),
];

/// The rule an address breaks if it is not a global unicast address, by
/// itself or through the IPv4 address it embeds.
pub fn non_global(ip: IpAddr) -> Option<String> {
    if let Some(v4) = canonical(ip) {
        return non_global(v4).map(|r| format!("{r}, written as the IPv6 address {ip}"));
    }
    match ip {
        IpAddr::V4(v4) => V4_RULES.iter().find_map(|(net, rule)| {
            let net: Ipv4Net = net.parse().ok()?;
            net.contains(&v4).then(|| rule.to_string())
        }),
        IpAddr::V6(v6) => {
            if v6 == Ipv6Addr::UNSPECIFIED {
                return Some("the unspecified address (::)".into());
            }
            V6_RULES.iter().find_map(|(net, rule)| {
                let net: Ipv6Net = net.parse().ok()?;
                net.contains(&v6).then(|| rule.to_string())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn non_global_addresses_name_their_rule() {
        for (addr, rule) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "CGNAT"),
            ("0.0.0.0", "this network"),
            ("0.1.2.3", "this network"),
            ("192.0.2.7", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fd12:3456::1", "unique-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::10.0.0.1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("64:ff9b:1::a00:1", "local-use NAT64"),
            ("::ffff:0:7f00:1", "IPv4-translated"),
        ] {
            let got = non_global(ip(addr));
            assert!(
                got.as_deref().is_some_and(|r| r.contains(rule)),
                "{addr}: {got:?}, want {rule}"
            );
        }
        for addr in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(non_global(ip(addr)), None, "{addr} is global");
        }
    }

    #[test]
    fn urls_are_checked_as_a_browser_reads_them() {
        let e = Egress::default();
        for (url, why) in [
            ("http://127.0.0.1/hook", "loopback"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://hooks.example.com/in", "plain http"),
            ("https://127.0.0.1/hook", "loopback"),
            ("https://localhost/hook", "local name"),
            ("https://api.localhost/hook", "local name"),
            ("https://[::ffff:127.0.0.1]/hook", "loopback"),
            ("https://169.254.169.254/latest/meta-data", "link-local"),
            ("https://0x7f.1/", "loopback"),
            ("https://2130706433/", "loopback"),
            ("https://0177.0.0.1/", "loopback"),
            ("https://[::1]:8443/", "loopback"),
            ("https://user:pw@example.com/", "user info"),
            ("ftp://example.com/", "scheme 'ftp'"),
            ("file:///etc/passwd", "no host"),
            ("not a url", "not a URL"),
        ] {
            let got = e.check_url(url);
            assert!(
                got.as_ref().is_err_and(|r| r.0.contains(why)),
                "{url}: {got:?}, want {why}"
            );
        }
        assert!(e.check_url("https://hooks.example.com/in").is_ok());

        // --egress-allow opens exactly what it lists, http included.
        let e = Egress::new(vec![
            "127.0.0.1".parse().expect("allow"),
            "receiver.test".parse().expect("allow"),
        ]);
        assert!(e.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert!(
            e.check_url("http://0x7f.1:9000/hook").is_ok(),
            "the same address"
        );
        assert!(e.check_url("http://receiver.test/hook").is_ok());
        assert!(e.check_url("http://127.0.0.2/hook").is_err());
        assert!(e.check_url("https://localhost/hook").is_err());
        assert!("bad host!".parse::<Allow>().is_err());
        assert_eq!(
            "10.0.0.0/8".parse::<Allow>(),
            Ok(Allow::Net("10.0.0.0/8".parse().expect("net")))
        );
    }

    #[tokio::test]
    async fn names_are_resolved_and_their_addresses_checked() {
        let e = Egress::default();
        // `localhost.` would be refused by name; a name that resolves to
        // loopback through /etc/hosts or DNS is refused by address.
        let dest = Destination {
            url: url::Url::parse("https://localhost:9/").expect("url"),
            host: url::Host::Domain("localhost".into()),
            port: 9,
            host_allowed: false,
        };
        let err = e.resolve(&dest).await.expect_err("refused");
        assert!(err.0.contains("not global"), "{err}");
        let allowed = Egress::new(vec!["127.0.0.0/8".parse().expect("allow")]);
        let addrs = allowed.resolve(&dest).await.expect("allowed");
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    /// A redirect is answered as it came, never followed: a public URL
    /// cannot bounce a delivery to loopback.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/secret\r\nContent-Length: 0\r\n\r\n",
                    )
                    .await;
            }
        });
        let e = Egress::new(vec!["127.0.0.1".parse().expect("allow")]);
        let resp = e
            .send(
                &format!("http://127.0.0.1:{port}/hook"),
                &[("content-type", "application/json".into())],
                b"{}".to_vec(),
                Duration::from_secs(5),
            )
            .await
            .expect("allowed")
            .expect("answered");
        assert_eq!(resp.status(), reqwest::StatusCode::FOUND);
    }
}
