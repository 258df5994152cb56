//! Realistic span rows, as agents would send them from a small production
//! deployment: 12 hosts with an agent each, 50 services (HTTP/1.1 APIs,
//! gRPC, an HTTP/2 proxy, MySQL, PostgreSQL, Redis, Kafka, MQTT, DNS; some
//! of them managed services with no agent, seen only from their clients),
//! about 500 endpoints, calls picked with a skewed (Zipf-like) popularity.
//!
//! Each call gives the rows the agents really produce: a client-side row on
//! the caller's host and a server-side row on the callee's host (one row
//! when only one end has an agent), sharing the TCP sequence numbers of the
//! connection they travelled on. Tags are encoded as the agent's `Encoder`
//! does: the side observed gets the host, the process (`comm`) and the
//! service (the process name); the far side, on another host, gets only its
//! address as service (`ip:port` for a server, `ip` for a client) and no
//! process or host. Strings have the lengths real ones have: cloud host
//! names (~42 bytes), paths with ids and query strings, SQL with literals,
//! Redis keys with hex ids, W3C trace ids, UUID request ids, user agents.
//!
//! Start times increase over the span of time asked for (a day or two),
//! with jitter; about 2.4 % of calls are server errors, 3 % client errors,
//! 0.4 % timeouts. Everything is a pure function of the seed.

use causeway_model::tags::{tag_id, TagKind};
use causeway_model::wire::{Batch, SpanRow, Tag};
use causeway_model::{L7Protocol, ObservationPoint, ResponseStatus};
use causeway_server::schema::{span_id, StoredSpan};
use causeway_server::store::WriteBatch;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

/// splitmix64: small, fast, good enough for test data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
    /// Log-normal-ish around `median` (factor spread `sigma` in natural log).
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        // Sum of 4 uniforms: close enough to a normal for latencies.
        let n = (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 1.732;
        median * (n * sigma).exp()
    }
    fn hex(&mut self, out: &mut String, digits: usize) {
        const H: &[u8; 16] = b"0123456789abcdef";
        let mut v = self.next();
        for i in 0..digits {
            if i % 16 == 15 {
                v = self.next();
            }
            out.push(H[(v & 15) as usize] as char);
            v >>= 4;
        }
    }
    fn uuid(&mut self) -> String {
        let mut s = String::with_capacity(36);
        for (i, n) in [8, 4, 4, 4, 12].into_iter().enumerate() {
            if i > 0 {
                s.push('-');
            }
            self.hex(&mut s, n);
        }
        s
    }
}

/// What a service is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// An application: serves HTTP or gRPC, calls others.
    App,
    /// A server that only answers (database, cache, broker, resolver).
    Backend,
    /// Called from outside the cluster (browsers, a load balancer).
    Edge,
}

