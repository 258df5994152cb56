//! Trace assembly (DESIGN.md section 6, the paper's algorithm): from one
//! span, every stored span of the same distributed request, as a tree.
//!
//! 1. **Set growth** ([`assemble`]): starting from the span a user picked,
//!    ask the store ([`KeyQuery`]) for every span that shares a key with
//!    the set: a syscall trace id (per agent and session: each agent run
//!    numbers them itself), a pseudo-thread (goroutine id, per agent and
//!    process), an X-Request-ID (of request or response), a TCP sequence
//!    number (of request or response), a UDP flow (DNS), or a trace id from
//!    trace headers. Only the keys not asked before are asked each round,
//!    within a window around the start span, until the set stops growing,
//!    a number of rounds has passed, or the set is as large as allowed.
//!    A candidate joins only if the parent rules (2) connect it to the
//!    start span's tree (or it belongs by step 3): sequence numbers of
//!    different connections collide, so the same message must also agree
//!    on ports (or the other direction's sequence number) and times
//!    ([`same_message`]); and a thread's syscall trace ids also lead to
//!    what it did for other requests (an event loop such as nginx's, a
//!    pool thread, an OS thread running many goroutines), which the rules
//!    do not connect: growth does not go on from there.
//! 2. **Parents** ([`link`]), by explicit rules:
//!    - *the same message seen twice*: a client-process span, the network
//!      spans and the server-process span of one request ([`same_message`])
//!      form a chain client → network (in time order) → server;
//!    - *what a server span caused*: a client-process span C is the child
//!      of a server-process span S of the same process (agent and pid) that
//!      contains it in time, chosen by the strongest evidence: C's parent
//!      span id is S's span id (B3, Jaeger); C carries S's X-Request-ID
//!      (what a gateway injects into the request it forwards, and echoes
//!      in its response); C's request syscall trace id is in S's chain
//!      (S's request's id, then the response id of every call S made
//!      before it, in time order: a thread's inbound message starts a new
//!      id, an outbound one carries the current one), or C's response id
//!      is in S's chain read backwards (S's response's id, then the
//!      request id of every call before it, latest first: the thread's
//!      work found from a leaf, and a pool thread's that answered S); C
//!      runs in S's goroutine; C and S share a trace id. Among candidates with the
//!      same evidence the innermost (latest start) wins. Different
//!      X-Request-IDs or different trace ids on S and C rule S out;
//!    - *a server span whose caller was not seen by sequence number* (an
//!      address translated on the way): the client span of the same
//!      protocol, trace id and span id (the caller's, from trace headers)
//!      around it, whose own server side was not seen.
//!
//!    No parent that would make a cycle is set.
//! 3. **Keep what belongs**: the spans connected to the start span by
//!    parents, and the other groups that share a trace id or an
//!    X-Request-ID with them; what a thread's later work pulled in (a
//!    pool thread that served another request next) is dropped and
//!    counted.
//! 4. **Order and self time**: children by start time under their parent,
//!    roots by start time; each span's self time is its duration less the
//!    time covered by its children.

use crate::query::KeyQuery;
use crate::schema::StoredSpan;
use crate::store::{Store, StoreError};
use causeway_model::{L4Protocol, ObservationPoint};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Bounds of one assembly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceOptions {
    /// Spans are looked for this far before the start span's start and
    /// after its end.
    pub window_us: u64,
    /// Rounds of set growth at most.
    pub max_iterations: u32,
    /// Spans in the set at most.
    pub max_spans: usize,
    /// How far apart two agents' clocks may be when the same message is
    /// matched on both sides.
    pub skew_us: u64,
}

impl Default for TraceOptions {
    fn default() -> TraceOptions {
        TraceOptions {
            window_us: 60_000_000,
            max_iterations: 30,
            max_spans: 5_000,
            skew_us: 100_000,
        }
    }
}

/// Why a span has its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Link {
    /// Same TCP message (sequence number), client or network side above.
    TcpSeq,
    /// Same UDP message (flow and request id), client or network side above.
    UdpFlow,
    /// The parent's span id is the child's parent span id, or (a server
    /// span whose caller was not seen by sequence number) the same span id
    /// from trace headers.
    SpanId,
    /// The child carries the parent's X-Request-ID.
    XRequestId,
    /// The child is in the parent's syscall trace id chain (forward from
    /// the parent's request, or backward from its response).
    SyscallTraceId,
    /// The child ran in the parent's goroutine.
    PseudoThread,
    /// The same trace id, and the parent contains the child in time.
    TraceId,
}

