//! Every HTTP request Keel makes to another server goes through here:
//! webhook deliveries, feed pulls and CDN purges (and whatever comes next).
//! Their URLs are chosen by API callers, so without a guard any of them is
//! a way to make Keel fetch `http://169.254.169.254/…` or an admin port on
//! loopback (server-side request forgery).
//!
//! - **At save time** [`Outbound::check_target`]: http or https, no
//!   credentials, bounded length, no literal address that is not public (in
//!   any spelling: the URL parser turns `0x7f000001`, `2130706433`, `0177.0.0.1`
//!   and `127.1` into `127.0.0.1`), no `localhost` names, and no name that
//!   resolves to a refused address right now. Refusals are `422
//!   url_not_allowed` on the field.
//! - **At fetch time** [`Client`]: the literal check again (a URL saved by a
//!   node that allowed private targets may be fetched by one that does not,
//!   and literal addresses never reach a resolver), and a resolver that
//!   refuses names with any refused address ([`address::refusal`]). The
//!   resolver is the one the client connects with, so the address checked is
//!   the address connected to: DNS rebinding between the check and the
//!   connection is refused too.
//! - Clients follow no redirects, ignore proxy settings from the
//!   environment (a proxy would resolve names itself, past the guard), and
//!   have bounded connect and total times; [`read_bounded`] reads a response
//!   body in chunks up to a limit.
//!
//! One opt-in turns the address checks off, for development against local
//! receivers: `KEEL_ALLOW_PRIVATE_TARGETS=1` (read by the binary).

pub mod address;

use crate::App;
use keel_domain::Invalid;
use reqwest::Url;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The opt-in, and the older name it replaced (still honoured).
pub const ALLOW_PRIVATE_TARGETS_ENV: &str = "KEEL_ALLOW_PRIVATE_TARGETS";
pub const ALLOW_PRIVATE_TARGETS_ENV_ALIAS: &str = "KEEL_WEBHOOKS_ALLOW_PRIVATE";
/// Longest URL accepted for any outbound target.
pub const MAX_URL_LEN: usize = 2048;
/// A save-time lookup slower than this is not waited for: the fetch-time
/// resolver still refuses what it would have found.
const SAVE_TIME_LOOKUP: Duration = Duration::from_secs(3);

/// The outbound policy: whether private targets are allowed, and host
/// entries consulted before DNS.
#[derive(Clone, Default)]
pub struct Outbound {
    allow_private_targets: bool,
    hosts: Arc<BTreeMap<String, Vec<IpAddr>>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").field("allow_private_targets", &self.allow_private_targets).finish_non_exhaustive()
    }
}

impl Outbound {
    /// Allows (or, the default, refuses) loopback, private, link-local and
    /// other non-public targets. Development and tests only.
    pub fn allowing_private_targets(mut self, allow: bool) -> Outbound {
        self.allow_private_targets = allow;
        self
    }

    pub fn allows_private_targets(&self) -> bool {
        self.allow_private_targets
    }

    /// A host entry consulted before DNS, like a line of `/etc/hosts`. Its
    /// addresses pass the same guard as resolved ones; tests use it to point
    /// a name at loopback without a DNS server.
    pub fn with_static_host(mut self, name: &str, addrs: &[IpAddr]) -> Outbound {
        Arc::make_mut(&mut self.hosts).insert(host_key(name), addrs.to_vec());
        self
    }

    /// Syntax and literal-address checks of a target URL (no lookup);
    /// returns the URL normalised.
    pub fn check_url(&self, field: &str, raw: &str) -> Result<Url, Invalid> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(Invalid::new(field, "required", "must not be empty"));
        }
        if s.len() > MAX_URL_LEN {
            return Err(Invalid::new(field, "too_long", format!("must be at most {MAX_URL_LEN} characters")));
        }
        let url = Url::parse(s).map_err(|_| Invalid::new(field, "invalid_url", "not an absolute http(s) URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Invalid::new(field, "url_not_allowed", "the scheme must be https or http"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Invalid::new(field, "invalid_url", "the URL needs a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Invalid::new(field, "url_not_allowed", "credentials are not allowed in the URL"));
        }
        if url.fragment().is_some() {
            return Err(Invalid::new(field, "invalid_url", "fragments are not allowed in the URL"));
        }
        if !self.allow_private_targets {
            if let Some(reason) = literal_refusal(&url) {
                return Err(Invalid::new(field, "url_not_allowed", reason));
            }
        }
        Ok(url)
    }

    /// [`Outbound::check_url`], then the name resolved now: refused when any
    /// address it has is refused (every fetch would be). A name that does not
    /// resolve is accepted — it may exist by the time it is fetched, and is
    /// checked then.
    pub async fn check_target(&self, field: &str, raw: &str) -> Result<String, Invalid> {
        let url = self.check_url(field, raw)?;
        if !self.allow_private_targets {
            if let Some(name) = url.host_str().filter(|_| host_address(&url).is_none()) {
                if let Ok(Ok(addrs)) = tokio::time::timeout(SAVE_TIME_LOOKUP, self.lookup(name)).await {
                    if let Some(reason) = resolved_refusal(name, &addrs) {
                        return Err(Invalid::new(field, "url_not_allowed", reason));
                    }
                }
            }
        }
        Ok(url.to_string())
    }

    async fn lookup(&self, name: &str) -> std::io::Result<Vec<IpAddr>> {
        if let Some(addrs) = self.hosts.get(&host_key(name)) {
            return Ok(addrs.clone());
        }
        Ok(tokio::net::lookup_host((name, 0)).await?.map(|a| a.ip()).collect())
    }

    /// An HTTP client under this policy.
    pub fn client(&self, settings: ClientSettings) -> Client {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(settings.user_agent)
            .pool_max_idle_per_host(settings.max_idle_per_host)
            .dns_resolver(Arc::new(GuardedResolver { outbound: self.clone() }))
            .build()
            .expect("an outbound HTTP client needs no system configuration");
        Client { http, allow_private_targets: self.allow_private_targets }
    }
}