#[derive(Clone, Debug)]
struct Service {
    /// The process name (`comm`, at most 15 bytes), also the service tag.
    comm: &'static str,
    protocol: L7Protocol,
    port: u16,
    role: Role,
    /// Runs on a host with an agent.
    agent: bool,
    host: usize,
    ip: String,
    pid: u32,
    endpoints: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Endpoint {
    service: usize,
    request_type: &'static str,
    /// The folded endpoint; `{id}`, `?`, `{hex}` in `template` get values.
    endpoint: String,
    template: String,
    domain: String,
    /// Median latency.
    median_us: f64,
    request_length: u64,
    response_length: u64,
}

/// One TCP connection between a client and a server service.
#[derive(Clone, Copy, Debug)]
struct Conn {
    client_socket: u64,
    server_socket: u64,
    src_port: u16,
    req_seq: u32,
    resp_seq: u32,
    client_tid: u32,
    server_tid: u32,
}

const SERVICES: &[(&str, L7Protocol, u16, Role, bool)] = {
    use L7Protocol::*;
    use Role::*;
    &[
        ("nginx", Http, 443, Edge, true),
        ("api-gateway", Http, 8080, Edge, true),
        ("web-frontend", Http, 3000, Edge, true),
        ("checkout-api", Http, 8080, App, true),
        ("cart-svc", Http, 8080, App, true),
        ("catalog-svc", Http, 8080, App, true),
        ("users-api", Http, 8080, App, true),
        ("auth-svc", Http, 9000, App, true),
        ("search-api", Http, 8080, App, true),
        ("orders-api", Http, 8080, App, true),
        ("payments-api", Http, 8443, App, true),
        ("shipping-svc", Http, 8080, App, true),
        ("inventory-svc", Http, 8080, App, true),
        ("pricing-svc", Http, 8080, App, true),
        ("reviews-api", Http, 5000, App, true),
        ("notify-svc", Http, 8080, App, true),
        ("email-worker", Http, 8000, App, true),
        ("ads-svc", Http, 8080, App, true),
        ("reco-svc", Http, 8000, App, true),
        ("currency-svc", Http, 7000, App, true),
        ("billing-api", Http, 8080, App, true),
        ("profile-svc", Http, 8080, App, true),
        ("media-api", Http, 8080, App, true),
        ("geo-svc", Http, 8080, App, true),
        ("coupon-svc", Http, 8080, App, true),
        ("wishlist-svc", Http, 8080, App, true),
        ("audit-svc", Http, 8080, App, true),
        ("report-worker", Http, 8080, App, true),
        ("admin-api", Http, 8080, App, true),
        ("loyalty-svc", Http, 8080, App, true),
        ("ledger-grpc", Grpc, 50051, App, true),
        ("fraud-grpc", Grpc, 50051, App, true),
        ("rank-grpc", Grpc, 50051, App, true),
        ("quote-grpc", Grpc, 50051, App, true),
        ("tax-grpc", Grpc, 50051, App, true),
        ("envoy", Http2, 15001, App, true),
        ("mysqld", Mysql, 3306, Backend, true),
        ("mariadbd", Mysql, 3306, Backend, true),
        ("postgres", Postgresql, 5432, Backend, true),
        ("pgbouncer", Postgresql, 6432, Backend, true),
        ("redis-server", Redis, 6379, Backend, true),
        ("redis-sessions", Redis, 6380, Backend, true),
        ("mosquitto", Mqtt, 1883, Backend, true),
        ("coredns", Dns, 53, Backend, true),
        // Managed services: no agent where they run.
        ("rds-orders", Mysql, 3306, Backend, false),
        ("aurora-pg", Postgresql, 5432, Backend, false),
        ("elasticache", Redis, 6379, Backend, false),
        ("msk-kafka-1", Kafka, 9092, Backend, false),
        ("msk-kafka-2", Kafka, 9092, Backend, false),
        ("vpc-resolver", Dns, 53, Backend, false),
    ]
};

const NOUNS: &[&str] = &[
    "users",
    "orders",
    "items",
    "carts",
    "products",
    "payments",
    "invoices",
    "sessions",
    "addresses",
    "reviews",
    "coupons",
    "shipments",
    "accounts",
    "tokens",
    "images",
    "prices",
    "stocks",
    "quotes",
    "reports",
    "events",
    "notifications",
    "profiles",
    "categories",
];
const SUBS: &[&str] = &[
    "items", "history", "status", "lines", "refunds", "avatar", "settings", "summary",
];
const TABLES: &[&str] = &[
    "users",
    "orders",
    "order_lines",
    "products",
    "payments",
    "inventory",
    "sessions",
    "audit_log",
    "coupons",
    "shipments",
    "prices",
    "accounts",
];
const AGENTS_UA: &[&str] = &[
    "Go-http-client/1.1",
    "python-requests/2.31.0",
    "okhttp/4.12.0",
    "axios/1.6.7",
    "Java-http-client/17.0.9",
    "curl/7.88.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
];

/// The seed of the deployment every generator uses: the same hosts,
/// services and endpoints in every run.
pub const WORLD_SEED: u64 = 2023;

/// The deployment: hosts, services, endpoints, connections.
pub struct World {
    pub hosts: Vec<String>,
    services: Vec<Service>,
    endpoints: Vec<Endpoint>,
    /// Cumulative endpoint weights (Zipf-like popularity).
    cumulative: Vec<f64>,
    /// Indices of services that call others.
    callers: Vec<usize>,
    conns: HashMap<(usize, usize), Vec<Conn>>,
    /// Every tag string by (kind, id), for the string-tags variant.
    names: HashMap<(TagKind, u64), String>,
    next_socket: u64,
}

fn ip_of(rng: &mut Rng, net: u8) -> String {
    format!("10.{net}.{}.{}", rng.below(64), 2 + rng.below(250))
}

impl World {
    pub fn new(seed: u64) -> World {
        let mut rng = Rng::new(seed);
        let hosts: Vec<String> = (0..12)
            .map(|_| {
                format!(
                    "ip-10-0-{}-{}.eu-west-1.compute.internal",
                    rng.below(64),
                    2 + rng.below(250)
                )
            })
            .collect();
        let mut services: Vec<Service> = SERVICES
            .iter()
            .enumerate()
            .map(|(i, (comm, protocol, port, role, agent))| Service {
                comm,
                protocol: *protocol,
                port: *port,
                role: *role,
                agent: *agent,
                host: i % hosts.len(),
                ip: ip_of(&mut rng, if *agent { 1 } else { 2 }),
                pid: 1000 + rng.below(60_000) as u32,
                endpoints: Vec::new(),
            })
            .collect();
        let mut endpoints = Vec::new();
        for (si, s) in services.iter_mut().enumerate() {
            let n = match s.protocol {
                L7Protocol::Http => 12,
                L7Protocol::Dns | L7Protocol::Kafka => 4,
                L7Protocol::Mqtt => 3,
                _ => 9,
            };
            for k in 0..n {
                let e = make_endpoint(&mut rng, si, s, k);
                s.endpoints.push(endpoints.len());
                endpoints.push(e);
            }
        }
        // Popularity: Zipf (s = 0.9) over a shuffled endpoint order.
        let mut order: Vec<usize> = (0..endpoints.len()).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut weight = vec![0.0; endpoints.len()];
        for (rank, e) in order.iter().enumerate() {
            weight[*e] = 1.0 / ((rank + 1) as f64).powf(0.9);
        }
        let mut acc = 0.0;
        let cumulative = weight
            .iter()
            .map(|w| {
                acc += w;
                acc
            })
            .collect();
        let callers = services
            .iter()
            .enumerate()
            .filter(|(_, s)| s.role != Role::Backend && s.agent)
            .map(|(i, _)| i)
            .collect();
        World {
            hosts,
            services,
            endpoints,
            cumulative,
            callers,
            conns: HashMap::new(),
            names: HashMap::new(),
            next_socket: 1 << 32,
        }
    }