impl Link {
    pub fn as_str(self) -> &'static str {
        match self {
            Link::TcpSeq => "tcp_seq",
            Link::UdpFlow => "udp_flow",
            Link::SpanId => "span_id",
            Link::XRequestId => "x_request_id",
            Link::SyscallTraceId => "syscall_trace_id",
            Link::PseudoThread => "pseudo_thread",
            Link::TraceId => "trace_id",
        }
    }
}

/// One span of an assembled trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub span: StoredSpan,
    /// The parent's id (a span of the same trace).
    pub parent: Option<u64>,
    pub link: Option<Link>,
    /// 0 for roots.
    pub depth: u32,
    /// Children's ids, in display order.
    pub children: Vec<u64>,
    /// Duration less the time covered by children.
    pub self_time_us: u64,
}

/// An assembled trace: spans in display order (depth first, children by
/// start time), with what bounded the assembly.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    /// The span it started from.
    pub start: u64,
    pub spans: Vec<Node>,
    /// Rounds of set growth done.
    pub iterations: u32,
    /// Whether a bound (rounds, set size) stopped the growth with keys
    /// still to ask.
    pub truncated: bool,
    /// Spans found but not connected to the start span (dropped).
    pub dropped: usize,
    /// The time range searched, `[from_us, to_us)`.
    pub from_us: u64,
    pub to_us: u64,
}

fn obs(s: &StoredSpan) -> Option<ObservationPoint> {
    ObservationPoint::from_code(s.row.observation_point)
}

fn is_udp(s: &StoredSpan) -> bool {
    s.row.l4_protocol == L4Protocol::Udp.code()
}

/// Whether two time ranges overlap, allowing `skew` between the clocks.
fn overlap(a: &StoredSpan, b: &StoredSpan, skew: u64) -> bool {
    a.row.start_time_us <= b.row.end_time_us.saturating_add(skew)
        && b.row.start_time_us <= a.row.end_time_us.saturating_add(skew)
}

/// Whether `a` and `b` are the same request seen at two points (client
/// process, network, server process), or at one point by two agents.
///
/// TCP: the same request sequence number (or, when a side saw no request
/// start, the same response one), and either the same ports or both
/// directions' sequence numbers equal (64 bits of agreement, which an
/// address translation on the way does not change); request ids, where
/// both have one (HTTP/2 streams), equal. UDP: the same ports and the same
/// request id (DNS id). Either way the times
/// overlap (within `skew`).
pub fn same_message(a: &StoredSpan, b: &StoredSpan, skew: u64) -> bool {
    let (x, y) = (&a.row, &b.row);
    if a.id == b.id || x.l4_protocol != y.l4_protocol || !overlap(a, b, skew) {
        return false;
    }
    if let (Some(p), Some(q)) = (x.request_id, y.request_id) {
        if p != q {
            return false;
        }
    }
    let ports = x.src_port == y.src_port && x.dst_port == y.dst_port;
    if is_udp(a) {
        // Addresses are not compared: an unconnected socket's own address
        // is the wildcard on one side and the real one on the other.
        return ports && x.request_id.is_some() && x.request_id == y.request_id;
    }
    let req = x.req_tcp_seq != 0 && x.req_tcp_seq == y.req_tcp_seq;
    let resp = x.resp_tcp_seq != 0 && x.resp_tcp_seq == y.resp_tcp_seq;
    let resp_differs = x.resp_tcp_seq != 0 && y.resp_tcp_seq != 0 && !resp;
    match (req, resp) {
        (true, true) => true,
        (true, false) => ports && !resp_differs,
        (false, true) => ports && (x.req_tcp_seq == 0 || y.req_tcp_seq == 0),
        (false, false) => false,
    }
}

/// The keys of the spans in a set, fully scoped: what was asked already.
#[derive(Default)]
struct Keys {
    syscall: HashSet<(u64, u64, u64)>,
    coroutine: HashSet<(u64, u32, u64)>,
    xrid: HashSet<String>,
    trace: HashSet<String>,
    seq: HashSet<u32>,
    udp: HashSet<(u16, u16)>,
}