fn host_key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a URL's host, given literally (an address or a loopback name), is
/// refused, if it is.
pub fn literal_refusal(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    if address::is_loopback_name(host) {
        return Some(format!("{host} is a loopback name; private targets are not allowed"));
    }
    let ip = host_address(url)?;
    address::refusal(ip).map(|why| format!("{ip} is {why}, not a public address; private targets are not allowed"))
}

/// The URL's host when it is an address. The WHATWG parser has already
/// written every numeric spelling of an IPv4 address (`0x7f000001`,
/// `2130706433`, `0177.0.0.1`, `127.1`) as dotted decimal, and IPv6 in
/// brackets.
fn host_address(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).parse().ok()
}

fn resolved_refusal(name: &str, addrs: &[IpAddr]) -> Option<String> {
    let (ip, why) = addrs.iter().find_map(|ip| address::refusal(*ip).map(|why| (ip, why)))?;
    Some(format!("{name} resolves to {ip}, which is {why}, not a public address; private targets are not allowed"))
}

/// A request refused before it was sent, or a name refused by the resolver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked(pub String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "blocked: {}", self.0)
    }
}

impl std::error::Error for Blocked {}

/// Resolves (static entries, else the system resolver) and refuses names
/// with any refused address, unless the policy allows private targets.
struct GuardedResolver {
    outbound: Outbound,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let outbound = self.outbound.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = outbound.lookup(&host).await?;
            if !outbound.allow_private_targets {
                if let Some(reason) = resolved_refusal(&host, &addrs) {
                    return Err(Box::new(Blocked(reason)) as Box<dyn std::error::Error + Send + Sync>);
                }
            }
            Ok(Box::new(addrs.into_iter().map(|ip| SocketAddr::new(ip, 0))) as reqwest::dns::Addrs)
        })
    }
}

/// What differs between the outbound clients.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// The whole request: connection, response headers and body.
    pub timeout: Duration,
    pub user_agent: &'static str,
    pub max_idle_per_host: usize,
}

/// An HTTP client whose requests pass the guard.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    allow_private_targets: bool,
}

impl Client {
    /// A request to `url`, unless its host is a refused literal.
    pub fn request(&self, method: reqwest::Method, url: &str) -> Result<reqwest::RequestBuilder, Blocked> {
        let parsed = Url::parse(url).map_err(|_| Blocked("not an absolute URL".into()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Blocked(format!("the scheme {} is not allowed", parsed.scheme())));
        }
        if !self.allow_private_targets {
            if let Some(reason) = literal_refusal(&parsed) {
                return Err(Blocked(reason));
            }
        }
        Ok(self.http.request(method, parsed))
    }

    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, Blocked> {
        self.request(reqwest::Method::GET, url)
    }

    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Blocked> {
        self.request(reqwest::Method::POST, url)
    }
}

/// Reads at most `limit` bytes of a response body, chunk by chunk; the rest
/// is never read. A read error ends the body early and is returned beside it.
pub async fn read_bounded(resp: &mut reqwest::Response, limit: usize) -> (Vec<u8>, Option<reqwest::Error>) {
    let mut buf: Vec<u8> = Vec::new();
    while buf.len() < limit {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let take = chunk.len().min(limit - buf.len());
                buf.extend_from_slice(&chunk[..take]);
            }
            Ok(None) => break,
            Err(e) => return (buf, Some(e)),
        }
    }
    (buf, None)
}

/// What kind of failure a request met, in two words.
pub fn kind(err: &reqwest::Error) -> &'static str {
    if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_redirect() {
        "redirect"
    } else {
        "request failed"
    }
}