    pub fn services(&self) -> usize {
        self.services.len()
    }

    pub fn endpoints(&self) -> usize {
        self.endpoints.len()
    }

    /// The service names users would filter by (agent-side names).
    pub fn service_names(&self) -> Vec<&'static str> {
        self.services
            .iter()
            .filter(|s| s.agent)
            .map(|s| s.comm)
            .collect()
    }

    /// The string of a tag id this world produced ("" for 0).
    pub fn name(&self, kind: TagKind, id: u64) -> &str {
        if id == 0 {
            return "";
        }
        self.names.get(&(kind, id)).map_or("", String::as_str)
    }

    fn tag(&mut self, kind: TagKind, value: &str) -> u64 {
        let id = tag_id(kind, value);
        if id != 0 && !self.names.contains_key(&(kind, id)) {
            self.names.insert((kind, id), value.to_owned());
        }
        id
    }

    fn conn(&mut self, rng: &mut Rng, client: usize, server: usize) -> Conn {
        let pool = self.conns.entry((client, server)).or_default();
        if pool.len() < 4 {
            self.next_socket += 1 + rng.below(50);
            let c = Conn {
                client_socket: self.next_socket,
                server_socket: self.next_socket + 7_000_000,
                src_port: 32768 + rng.below(28_000) as u16,
                req_seq: rng.next() as u32,
                resp_seq: rng.next() as u32,
                client_tid: rng.below(200) as u32,
                server_tid: rng.below(200) as u32,
            };
            pool.push(c);
            return c;
        }
        let i = rng.below(pool.len() as u64) as usize;
        // Now and then a connection is closed and a new one opened.
        if rng.chance(0.001) {
            self.next_socket += 1 + rng.below(50);
            pool[i].client_socket = self.next_socket;
            pool[i].server_socket = self.next_socket + 7_000_000;
            pool[i].src_port = 32768 + rng.below(28_000) as u16;
        }
        pool[i]
    }
}