impl Keys {
    /// Notes `s`'s keys; those not asked before go into `q`.
    fn add(&mut self, s: &StoredSpan, q: &mut KeyQuery) {
        let r = &s.row;
        for id in [r.syscall_trace_id_req, r.syscall_trace_id_resp] {
            if id != 0 && self.syscall.insert((s.agent, s.session, id)) {
                q.syscall_trace_ids
                    .entry((s.agent, s.session))
                    .or_default()
                    .insert(id);
            }
        }
        for id in [r.coroutine_id_req, r.coroutine_id_resp] {
            if id != 0 && self.coroutine.insert((s.agent, r.pid, id)) {
                q.coroutine_ids
                    .entry((s.agent, r.pid))
                    .or_default()
                    .insert(id);
            }
        }
        for x in [&r.x_request_id, &r.x_request_id_resp] {
            if !x.is_empty() && self.xrid.insert(x.clone()) {
                q.x_request_ids.insert(x.clone());
            }
        }
        if !r.trace_id.is_empty() && self.trace.insert(r.trace_id.clone()) {
            q.trace_ids.insert(r.trace_id.clone());
        }
        if is_udp(s) {
            let ports = (r.src_port as u16, r.dst_port as u16);
            if self.udp.insert(ports) {
                q.udp_ports.insert(ports);
            }
        } else {
            for seq in [r.req_tcp_seq, r.resp_tcp_seq] {
                if seq != 0 && self.seq.insert(seq) {
                    q.tcp_seqs.insert(seq);
                }
            }
        }
    }
}

/// Assembles the trace of span `start`; None when there is no such span.
pub fn assemble(
    store: &dyn Store,
    start: u64,
    opt: &TraceOptions,
) -> Result<Option<Trace>, StoreError> {
    let Some(first) = store.span(start)? else {
        return Ok(None);
    };
    let from_us = first.row.start_time_us.saturating_sub(opt.window_us);
    let to_us = first
        .row
        .end_time_us
        .max(first.row.start_time_us)
        .saturating_add(opt.window_us)
        .saturating_add(1);
    let mut keys = Keys::default();
    let mut spans = vec![first];
    let mut ids: HashSet<u64> = HashSet::from([start]);
    let mut ask = KeyQuery {
        from_us,
        to_us,
        limit: (opt.max_spans as u32).saturating_add(1),
        ..KeyQuery::default()
    };
    keys.add(&spans[0], &mut ask);
    let mut iterations = 0;
    let mut truncated = false;
    while !ask.is_empty() {
        if iterations >= opt.max_iterations || spans.len() >= opt.max_spans {
            truncated = true;
            break;
        }
        iterations += 1;
        let found = store.spans_by_keys(&ask)?;
        if found.len() > opt.max_spans {
            truncated = true;
        }
        ask = KeyQuery {
            from_us,
            to_us,
            limit: ask.limit,
            ..KeyQuery::default()
        };
        // Candidates: spans sharing a key (TCP seqs and UDP ports bare) ...
        let candidates: Vec<StoredSpan> =
            found.into_iter().filter(|s| !ids.contains(&s.id)).collect();
        // ... join if the rules connect them to the start span's tree (or
        // to a tree sharing its trace id or X-Request-ID): another
        // connection's message with the same seq stays out, and so does
        // what a thread did for other requests (an event loop, a pool
        // thread: its syscall trace ids lead there), with the keys it
        // would add.
        let base = spans.len();
        let mut all = std::mem::take(&mut spans);
        all.extend(candidates);
        let keep = keep(&all, &parents(&all, opt.skew_us), start);
        for (i, s) in all.into_iter().enumerate() {
            if i < base || (keep[i] && spans.len() < opt.max_spans) {
                if i >= base {
                    ids.insert(s.id);
                    keys.add(&s, &mut ask);
                }
                spans.push(s);
            } else if i >= base && keep[i] {
                truncated = true;
            }
        }
        if spans.len() >= opt.max_spans && !ask.is_empty() {
            truncated = true;
            break;
        }
    }
    let mut trace = link(spans, start, opt.skew_us);
    trace.iterations = iterations;
    trace.truncated |= truncated;
    trace.from_us = from_us;
    trace.to_us = to_us;
    Ok(Some(trace))
}

struct Parents {
    parent: Vec<Option<(usize, Link)>>,
}

