//! The gateway in front of a split deployment: [`ROUTES`] says which role serves each public path, and
//! [`caddyfile`] turns it, with the addresses of each role's instances, into the configuration of the gateway
//! (Caddy 2.6), printed by `synckit-server gateway`.
//!
//! The table is the one place a path is given a role: the server's tests check that each role's router serves
//! exactly the table's paths of that role, and that every path of the OpenAPI document is in it with the role of the
//! service that documents it, so a new endpoint cannot be served by one and forgotten by the other.
//!
//! What the generated gateway does, and why:
//! - Each path goes to its role's instances, round robin. The event stream is proxied unbuffered
//!   (`flush_interval -1`), so a "pull now" reaches the device as it is sent.
//! - Active health checks ask every instance's `/readyz` every second: an instance that is killed, or that lost an
//!   engine its role needs, is out of rotation within about a second, and back once it answers ready. They alone
//!   take instances out: Caddy 2.6's passive checks would count against the healthy instance the failed resend of a
//!   body (below) was aimed at, and with both instances of a role out, requests would wait for none.
//! - A request whose connection an instance refused reached nobody, so the gateway tries another instance, for up to
//!   2 s (which also covers a moment with no instance ready). Caddy 2.6 cannot send a request body a second time (the
//!   retry fails reading it, buffered or not), so such a request is answered `503 unavailable` with `Retry-After: 1`
//!   instead: the protocol's "not processed, try again", which the SDK retries for every kind of call. Bodiless
//!   requests (status, the event stream, key and device reads) are retried by the gateway itself.
//! - Anything else is `404 not_found`, as from the server. `/healthz` is answered by the gateway about itself;
//!   `/readyz` is each instance's own and is not forwarded.

use std::fmt::Write as _;
use std::net::SocketAddr;

use synckit_protocol::paths;

use crate::Role;

/// Who answers a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// The instances of one role (and of `all`).
    ByRole(Role),
    /// Every instance alike, whatever its role (the OpenAPI document): the gateway sends it to any of them.
    ByAny,
    /// Every instance, about itself (`/healthz`, `/readyz`): for the gateway's checks and orchestrators.
    ByEachAboutItself,
}

/// One public path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// As the routers write it, `{name}` standing for one segment.
    pub path: &'static str,
    pub served: Served,
    /// A long-lived response that must reach the client as it is written (server-sent events).
    pub streams: bool,
}

impl Route {
    const fn by(role: Role, path: &'static str) -> Self {
        Self { path, served: Served::ByRole(role), streams: false }
    }

    /// The path as a Caddy path matcher: from its first `{name}` on, a wildcard.
    pub fn matcher(&self) -> String {
        match self.path.find('{') {
            Some(at) => format!("{}*", &self.path[..at]),
            None => self.path.to_owned(),
        }
    }
}

/// Where the embedded blob store serves its signed URLs: [`paths::BLOBS_LOCAL`] and the object's key.
pub const BLOBS_LOCAL_OBJECT: &str = "/api/sync/blobs/local/{app}/{user}/{name}";

/// Every public path and who serves it.
pub const ROUTES: &[Route] = &[
    Route::by(Role::Auth, paths::ACCOUNTS_REGISTER),
    Route::by(Role::Auth, paths::ACCOUNTS_PRELOGIN),
    Route::by(Role::Auth, paths::ACCOUNTS_PASSWORD),
    Route::by(Role::Auth, paths::ACCOUNTS_KEYS),
    Route::by(Role::Auth, paths::ACCOUNTS_RECOVERY_KEY),
    Route::by(Role::Auth, paths::ACCOUNTS_RECOVERY),
    Route::by(Role::Auth, paths::ACCOUNTS_RECOVER),
    Route::by(Role::Auth, paths::ACCOUNTS_CONSOLE_AUTH),
    Route::by(Role::Auth, paths::APPS),
    Route::by(Role::Auth, paths::APP),
    Route::by(Role::Auth, paths::APP_REDIRECT_URIS),
    Route::by(Role::Auth, paths::APP_ROTATE_KEY),
    Route::by(Role::Auth, paths::APPS_QUOTE),
    Route::by(Role::Auth, paths::APP_PLAN),
    Route::by(Role::Auth, paths::APP_USAGE),
    Route::by(Role::Auth, paths::AUTH),
    Route::by(Role::Auth, paths::APP_INFO),
    Route::by(Role::Auth, paths::OAUTH_AUTHORIZE),
    Route::by(Role::Auth, paths::OAUTH_TOKEN),
    Route::by(Role::Auth, paths::OAUTH_METADATA),
    Route::by(Role::Auth, synckit_auth::OAUTH_ASSETS),
    Route::by(Role::Auth, synckit_auth::CONSOLE),
    Route::by(Role::Auth, synckit_auth::CONSOLE_ASSETS),
    Route::by(Role::Auth, paths::DEVICES),
    Route::by(Role::Auth, paths::DEVICE),
    Route::by(Role::Auth, paths::KEYS),
    Route::by(Role::Ingest, paths::PUSH),
    Route::by(Role::Ingest, paths::SUPERSEDE),
    Route::by(Role::Query, paths::PULL),
    Route::by(Role::Query, paths::STATUS),
    Route { path: paths::EVENTS, served: Served::ByRole(Role::Query), streams: true },
    Route::by(Role::Blob, paths::BLOBS_UPLOAD),
    Route::by(Role::Blob, paths::BLOBS_CONFIRM),
    Route::by(Role::Blob, paths::BLOBS_DOWNLOAD),
    Route::by(Role::Blob, paths::BLOB),
    Route::by(Role::Blob, BLOBS_LOCAL_OBJECT),
    Route { path: paths::OPENAPI, served: Served::ByAny, streams: false },
    Route { path: "/healthz", served: Served::ByEachAboutItself, streams: false },
    Route { path: "/readyz", served: Served::ByEachAboutItself, streams: false },
];