fn make_endpoint(rng: &mut Rng, si: usize, s: &Service, k: usize) -> Endpoint {
    let comm = s.comm;
    let (request_type, template, endpoint, domain, median_us, req, resp): (
        &'static str,
        String,
        String,
        String,
        f64,
        u64,
        u64,
    ) = match s.protocol {
        L7Protocol::Http | L7Protocol::Http2 => {
            let noun = rng.pick(NOUNS);
            let sub = rng.pick(SUBS);
            let (path, ep) = match k % 4 {
                0 => (format!("/api/v1/{noun}"), format!("/api/v1/{noun}")),
                1 => (
                    format!("/api/v1/{noun}/{{id}}"),
                    format!("/api/v1/{noun}/{{id}}"),
                ),
                2 => (
                    format!("/api/v2/{noun}/{{id}}/{sub}"),
                    format!("/api/v2/{noun}/{{id}}/{sub}"),
                ),
                _ => (
                    format!("/v1/{noun}/search?q={{hex}}&page={{id}}&limit=50"),
                    format!("/v1/{noun}/search"),
                ),
            };
            let method = match k % 5 {
                0 | 1 | 3 => "GET",
                2 => "POST",
                _ => "PUT",
            };
            (
                method,
                path,
                ep,
                format!("{comm}.prod.svc.cluster.local"),
                rng.lognormal(15_000.0, 0.6),
                200 + rng.below(900),
                300 + rng.below(6000),
            )
        }
        L7Protocol::Grpc => {
            let svc: String = comm
                .split('-')
                .next()
                .unwrap_or(comm)
                .chars()
                .enumerate()
                .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
                .collect();
            let verbs = ["Get", "List", "Create", "Update", "Check", "Compute"];
            let noun = rng.pick(NOUNS);
            let m = format!(
                "/shop.{svc}.v1.{svc}Service/{}{}",
                verbs[k % 6],
                capital(noun)
            );
            (
                "POST",
                m.clone(),
                m,
                format!("{comm}:50051"),
                rng.lognormal(4_000.0, 0.5),
                80 + rng.below(400),
                60 + rng.below(2000),
            )
        }
        L7Protocol::Mysql | L7Protocol::Postgresql => {
            let t = rng.pick(TABLES);
            let (sql, ep) = match k % 6 {
                0 => (
                    format!("SELECT id, name, email, created_at FROM {t} WHERE id = {{id}}"),
                    format!("SELECT id, name, email, created_at FROM {t} WHERE id = ?"),
                ),
                1 => (
                    format!("SELECT * FROM {t} WHERE user_id = {{id}} AND status = 'active' ORDER BY created_at DESC LIMIT 20"),
                    format!("SELECT * FROM {t} WHERE user_id = ? AND status = ? ORDER BY created_at DESC LIMIT ?"),
                ),
                2 => (
                    format!("UPDATE {t} SET updated_at = NOW(), version = version + 1 WHERE id = {{id}}"),
                    format!("UPDATE {t} SET updated_at = NOW(), version = version + ? WHERE id = ?"),
                ),
                3 => (
                    format!("INSERT INTO {t} (id, user_id, payload) VALUES ({{id}}, {{id}}, '{{hex}}')"),
                    format!("INSERT INTO {t} (id, user_id, payload) VALUES (?)"),
                ),
                4 => (
                    format!("SELECT count(*) FROM {t} WHERE created_at > '2026-11-{{id}}'"),
                    format!("SELECT count(*) FROM {t} WHERE created_at > ?"),
                ),
                _ => ("COMMIT".to_owned(), "COMMIT".to_owned()),
            };
            let rt = if s.protocol == L7Protocol::Mysql {
                "COM_QUERY"
            } else {
                "QUERY"
            };
            (
                rt,
                sql,
                ep,
                "shop".to_owned(),
                rng.lognormal(1_500.0, 0.8),
                60 + rng.below(200),
                40 + rng.below(3000),
            )
        }
        L7Protocol::Redis => {
            let cmds = [
                "GET", "SET", "HGETALL", "EXPIRE", "INCR", "ZADD", "DEL", "HSET", "MGET",
            ];
            let prefix = rng.pick(&["session", "cart", "rate", "user", "lock", "feed"]);
            let cmd = cmds[k % cmds.len()];
            (
                cmd,
                format!("{prefix}:{{hex}}"),
                cmd.to_owned(),
                String::new(),
                rng.lognormal(250.0, 0.4),
                30 + rng.below(120),
                5 + rng.below(600),
            )
        }
        L7Protocol::Kafka => {
            let topic = format!("{}.events.v{}", rng.pick(NOUNS), 1 + k % 3);
            let api = if k % 2 == 0 { "Produce" } else { "Fetch" };
            (
                api,
                topic.clone(),
                topic,
                format!("{}-producer", rng.pick(NOUNS)),
                rng.lognormal(3_000.0, 0.7),
                200 + rng.below(4000),
                60 + rng.below(8000),
            )
        }
        L7Protocol::Mqtt => {
            let topic = format!("devices/{{id}}/{}", ["telemetry", "status", "cmd"][k % 3]);
            (
                "PUBLISH",
                topic.clone(),
                topic.replace("{id}", "+"),
                format!("sensor-{}", rng.below(1000)),
                rng.lognormal(800.0, 0.4),
                40 + rng.below(200),
                4,
            )
        }
        _ => {
            // DNS
            let name = format!(
                "{}.prod.svc.cluster.local",
                SERVICES[rng.below(SERVICES.len() as u64) as usize].0
            );
            let qtype = ["A", "AAAA", "A", "SRV"][k % 4];
            (
                qtype,
                name.clone(),
                name,
                String::new(),
                rng.lognormal(400.0, 0.5),
                60 + rng.below(40),
                80 + rng.below(120),
            )
        }
    };
    Endpoint {
        service: si,
        request_type,
        endpoint,
        template,
        domain,
        median_us,
        request_length: req,
        response_length: resp,
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// A row and the host whose agent observed it.
pub struct GenRow {
    pub host: usize,
    pub row: SpanRow,
}

/// Rows in increasing start time from `from_us` to `to_us`.
pub struct Generator {
    pub world: World,
    rng: Rng,
    t: f64,
    step: f64,
    pending: Vec<GenRow>,
}

impl Generator {
    /// About `rows` rows spread over `[from_us, to_us)`, from the one
    /// deployment ([`WORLD_SEED`]); `seed` picks the calls.
    pub fn new(seed: u64, from_us: u64, to_us: u64, rows: u64) -> Generator {
        Generator {
            world: World::new(WORLD_SEED),
            rng: Rng::new(seed.wrapping_mul(31).wrapping_add(7)),
            t: from_us as f64,
            // Time per row: a call moves the clock on by its rows' share.
            step: (to_us - from_us) as f64 / rows.max(1) as f64,
            pending: Vec::new(),
        }
    }

    /// The next row.
    pub fn row(&mut self) -> GenRow {
        while self.pending.is_empty() {
            self.call();
        }
        self.pending.pop().expect("a call makes rows")
    }

    /// One call: its client-side and server-side rows, pushed so that
    /// `pending.pop()` yields them in start-time order.
    fn call(&mut self) {
        let rng = &mut self.rng;
        let start = self.t as u64;
        let ei = {
            let total = *self.world.cumulative.last().expect("endpoints");
            let x = rng.unit() * total;
            self.world.cumulative.partition_point(|c| *c < x)
        }
        .min(self.world.endpoints.len() - 1);
        let e = self.world.endpoints[ei].clone();
        let server = e.service;
        let sv = self.world.services[server].clone();
        // The caller: outside (edge services, 30 % of their calls) or an
        // application other than the server.
        let client = if sv.role == Role::Edge && rng.chance(0.3) {
            None
        } else {
            let callers = &self.world.callers;
            let i = rng.below(callers.len() as u64) as usize;
            // Not itself: the next caller instead.
            Some(if callers[i] == server {
                callers[(i + 1) % callers.len()]
            } else {
                callers[i]
            })
        };
        let cl = client.map(|c| self.world.services[c].clone());
        // The request's values.
        let mut resource = String::with_capacity(e.template.len() + 32);
        let mut rest = e.template.as_str();
        while let Some(i) = rest.find('{') {
            resource.push_str(&rest[..i]);
            let after = &rest[i..];
            if let Some(tail) = after.strip_prefix("{id}") {
                let _ = write!(resource, "{}", 1 + rng.below(2_000_000));
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("{hex}") {
                rng.hex(&mut resource, 24);
                rest = tail;
            } else {
                resource.push('{');
                rest = &after[1..];
            }
        }
        resource.push_str(rest);
        // Outcome.
        let x = rng.unit();
        let status = if x < 0.004 {
            ResponseStatus::Timeout
        } else if x < 0.028 {
            ResponseStatus::ServerError
        } else if x < 0.058 {
            ResponseStatus::ClientError
        } else {
            ResponseStatus::Ok
        };
        let mut duration = rng.lognormal(e.median_us, 0.7).max(20.0) as u64;
        if status == ResponseStatus::Timeout {
            duration = 30_000_000 + rng.below(5_000_000);
        } else if status == ResponseStatus::ServerError && rng.chance(0.5) {
            duration *= 4;
        }
        let (code, exception, result) = outcome(rng, sv.protocol, status);
        let request_id = match sv.protocol {
            L7Protocol::Dns => Some(rng.below(65536)),
            L7Protocol::Http2 | L7Protocol::Grpc => Some(1 + 2 * rng.below(500)),
            L7Protocol::Kafka => Some(rng.below(1 << 31)),
            L7Protocol::Mqtt => Some(1 + rng.below(65535)),
            _ => None,
        };
        let traced = matches!(
            sv.protocol,
            L7Protocol::Http | L7Protocol::Http2 | L7Protocol::Grpc
        ) && rng.chance(0.35);
        let mut trace_id = String::new();
        let mut span = String::new();
        let mut parent = String::new();
        if traced {
            rng.hex(&mut trace_id, 32);
            rng.hex(&mut span, 16);
            if rng.chance(0.7) {
                rng.hex(&mut parent, 16);
            }
        }
        let xrid = if sv.protocol == L7Protocol::Http && rng.chance(0.25) {
            rng.uuid()
        } else {
            String::new()
        };
        let user_agent = if matches!(sv.protocol, L7Protocol::Http | L7Protocol::Http2) {
            let ua = if client.is_none() {
                &AGENTS_UA[5 + rng.below(3) as usize]
            } else {
                rng.pick(&AGENTS_UA[..5])
            };
            (*ua).to_owned()
        } else {
            String::new()
        };
        let client_ip = cl
            .as_ref()
            .map(|c| c.ip.clone())
            .unwrap_or_else(|| format!("10.0.0.{}", 10 + rng.below(4)));
        let conn = self.world.conn(rng, client.unwrap_or(usize::MAX), server);
        let req_len = e.request_length + rng.below(e.request_length / 4 + 1);
        let resp_len = if status == ResponseStatus::Timeout {
            0
        } else {
            e.response_length + rng.below(e.response_length / 2 + 1)
        };
        let base = SpanRow {
            protocol: sv.protocol.code(),
            response_status: status.code(),
            l4_protocol: if sv.protocol == L7Protocol::Dns {
                17
            } else {
                6
            },
            version: match sv.protocol {
                L7Protocol::Http => "1.1",
                L7Protocol::Http2 | L7Protocol::Grpc => "2",
                L7Protocol::Mqtt => "5",
                L7Protocol::Redis => "2",
                _ => "",
            }
            .to_owned(),
            is_tls: sv.port == 443 || sv.port == 8443,
            src_ip: client_ip.clone(),
            src_port: if sv.protocol == L7Protocol::Dns {
                30000 + rng.below(30000) as u32
            } else {
                conn.src_port as u32
            },
            dst_ip: sv.ip.clone(),
            dst_port: sv.port as u32,
            request_type: e.request_type.to_owned(),
            request_domain: e.domain.clone(),
            request_resource: resource,
            endpoint: e.endpoint.clone(),
            request_id,
            exception,
            result,
            user_agent,
            response_code: code,
            request_length: req_len,
            response_length: resp_len,
            req_tcp_seq: conn.req_seq,
            resp_tcp_seq: conn.resp_seq,
            x_request_id: xrid.clone(),
            x_request_id_resp: xrid,
            trace_id,
            span_id: span,
            parent_span_id: parent,
            ..SpanRow::default()
        };
        if let Some(pool) = self
            .world
            .conns
            .get_mut(&(client.unwrap_or(usize::MAX), server))
        {
            for c in pool.iter_mut() {
                if c.client_socket == conn.client_socket {
                    c.req_seq = c.req_seq.wrapping_add(req_len as u32);
                    c.resp_seq = c.resp_seq.wrapping_add(resp_len as u32);
                }
            }
        }
        let same_host = cl.as_ref().is_some_and(|c| c.host == sv.host);
        let mut rows = Vec::with_capacity(2);
        // The server side, observed in the server process.
        if sv.agent {
            let trace = rng.next() | 1;
            let host = self
                .world
                .tag(TagKind::Host, &self.world.hosts[sv.host].clone());
            let mut r = base.clone();
            r.observation_point = ObservationPoint::Server.code();
            r.start_time_us = start + 40 + rng.below(300);
            r.end_time_us = r.start_time_us + duration.saturating_sub(200).max(10);
            r.pid = sv.pid;
            r.tid_req = sv.pid + conn.server_tid;
            r.tid_resp = r.tid_req;
            r.socket_id = conn.server_socket;
            r.syscall_trace_id_req = trace;
            r.syscall_trace_id_resp = trace + 1;
            r.pid_1 = sv.pid;
            r.host_1 = host;
            r.process_1 = self.world.tag(TagKind::Process, sv.comm);
            r.service_1 = self.world.tag(TagKind::Service, sv.comm);
            match (&cl, same_host) {
                (Some(c), true) => {
                    r.pid_0 = c.pid;
                    r.host_0 = host;
                    r.process_0 = self.world.tag(TagKind::Process, c.comm);
                    r.service_0 = self.world.tag(TagKind::Service, c.comm);
                }
                _ => r.service_0 = self.world.tag(TagKind::Service, &client_ip),
            }
            rows.push(GenRow {
                host: sv.host,
                row: r,
            });
        }
        // The client side, observed in the client process.
        if let Some(c) = cl.as_ref().filter(|c| c.agent) {
            let host = self
                .world
                .tag(TagKind::Host, &self.world.hosts[c.host].clone());
            let mut r = base;
            r.observation_point = ObservationPoint::Client.code();
            r.start_time_us = start;
            r.end_time_us = start + duration;
            r.pid = c.pid;
            r.tid_req = c.pid + conn.client_tid;
            r.tid_resp = r.tid_req;
            r.socket_id = conn.client_socket;
            r.syscall_trace_id_req = if rng.chance(0.6) { rng.next() | 1 } else { 0 };
            r.pid_0 = c.pid;
            r.host_0 = host;
            r.process_0 = self.world.tag(TagKind::Process, c.comm);
            r.service_0 = self.world.tag(TagKind::Service, c.comm);
            if same_host {
                r.pid_1 = sv.pid;
                r.host_1 = host;
                r.process_1 = self.world.tag(TagKind::Process, sv.comm);
                r.service_1 = self.world.tag(TagKind::Service, sv.comm);
            } else {
                let addr = format!("{}:{}", sv.ip, sv.port);
                r.service_1 = self.world.tag(TagKind::Service, &addr);
            }
            rows.push(GenRow {
                host: c.host,
                row: r,
            });
        }
        // Client first (it starts first): pop() takes from the end.
        self.t += self.step * rows.len() as f64 * 2.0 * self.rng.unit();
        self.pending.extend(rows);
    }
}

/// (response code, exception, result) of an outcome.
fn outcome(rng: &mut Rng, p: L7Protocol, status: ResponseStatus) -> (Option<i32>, String, String) {
    use ResponseStatus::*;
    if status == Timeout {
        return (None, String::new(), String::new());
    }
    match p {
        L7Protocol::Http | L7Protocol::Http2 => {
            let code = match status {
                Ok => *rng.pick(&[200, 200, 200, 200, 201, 204, 304]),
                ClientError => *rng.pick(&[400, 401, 403, 404, 404, 409, 429]),
                _ => *rng.pick(&[500, 502, 503, 504]),
            };
            let exc = match code {
                500 => "Internal Server Error",
                502 => "Bad Gateway",
                503 => "Service Unavailable",
                504 => "Gateway Timeout",
                404 => "Not Found",
                429 => "Too Many Requests",
                _ => "",
            };
            (Some(code), exc.to_owned(), String::new())
        }
        L7Protocol::Grpc => {
            let code = match status {
                Ok => 0,
                ClientError => *rng.pick(&[3, 5, 7]),
                _ => *rng.pick(&[13, 14, 4]),
            };
            let exc = match code {
                0 => "",
                5 => "NOT_FOUND: no such entity",
                14 => "UNAVAILABLE: upstream connect error or disconnect/reset before headers",
                13 => "INTERNAL: java.lang.NullPointerException",
                _ => "INVALID_ARGUMENT: field is required",
            };
            (Some(code), exc.to_owned(), String::new())
        }
        L7Protocol::Mysql => match status {
            Ok => (Some(0), String::new(), String::new()),
            ClientError => (
                Some(1062),
                format!("Duplicate entry '{}' for key 'PRIMARY'", rng.below(100_000)),
                String::new(),
            ),
            _ => (
                Some(1213),
                "Deadlock found when trying to get lock; try restarting transaction".to_owned(),
                String::new(),
            ),
        },
        L7Protocol::Postgresql => match status {
            Ok => (Some(0), String::new(), String::new()),
            ClientError => (
                Some(23505),
                "duplicate key value violates unique constraint \"orders_pkey\"".to_owned(),
                String::new(),
            ),
            _ => (
                Some(57014),
                "canceling statement due to statement timeout".to_owned(),
                String::new(),
            ),
        },
        L7Protocol::Redis => match status {
            Ok => (None, String::new(), String::new()),
            ClientError => (
                None,
                "WRONGTYPE Operation against a key holding the wrong kind of value".to_owned(),
                String::new(),
            ),
            _ => (
                None,
                "OOM command not allowed when used memory > 'maxmemory'.".to_owned(),
                String::new(),
            ),
        },
        L7Protocol::Dns => match status {
            Ok => (
                Some(0),
                String::new(),
                format!("10.1.{}.{}", rng.below(64), 2 + rng.below(250)),
            ),
            ClientError => (Some(3), "NXDOMAIN".to_owned(), String::new()),
            _ => (Some(2), "SERVFAIL".to_owned(), String::new()),
        },
        L7Protocol::Kafka => match status {
            Ok => (Some(0), String::new(), String::new()),
            ClientError => (
                Some(3),
                "UNKNOWN_TOPIC_OR_PARTITION".to_owned(),
                String::new(),
            ),
            _ => (Some(6), "NOT_LEADER_OR_FOLLOWER".to_owned(), String::new()),
        },
        _ => match status {
            Ok => (Some(0), String::new(), String::new()),
            ClientError => (Some(135), "Not authorized".to_owned(), String::new()),
            _ => (
                Some(131),
                "Implementation specific error".to_owned(),
                String::new(),
            ),
        },
    }
}

/// Groups rows into per-agent batches, as each host's agent would: its
/// own session and sequence numbers, each tag string sent once per session.
pub struct Batcher {
    size: usize,
    agents: Vec<AgentState>,
}

struct AgentState {
    id: String,
    session: u64,
    seq: u64,
    sent: HashSet<(TagKind, u64)>,
    rows: Vec<SpanRow>,
}

impl Batcher {
    pub fn new(world: &World, size: usize, session_seed: u64) -> Batcher {
        let mut rng = Rng::new(session_seed);
        Batcher {
            size,
            agents: world
                .hosts
                .iter()
                .map(|h| AgentState {
                    id: h.clone(),
                    session: rng.next(),
                    seq: 0,
                    sent: HashSet::new(),
                    rows: Vec::with_capacity(size),
                })
                .collect(),
        }
    }

    /// Adds a row; returns a batch when its agent's batch is full.
    pub fn add(&mut self, world: &World, r: GenRow) -> Option<Batch> {
        let a = &mut self.agents[r.host];
        a.rows.push(r.row);
        (a.rows.len() >= self.size).then(|| Self::cut(world, a))
    }

    /// What is left, as batches.
    pub fn flush(&mut self, world: &World) -> Vec<Batch> {
        self.agents
            .iter_mut()
            .filter(|a| !a.rows.is_empty())
            .map(|a| Self::cut(world, a))
            .collect()
    }

    fn cut(world: &World, a: &mut AgentState) -> Batch {
        let spans = std::mem::take(&mut a.rows);
        let mut tags = Vec::new();
        for r in &spans {
            for (kind, id) in [
                (TagKind::Host, r.host_0),
                (TagKind::Host, r.host_1),
                (TagKind::Process, r.process_0),
                (TagKind::Process, r.process_1),
                (TagKind::Service, r.service_0),
                (TagKind::Service, r.service_1),
            ] {
                if id != 0 && a.sent.insert((kind, id)) {
                    tags.push(Tag {
                        kind: kind.code(),
                        id,
                        value: world.name(kind, id).to_owned(),
                    });
                }
            }
        }
        a.seq += 1;
        Batch {
            agent_id: a.id.clone(),
            session: a.session,
            seq: a.seq,
            tags,
            spans,
            metrics: Vec::new(),
            flows: Vec::new(),
        }
    }
}

/// The store rows of a batch, exactly as `Ingestor::push` makes them.
pub fn write_batch(b: Batch) -> WriteBatch {
    let agent = tag_id(TagKind::Agent, &b.agent_id);
    let mut tags: Vec<(TagKind, u64, String)> = b
        .tags
        .into_iter()
        .filter_map(|t| Some((TagKind::from_code(t.kind)?, t.id, t.value)))
        .collect();
    tags.push((TagKind::Agent, agent, b.agent_id));
    let (session, seq) = (b.session, b.seq);
    WriteBatch {
        agent,
        session,
        seq,
        spans: b
            .spans
            .into_iter()
            .enumerate()
            .map(|(i, row)| StoredSpan {
                id: span_id(agent, session, seq, i as u32),
                agent,
                session,
                seq,
                row,
            })
            .collect(),
        tags,
        metrics: Vec::new(),
        flows: Vec::new(),
    }
}

/// Agents' batches from one long run of the deployment: each agent keeps
/// its session across calls, as agents that have been up a while do (the
/// tag strings went with their first batches).
pub struct Source {
    pub generator: Generator,
    batcher: Batcher,
}

impl Source {
    /// About `rows` rows in all over `[from_us, to_us)`.
    pub fn new(seed: u64, from_us: u64, to_us: u64, rows: u64) -> Source {
        let generator = Generator::new(seed, from_us, to_us, rows);
        let batcher = Batcher::new(&generator.world, 1, seed ^ 0x5e55);
        Source { generator, batcher }
    }

    /// The next `n` rows as batches of at most `size` spans per agent (the
    /// rest of each agent's rows flushed at the end, as an agent's timer
    /// would).
    pub fn take(&mut self, n: u64, size: usize) -> Vec<Batch> {
        self.batcher.size = size;
        let mut out = Vec::new();
        for _ in 0..n {
            let r = self.generator.row();
            if let Some(batch) = self.batcher.add(&self.generator.world, r) {
                out.push(batch);
            }
        }
        out.extend(self.batcher.flush(&self.generator.world));
        out
    }

    pub fn world(&self) -> &World {
        &self.generator.world
    }
}