impl Parents {
    /// Sets `p` as the parent of `c` unless `c` has one or it would make a
    /// cycle.
    fn set(&mut self, c: usize, p: usize, link: Link) -> bool {
        if c == p || self.parent[c].is_some() {
            return false;
        }
        let mut at = p;
        let mut steps = 0;
        while let Some((up, _)) = self.parent[at] {
            if up == c || steps > self.parent.len() {
                return false;
            }
            at = up;
            steps += 1;
        }
        self.parent[c] = Some((p, link));
        true
    }

    fn root(&self, mut i: usize) -> usize {
        while let Some((p, _)) = self.parent[i] {
            i = p;
        }
        i
    }
}

/// Whether `outer` contains `inner` in time.
fn contains(outer: &StoredSpan, inner: &StoredSpan) -> bool {
    outer.row.start_time_us <= inner.row.start_time_us
        && inner.row.end_time_us <= outer.row.end_time_us
}

/// The X-Request-IDs a span carries (request, response).
fn xrids(s: &StoredSpan) -> impl Iterator<Item = &str> {
    [&s.row.x_request_id, &s.row.x_request_id_resp]
        .into_iter()
        .filter(|x| !x.is_empty())
        .map(String::as_str)
}

/// Sets parents over a set of spans and orders them into a trace (steps 2
/// to 4 of the module doc); `start` is the span the user picked.
pub fn link(spans: Vec<StoredSpan>, start: u64, skew: u64) -> Trace {
    let parents = parents(&spans, skew);
    let keep = keep(&spans, &parents, start);
    build(spans, &parents, &keep, start)
}

fn rank(o: Option<ObservationPoint>) -> u8 {
    match o {
        Some(ObservationPoint::Client) => 0,
        Some(ObservationPoint::Network) => 1,
        Some(ObservationPoint::Server) => 2,
        None => 3,
    }
}