/// The route of `path` as the table writes it (`/api/sync/devices/{id}`), if any.
pub fn route(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|r| r.path == path)
}

/// The roles a gateway routes to, in the order its configuration lists them.
pub const SERVICE_ROLES: [Role; 4] = [Role::Auth, Role::Ingest, Role::Query, Role::Blob];

/// The instances of each role: `host:port` addresses.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    pub auth: Vec<String>,
    pub ingest: Vec<String>,
    pub query: Vec<String>,
    pub blob: Vec<String>,
}

impl Upstreams {
    pub fn of(&self, role: Role) -> &[String] {
        match role {
            Role::Auth => &self.auth,
            Role::Ingest => &self.ingest,
            Role::Query => &self.query,
            Role::Blob => &self.blob,
            Role::All => &[],
        }
    }

    /// Every instance once, in the order given.
    fn every(&self) -> Vec<&String> {
        let mut every: Vec<&String> = Vec::new();
        for role in SERVICE_ROLES {
            for upstream in self.of(role) {
                if !every.contains(&upstream) {
                    every.push(upstream);
                }
            }
        }
        every
    }
}

/// A gateway that cannot be generated: a role without instances, or an address that is not `host:port`.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GatewayError(String);

/// `host:port`, with a host of letters, digits, dots and dashes (or a bracketed IPv6 address) and a port: nothing
/// that could break out of the configuration's syntax.
fn check_address(address: &str) -> Result<(), GatewayError> {
    let bad = || GatewayError(format!("`{address}` is not an address: write host:port, e.g. 127.0.0.1:8081"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'),
    };
    if host_ok { Ok(()) } else { Err(bad()) }
}

/// How often, and how long, the gateway asks each instance's `/readyz`. The timeout is above the server's own bound
/// on a readiness check (2 s), so a slow engine shows as "down" in the answer rather than as a silent instance.
const HEALTH_INTERVAL: &str = "1s";
const HEALTH_TIMEOUT: &str = "3s";
/// How long a refused request is tried on other instances, and how long to wait between tries: well within a
/// client's attempt timeout, so that it gets an answer rather than giving up on the gateway.
const TRY_DURATION: &str = "2s";
const TRY_INTERVAL: &str = "250ms";

/// A Caddyfile (for Caddy 2.6) that listens on `listen` and routes every path of [`ROUTES`] to its role's instances.
pub fn caddyfile(listen: SocketAddr, upstreams: &Upstreams) -> Result<String, GatewayError> {
    for role in SERVICE_ROLES {
        if upstreams.of(role).is_empty() {
            return Err(GatewayError(format!("no {} instances: give --{} ADDR[,ADDR…]", role.name(), role.name())));
        }
        upstreams.of(role).iter().try_for_each(|a| check_address(a))?;
    }
    let mut out = String::new();
    let w = &mut out;
    let _ =
        writeln!(w, "# The SyncKit gateway, generated by `synckit-server gateway`: generate it again, do not edit.");
    let _ = writeln!(w, "# Routes: services/server/src/gateway.rs. Needs Caddy 2.6 or later.");
    let _ = writeln!(w, "{{\n\tadmin off\n\tauto_https off\n\tgrace_period 5s\n}}\n");
    let _ = writeln!(w, "http://:{} {{", listen.port());
    let _ = writeln!(w, "\tbind {}", listen.ip());

    for role in SERVICE_ROLES {
        for streams in [false, true] {
            let mut matchers: Vec<String> = ROUTES
                .iter()
                .filter(|r| r.served == Served::ByRole(role) && r.streams == streams)
                .map(Route::matcher)
                .collect();
            // `/api/apps/{id}` and the paths under it are one wildcard: each matcher once, in the table's order.
            let mut seen = std::collections::HashSet::new();
            matchers.retain(|m| seen.insert(m.clone()));
            if matchers.is_empty() {
                continue;
            }
            let label = if streams { format!("{}_streams", role.name()) } else { role.name().to_owned() };
            let upstreams: Vec<&String> = upstreams.of(role).iter().collect();
            proxy(w, &label, &matchers, &upstreams, streams);
        }
    }
    let any: Vec<String> = ROUTES.iter().filter(|r| r.served == Served::ByAny).map(Route::matcher).collect();
    proxy(w, "any", &any, &upstreams.every(), false);

    let _ = writeln!(w, "\n\t# The gateway's own liveness; each instance's /healthz and /readyz are its own.");
    let _ = writeln!(w, "\thandle /healthz {{");
    let _ = writeln!(w, "\t\theader Content-Type application/json");
    let _ = writeln!(w, "\t\trespond `{{\"status\":\"ok\"}}` 200");
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "\n\thandle {{");
    let _ = writeln!(w, "\t\theader Content-Type application/json");
    let _ = writeln!(
        w,
        "\t\trespond `{{\"error\":{{\"code\":\"not_found\",\"message\":\"no endpoint at this path\"}}}}` 404"
    );
    let _ = writeln!(w, "\t}}");

    let _ = writeln!(
        w,
        "\n\t# A request no instance took (refused connections, a body Caddy 2.6 cannot resend, no instance"
    );
    let _ = writeln!(w, "\t# ready): 503 unavailable, which every SyncKit client retries after Retry-After.");
    let _ = writeln!(w, "\thandle_errors {{");
    let _ = writeln!(
        w,
        "\t\t@unsent expression `{{http.error.status_code}} == 503 || {{http.error.message}}.contains(\"connection refused\") || {{http.error.message}}.contains(\"invalid Read on closed Body\")`"
    );
    let _ = writeln!(w, "\t\thandle @unsent {{");
    let _ = writeln!(w, "\t\t\theader Content-Type application/json");
    let _ = writeln!(w, "\t\t\theader Retry-After 1");
    let _ = writeln!(
        w,
        "\t\t\trespond `{{\"error\":{{\"code\":\"unavailable\",\"message\":\"no instance could take the request; try again\"}}}}` 503"
    );
    let _ = writeln!(w, "\t\t}}");
    let _ = writeln!(w, "\t}}");
    let _ = writeln!(w, "}}");
    Ok(out)
}