/// A failed request in a few words, URL-free: `blocked: …` when the guard
/// refused it, else its kind and causes.
pub fn describe(err: &reqwest::Error) -> String {
    let mut chain: Vec<String> = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(b) = e.downcast_ref::<Blocked>() {
            return b.to_string();
        }
        let s = e.to_string();
        if !chain.iter().any(|c| c.contains(&s)) {
            chain.push(s);
        }
        source = e.source();
    }
    let kind = kind(err);
    if chain.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", chain.join(": "))
    }
}

impl App {
    /// Sets the outbound policy and rebuilds every outbound client under
    /// it. Like [`App::with_purge_config`], it starts a new invalidation
    /// channel: subscribe after.
    pub fn with_outbound(mut self, outbound: Outbound) -> App {
        self.webhook_runtime = Arc::new(crate::webhooks::Runtime::new(self.webhook_config(), &outbound));
        self.cache = Arc::new(crate::purge::CacheRuntime::new(self.purge_config().clone(), &outbound));
        self.feed_client = crate::feeds::pull_client(&outbound);
        self.outbound = outbound;
        self
    }

    pub fn outbound(&self) -> &Outbound {
        &self.outbound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> &'static str {
        match Outbound::default().check_url("url", raw) {
            Ok(_) => "ok",
            Err(e) => e.code,
        }
    }

    #[test]
    fn every_spelling_of_a_private_literal_is_refused() {
        for raw in [
            "http://127.0.0.1/", "http://0x7f000001/", "http://2130706433/", "http://0177.0.0.1/", "http://127.1/",
            "http://0x7f.1/", "http://127.0.0.1./", "http://0/", "http://0.0.0.0/", "http://[::]/", "http://[::1]/",
            "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[0:0:0:0:0:ffff:7f00:1]/", "http://[::127.0.0.1]/",
            "http://[2002:7f00:1::]/", "http://[64:ff9b::7f00:1]/", "http://[fd00::1]/", "http://[fe80::1]/",
            "http://169.254.169.254/latest/meta-data/", "http://[::ffff:169.254.169.254]/", "http://100.64.0.1/",
            "http://localhost/", "http://LOCALHOST./", "http://foo.localhost/", "ftp://example.com/", "file:///etc/passwd",
            "http://user:pw@example.com/", "http://user@example.com/", "gopher://example.com/",
        ] {
            assert_eq!(code(raw), "url_not_allowed", "{raw}");
        }
        assert!(Outbound::default().allowing_private_targets(true).check_url("url", "http://127.0.0.1:9/x").is_ok());
    }

    #[test]
    fn other_urls() {
        assert_eq!(Outbound::default().check_url("url", " https://example.com/hook ").unwrap().as_str(), "https://example.com/hook");
        assert_eq!(code("https://93.184.216.34/hook"), "ok");
        assert_eq!(code("example.com/hook"), "invalid_url");
        assert_eq!(code("https://example.com/#x"), "invalid_url");
        assert_eq!(code(""), "required");
        assert_eq!(code(&format!("https://example.com/{}", "a".repeat(MAX_URL_LEN))), "too_long");
    }

    #[tokio::test]
    async fn names_resolving_to_refused_addresses_are_refused_at_save_time_and_fetch_time() {
        use reqwest::dns::Resolve;
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let public: IpAddr = "93.184.216.34".parse().unwrap();
        let o = Outbound::default().with_static_host("inside.test", &[loopback]).with_static_host("mixed.test", &[public, loopback]);
        for name in ["inside.test", "mixed.test"] {
            let e = o.check_target("pull.url", &format!("http://{name}/feed.csv")).await.unwrap_err();
            assert_eq!((e.field.as_str(), e.code), ("pull.url", "url_not_allowed"), "{name}");
            let err = GuardedResolver { outbound: o.clone() }.resolve(name.parse().unwrap()).await.err().expect("refused");
            assert!(err.to_string().starts_with("blocked: "), "{err}");
        }
        let open = o.clone().allowing_private_targets(true);
        assert!(open.check_target("url", "http://inside.test/").await.is_ok());
        assert!(GuardedResolver { outbound: open }.resolve("inside.test".parse().unwrap()).await.is_ok());
        let err = GuardedResolver { outbound: Outbound::default() }.resolve("localhost".parse().unwrap()).await.err();
        assert!(err.is_some_and(|e| e.to_string().contains("not a public address")));
    }

    #[test]
    fn clients_refuse_literals_at_request_time() {
        let c = Outbound::default().client(ClientSettings {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            user_agent: "test",
            max_idle_per_host: 1,
        });
        assert!(c.get("http://[::1]:9/").unwrap_err().0.contains("loopback"));
        assert!(c.get("http://169.254.169.254/").is_err());
        assert!(c.post("file:///etc/passwd").is_err());
        assert!(c.get("https://93.184.216.34/").is_ok());
    }
}