/// Step 2: each span's parent, by the rules.
fn parents(spans: &[StoredSpan], skew: u64) -> Parents {
    let n = spans.len();
    let mut parents = Parents {
        parent: vec![None; n],
    };
    let point = |i: usize| obs(&spans[i]);

    // 1. The same message seen at several points: client -> network -> server.
    let mut group: Vec<usize> = (0..n).collect();
    fn find(g: &mut [usize], mut i: usize) -> usize {
        while g[i] != i {
            g[i] = g[g[i]];
            i = g[i];
        }
        i
    }
    let mut by_key: HashMap<(bool, u32, u32), Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        let r = &s.row;
        if is_udp(s) {
            by_key
                .entry((true, r.src_port, r.dst_port))
                .or_default()
                .push(i);
        } else {
            if r.req_tcp_seq != 0 {
                by_key.entry((false, r.req_tcp_seq, 0)).or_default().push(i);
            }
            if r.resp_tcp_seq != 0 {
                by_key
                    .entry((false, 0, r.resp_tcp_seq))
                    .or_default()
                    .push(i);
            }
        }
    }
    for list in by_key.values() {
        for (k, &a) in list.iter().enumerate() {
            for &b in &list[k + 1..] {
                if same_message(&spans[a], &spans[b], skew) {
                    let (ra, rb) = (find(&mut group, a), find(&mut group, b));
                    group[ra] = rb;
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        let g = find(&mut group, i);
        groups.entry(g).or_default().push(i);
    }
    for members in groups.values_mut().filter(|m| m.len() > 1) {
        members.sort_by_key(|&i| (rank(point(i)), spans[i].row.start_time_us, spans[i].id));
        let link = if is_udp(&spans[members[0]]) {
            Link::UdpFlow
        } else {
            Link::TcpSeq
        };
        for w in members.windows(2) {
            parents.set(w[1], w[0], link);
        }
    }

    // 2. What each server span caused, in its own process.
    let mut servers: HashMap<(u64, u32), Vec<usize>> = HashMap::new();
    let mut clients: HashMap<(u64, u32), Vec<usize>> = HashMap::new();
    for (i, s) in spans.iter().enumerate() {
        let key = (s.agent, s.row.pid);
        match point(i) {
            Some(ObservationPoint::Server) => servers.entry(key).or_default().push(i),
            Some(ObservationPoint::Client) => clients.entry(key).or_default().push(i),
            _ => {}
        }
    }
    for list in clients.values_mut() {
        list.sort_by_key(|&i| (spans[i].row.start_time_us, spans[i].id));
    }
    // Each server span's syscall trace id chain, over its process's calls:
    // forward from its request's id (a call's request id in the chain puts
    // its response id in), and backward from its response's id (a call's
    // response id in the chain puts its request id in), so that the calls
    // are found from either end of the thread's work.
    let mut chains: HashMap<usize, (HashSet<u64>, HashSet<u64>)> = HashMap::new();
    for (key, list) in &servers {
        let calls = clients.get(key).map(Vec::as_slice).unwrap_or_default();
        for &si in list {
            let s = &spans[si];
            let inside: Vec<&StoredSpan> = calls
                .iter()
                .map(|&ci| &spans[ci])
                .filter(|c| c.session == s.session && contains(s, c))
                .collect();
            let mut forward = HashSet::new();
            if s.row.syscall_trace_id_req != 0 {
                forward.insert(s.row.syscall_trace_id_req);
                for c in &inside {
                    if forward.contains(&c.row.syscall_trace_id_req)
                        && c.row.syscall_trace_id_resp != 0
                    {
                        forward.insert(c.row.syscall_trace_id_resp);
                    }
                }
            }
            let mut backward = HashSet::new();
            if s.row.syscall_trace_id_resp != 0 {
                backward.insert(s.row.syscall_trace_id_resp);
                for c in inside.iter().rev() {
                    if backward.contains(&c.row.syscall_trace_id_resp)
                        && c.row.syscall_trace_id_req != 0
                    {
                        backward.insert(c.row.syscall_trace_id_req);
                    }
                }
            }
            chains.insert(si, (forward, backward));
        }
    }
    for (key, list) in &clients {
        let Some(candidates) = servers.get(key) else {
            continue;
        };
        for &ci in list {
            let c = &spans[ci];
            let mut best: Option<(u8, u64, usize)> = None;
            for &si in candidates {
                let s = &spans[si];
                if !contains(s, c) {
                    continue;
                }
                let (cr, sr) = (&c.row, &s.row);
                let c_xrid = (!cr.x_request_id.is_empty()).then_some(cr.x_request_id.as_str());
                let xrid_match = c_xrid.is_some_and(|x| xrids(s).any(|y| y == x));
                if c_xrid.is_some() && xrids(s).next().is_some() && !xrid_match {
                    continue;
                }
                let trace_match = !cr.trace_id.is_empty() && cr.trace_id == sr.trace_id;
                if !cr.trace_id.is_empty() && !sr.trace_id.is_empty() && !trace_match {
                    continue;
                }
                let strength = if !cr.parent_span_id.is_empty() && cr.parent_span_id == sr.span_id {
                    6
                } else if xrid_match {
                    5
                } else if c.session == s.session
                    && chains.get(&si).is_some_and(|(fw, bw)| {
                        fw.contains(&cr.syscall_trace_id_req)
                            || (cr.syscall_trace_id_resp != 0
                                && bw.contains(&cr.syscall_trace_id_resp))
                    })
                {
                    4
                } else if cr.coroutine_id_req != 0 && cr.coroutine_id_req == sr.coroutine_id_req {
                    3
                } else if trace_match {
                    2
                } else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((b, start, _)) => {
                        strength > b || (strength == b && sr.start_time_us > start)
                    }
                };
                if better {
                    best = Some((strength, sr.start_time_us, si));
                }
            }
            if let Some((strength, _, si)) = best {
                let link = match strength {
                    6 => Link::SpanId,
                    5 => Link::XRequestId,
                    4 => Link::SyscallTraceId,
                    3 => Link::PseudoThread,
                    _ => Link::TraceId,
                };
                parents.set(ci, si, link);
            }
        }
    }

    // 3. Server spans whose caller was not matched by sequence number: the
    // client span of the same protocol, trace id and span id around them
    // (on one agent's clock exactly, across agents within the skew) whose
    // own server side was not seen.
    let has_server: HashSet<usize> = (0..n)
        .filter(|&i| point(i) == Some(ObservationPoint::Server))
        .filter_map(|i| parents.parent[i].map(|(p, _)| p))
        .filter(|&p| point(p) == Some(ObservationPoint::Client))
        .collect();
    for si in 0..n {
        let s = &spans[si];
        if point(si) != Some(ObservationPoint::Server)
            || parents.parent[si].is_some()
            || s.row.span_id.is_empty()
            || s.row.trace_id.is_empty()
        {
            continue;
        }
        let caller = (0..n)
            .filter(|&ci| {
                let c = &spans[ci];
                let skew = if c.agent == s.agent { 0 } else { skew };
                point(ci) == Some(ObservationPoint::Client)
                    && !has_server.contains(&ci)
                    && (c.agent, c.row.pid) != (s.agent, s.row.pid)
                    && c.row.protocol == s.row.protocol
                    && c.row.span_id == s.row.span_id
                    && c.row.trace_id == s.row.trace_id
                    && c.row.start_time_us <= s.row.start_time_us.saturating_add(skew)
                    && s.row.end_time_us <= c.row.end_time_us.saturating_add(skew)
            })
            .max_by_key(|&ci| (spans[ci].row.start_time_us, spans[ci].id));
        if let Some(ci) = caller {
            parents.set(si, ci, Link::SpanId);
        }
    }

    parents
}

/// Step 3: which spans belong: the start span's tree, and the trees sharing
/// a trace id or an X-Request-ID with it.
fn keep(spans: &[StoredSpan], parents: &Parents, start: u64) -> Vec<bool> {
    let n = spans.len();
    let start_at = spans.iter().position(|s| s.id == start);
    let roots: Vec<usize> = (0..n).map(|i| parents.root(i)).collect();
    let keep: Vec<bool> = match start_at {
        None => vec![true; n],
        Some(si) => {
            let home = roots[si];
            let mut traces = HashSet::new();
            let mut ids = HashSet::new();
            for i in (0..n).filter(|&i| roots[i] == home) {
                if !spans[i].row.trace_id.is_empty() {
                    traces.insert(spans[i].row.trace_id.as_str());
                }
                ids.extend(xrids(&spans[i]));
            }
            let mut related: HashSet<usize> = HashSet::from([home]);
            for i in 0..n {
                let s = &spans[i];
                if (!s.row.trace_id.is_empty() && traces.contains(s.row.trace_id.as_str()))
                    || xrids(s).any(|x| ids.contains(x))
                {
                    related.insert(roots[i]);
                }
            }
            roots.iter().map(|r| related.contains(r)).collect()
        }
    };
    keep
}

/// Step 4: the kept spans in display order, with self times.
fn build(spans: Vec<StoredSpan>, parents: &Parents, keep: &[bool], start: u64) -> Trace {
    let n = spans.len();
    let point = |i: usize| obs(&spans[i]);
    let dropped = keep.iter().filter(|k| !**k).count();
    let order_key = |i: usize| (spans[i].row.start_time_us, rank(point(i)), spans[i].id);
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut top = Vec::new();
    for i in (0..n).filter(|&i| keep[i]) {
        match parents.parent[i] {
            Some((p, _)) => children[p].push(i),
            None => top.push(i),
        }
    }
    for c in &mut children {
        c.sort_by_key(|&i| order_key(i));
    }
    top.sort_by_key(|&i| order_key(i));
    let mut order: Vec<(usize, u32)> = Vec::with_capacity(n);
    let mut stack: Vec<(usize, u32)> = top.iter().rev().map(|&i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        order.push((i, depth));
        for &c in children[i].iter().rev() {
            stack.push((c, depth + 1));
        }
    }
    let self_time = |i: usize| {
        let (start, end) = (spans[i].row.start_time_us, spans[i].row.end_time_us);
        let mut covered: Vec<(u64, u64)> = children[i]
            .iter()
            .map(|&c| {
                let r = &spans[c].row;
                (
                    r.start_time_us.clamp(start, end),
                    r.end_time_us.clamp(start, end),
                )
            })
            .collect();
        covered.sort_unstable();
        let (mut busy, mut upto) = (0, start);
        for (a, b) in covered {
            let a = a.max(upto);
            if b > a {
                busy += b - a;
                upto = b;
            }
        }
        end.saturating_sub(start).saturating_sub(busy)
    };
    let nodes: Vec<Node> = order
        .iter()
        .map(|&(i, depth)| Node {
            span: spans[i].clone(),
            parent: parents.parent[i].map(|(p, _)| spans[p].id),
            link: parents.parent[i].map(|(_, l)| l),
            depth,
            children: children[i].iter().map(|&c| spans[c].id).collect(),
            self_time_us: self_time(i),
        })
        .collect();
    Trace {
        start,
        spans: nodes,
        dropped,
        ..Trace::default()
    }
}

#[cfg(test)]
mod tests;