/// One `handle` block: the paths of `matchers` to `upstreams`, with the health checks and retries.
fn proxy(w: &mut String, label: &str, matchers: &[String], upstreams: &[&String], streams: bool) {
    let list = |items: &[&String]| items.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    let _ = writeln!(w, "\n\t@{label} path {}", matchers.join(" "));
    let _ = writeln!(w, "\thandle @{label} {{");
    let _ = writeln!(w, "\t\treverse_proxy {} {{", list(upstreams));
    let _ = writeln!(w, "\t\t\tlb_policy round_robin");
    let _ = writeln!(w, "\t\t\tlb_try_duration {TRY_DURATION}");
    let _ = writeln!(w, "\t\t\tlb_try_interval {TRY_INTERVAL}");
    let _ = writeln!(w, "\t\t\thealth_uri /readyz");
    let _ = writeln!(w, "\t\t\thealth_interval {HEALTH_INTERVAL}");
    let _ = writeln!(w, "\t\t\thealth_timeout {HEALTH_TIMEOUT}");
    let _ = writeln!(w, "\t\t\thealth_status 200");
    if streams {
        let _ = writeln!(w, "\t\t\tflush_interval -1");
    }
    let _ = writeln!(w, "\t\t}}");
    let _ = writeln!(w, "\t}}");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn paths_of(doc: utoipa::openapi::OpenApi) -> BTreeSet<String> {
        let doc = serde_json::to_value(doc).unwrap();
        doc["paths"].as_object().unwrap().keys().cloned().collect()
    }

    /// Every path each service documents is in the table with that service's role, and the table has no API path
    /// that no service documents: the OpenAPI document and the gateway agree on who serves what.
    #[test]
    fn every_documented_path_is_routed_to_the_role_that_documents_it() {
        use utoipa::OpenApi as _;
        let documented = [
            (Role::Auth, paths_of(synckit_auth::ApiDoc::openapi())),
            (Role::Ingest, paths_of(synckit_ingest::ApiDoc::openapi())),
            (Role::Query, paths_of(synckit_query::ApiDoc::openapi())),
            (Role::Blob, paths_of(synckit_blob::ApiDoc::openapi())),
        ];
        let mut all = BTreeSet::new();
        for (role, paths) in &documented {
            for path in paths {
                let route = route(path).unwrap_or_else(|| panic!("{path} ({role:?}) is not in the route table"));
                assert_eq!(route.served, Served::ByRole(*role), "{path}");
                all.insert(path.clone());
            }
        }
        let doc = crate::openapi();
        let whole: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(whole, all, "the served document is the services' documents together");
        for route in ROUTES {
            let documented = all.contains(route.path);
            // What browsers and the gateway ask for, not API clients: pages, assets, metadata, probes.
            let undocumented = [
                BLOBS_LOCAL_OBJECT,
                paths::OPENAPI,
                paths::OAUTH_AUTHORIZE,
                paths::OAUTH_METADATA,
                synckit_auth::OAUTH_ASSETS,
                synckit_auth::CONSOLE,
                synckit_auth::CONSOLE_ASSETS,
                "/healthz",
                "/readyz",
            ]
            .contains(&route.path);
            assert!(documented != undocumented, "{}: documented {documented}", route.path);
        }
    }

    #[test]
    fn table_paths_are_the_protocols() {
        assert!(BLOBS_LOCAL_OBJECT.starts_with(&format!("{}/", paths::BLOBS_LOCAL)));
        for path in paths::ALL {
            assert!(route(path).is_some(), "{path}");
        }
        let unique: BTreeSet<&str> = ROUTES.iter().map(|r| r.path).collect();
        assert_eq!(unique.len(), ROUTES.len(), "each path once");
        let streams: Vec<&str> = ROUTES.iter().filter(|r| r.streams).map(|r| r.path).collect();
        assert_eq!(streams, [paths::EVENTS]);
    }

    fn upstreams() -> Upstreams {
        Upstreams {
            auth: vec!["127.0.0.1:9001".into()],
            ingest: vec!["127.0.0.1:9002".into(), "127.0.0.1:9003".into()],
            query: vec!["127.0.0.1:9004".into(), "127.0.0.1:9005".into()],
            blob: vec!["127.0.0.1:9006".into()],
        }
    }

    #[test]
    fn every_role_needs_instances_and_addresses_are_checked() {
        let listen = "127.0.0.1:8080".parse().unwrap();
        let mut missing = upstreams();
        missing.query.clear();
        let err = caddyfile(listen, &missing).unwrap_err().to_string();
        assert!(err.contains("--query"), "{err}");
        for bad in ["127.0.0.1", "host:0", "a b:80", "h:80 {", "[::1:80", "x}:80", ""] {
            let mut wrong = upstreams();
            wrong.blob = vec![bad.into()];
            assert!(caddyfile(listen, &wrong).is_err(), "{bad:?} accepted");
        }
        for good in ["[::1]:8080", "query-1.internal:8081", "10.0.0.7:8080"] {
            let mut right = upstreams();
            right.blob = vec![good.into()];
            assert!(caddyfile(listen, &right).is_ok(), "{good:?} refused");
        }
    }

    /// The event stream's block, and only it, is unbuffered; every block health-checks `/readyz`.
    #[test]
    fn the_event_stream_is_unbuffered_and_every_pool_is_health_checked() {
        let text = caddyfile("127.0.0.1:8080".parse().unwrap(), &upstreams()).unwrap();
        let blocks: Vec<&str> = text.split("\n\t@").skip(1).collect();
        assert_eq!(blocks.len(), 6, "auth, ingest, query, query's streams, blob, any:\n{text}");
        for block in blocks {
            assert!(block.contains("health_uri /readyz"), "{block}");
            assert_eq!(block.contains("flush_interval -1"), block.starts_with("query_streams "), "{block}");
        }
        assert!(text.contains("@query_streams path /api/sync/events\n"), "{text}");
        assert!(text.contains("reverse_proxy 127.0.0.1:9004 127.0.0.1:9005 {"), "{text}");
        assert!(text.contains(" /api/sync/devices/* "), "{text}");
        assert_eq!(text.matches(" /api/apps/*").count(), 1, "{text}");
        assert!(text.contains("@blob path /api/sync/blobs/upload /api/sync/blobs/confirm /api/sync/blobs/download /api/sync/blobs/* /api/sync/blobs/local/*\n"), "{text}");
    }
}
