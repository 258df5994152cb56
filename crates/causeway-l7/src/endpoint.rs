//! Endpoints: a span's resource folded into the name that many requests
//! share, so that metrics aggregate per endpoint rather than per request.
//!
//! - HTTP paths: the query string goes; path segments that are ids (all
//!   digits, a UUID, long hex, or long runs mixing letters and digits, as
//!   tokens and hashes do) become `{id}`. `/users/42/orders?x=1` →
//!   `/users/{id}/orders`.
//! - SQL: string (single-quoted), number and hex literals become `?`, lists of them
//!   (`IN (?, ?, ?)`, multi-row `VALUES (...), (...)`) one, whitespace one
//!   space, comments go. `SELECT * FROM t WHERE id = 42 AND n IN (1,2)` →
//!   `SELECT * FROM t WHERE id = ? AND n IN (?)`.
//! - Redis: the command (keys are data, not endpoints).
//! - Dubbo, SOFARPC: `service/method` (DeepFlow's), the service as the
//!   span names it (`interface:version`).
//! - gRPC, DNS, MQTT, Kafka: the resource as it is (a method path, a
//!   name, a topic) without ids folded.
//!
//! Endpoints are capped at [`MAX_ENDPOINT`] bytes (on a char boundary).

use crate::L7Protocol;

/// Longest endpoint kept.
pub const MAX_ENDPOINT: usize = 256;

/// The endpoint of a request of `protocol` with this type and resource.
pub fn endpoint(protocol: L7Protocol, request_type: &str, resource: &str) -> String {
    let mut e = match protocol {
        L7Protocol::Http | L7Protocol::Http2 => http_path(resource),
        L7Protocol::Mysql | L7Protocol::Postgresql => sql(resource),
        L7Protocol::Redis => request_type.to_owned(),
        L7Protocol::Dubbo | L7Protocol::SofaRpc
            if !resource.is_empty() && !request_type.is_empty() =>
        {
            format!("{resource}/{request_type}")
        }
        _ if resource.is_empty() => request_type.to_owned(),
        _ => resource.to_owned(),
    };
    if e.len() > MAX_ENDPOINT {
        let mut cut = MAX_ENDPOINT;
        while !e.is_char_boundary(cut) {
            cut -= 1;
        }
        e.truncate(cut);
    }
    e
}

/// Whether a path segment names one thing rather than a kind of thing.
fn is_id(seg: &str) -> bool {
    let b = seg.as_bytes();
    if b.is_empty() {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return true;
    }
    let hexish = b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-');
    if hexish && b.iter().filter(|c| c.is_ascii_hexdigit()).count() >= 16 {
        return true; // UUIDs, hashes, object ids
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    let alnum = b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'));
    // Tokens: long, and digits mixed in; words like `v2` or `oauth2` stay.
    alnum && b.len() >= 16 && digits >= 2
}

fn http_path(target: &str) -> String {
    // An absolute-form target (`http://host/path`) keeps only its path.
    let path = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("/", |j| &target[i + 3 + j..]),
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(seg) { "{id}" } else { seg });
    }
    out
}

/// SQL with its literals folded to `?`.
fn sql(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len().min(MAX_ENDPOINT * 2));
    let mut i = 0;
    let mut space = false;
    let push = |out: &mut String, s: &str, space: &mut bool| {
        if *space && !out.is_empty() {
            out.push(' ');
        }
        *space = false;
        out.push_str(s);
    };
    while i < b.len() && out.len() <= MAX_ENDPOINT * 2 {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                space = true;
                i += 1;
            }
            b'\'' => {
                i = find_close(b, i + 1, b'\'');
                push(&mut out, "?", &mut space);
            }
            b'"' | b'`' => {
                // Quoted identifiers (PostgreSQL, MySQL) name things: kept.
                let end = find_close(b, i + 1, c);
                push(&mut out, &text[i..end], &mut space);
                i = end;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                space = true;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                space = true;
            }
            b'0'..=b'9' | b'.' if !prev_is_word(&out, space) => {
                // A number (or hex 0x..): digits, dots, exponents.
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                push(&mut out, "?", &mut space);
            }
            b'-' | b'+' if is_sign(&out, b.get(i + 1)) => {
                i += 1; // the sign of a number literal goes with it
            }
            _ => {
                let start = i;
                if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 {
                    while i < b.len()
                        && (b[i].is_ascii_alphanumeric()
                            || b[i] == b'_'
                            || b[i] == b'$'
                            || b[i] >= 0x80)
                    {
                        i += 1;
                    }
                } else {
                    i += 1;
                }
                // `,` and `(`/`)` hug their neighbours.
                if matches!(c, b',' | b')') {
                    space = false;
                }
                let tok = &text[start..i];
                push(&mut out, tok, &mut space);
                if c == b'(' {
                    space = false;
                }
            }
        }
    }
    fold_lists(out)
}

fn find_close(b: &[u8], mut i: usize, quote: u8) -> usize {
    while i < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            // A doubled quote is an escaped one.
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Whether the output ends in a word, so a digit continues it (`t1`).
fn prev_is_word(out: &str, space: bool) -> bool {
    !space
        && out
            .as_bytes()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'$')
}

/// A `-`/`+` is a sign when an operator or `(`/`,` precedes and a digit follows.
fn is_sign(out: &str, next: Option<&u8>) -> bool {
    next.is_some_and(u8::is_ascii_digit)
        && out.trim_end().as_bytes().last().is_none_or(|c| {
            matches!(
                c,
                b'(' | b',' | b'=' | b'<' | b'>' | b'+' | b'-' | b'*' | b'/'
            )
        })
}

/// `(?, ?, ?)` → `(?)`, and `VALUES (?), (?)` → `VALUES (?)`.
fn fold_lists(mut s: String) -> String {
    while s.contains("?,?") || s.contains("?, ?") {
        s = s.replace("?, ?", "?").replace("?,?", "?");
    }
    while s.contains("(?), (?)") || s.contains("(?),(?)") {
        s = s.replace("(?), (?)", "(?)").replace("(?),(?)", "(?)");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(p: &str) -> String {
        endpoint(L7Protocol::Http, "GET", p)
    }

    fn q(s: &str) -> String {
        endpoint(L7Protocol::Mysql, "COM_QUERY", s)
    }

    #[test]
    fn http_ids_and_queries_fold() {
        assert_eq!(http("/users/42/orders?x=1"), "/users/{id}/orders");
        assert_eq!(http("/o/3f2a9c1e-1b2c-4d5e-8f90-123456789abc"), "/o/{id}");
        assert_eq!(http("/blob/9f86d081884c7d659a2feaa0c55ad015"), "/blob/{id}");
        assert_eq!(http("/api/v2/oauth2/token"), "/api/v2/oauth2/token");
        assert_eq!(http("/t/abcDEF123ghi456JKL"), "/t/{id}");
        assert_eq!(http("/"), "/");
        assert_eq!(http("http://example.com/a/7?q"), "/a/{id}");
        assert_eq!(http("*"), "*");
        assert_eq!(http("/index.html#top"), "/index.html");
    }

    #[test]
    fn sql_literals_fold() {
        assert_eq!(
            q("SELECT * FROM t WHERE id = 42 AND n IN (1,2, 3)"),
            "SELECT * FROM t WHERE id = ? AND n IN (?)"
        );
        assert_eq!(
            q("INSERT INTO t1 VALUES (100669,'qnMd''ip'),(7, 'x')"),
            "INSERT INTO t1 VALUES (?)"
        );
        assert_eq!(
            q("UPDATE pgbench_accounts SET abalance = abalance + -4037 WHERE aid = $1"),
            "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = $1"
        );
        assert_eq!(
            q("select  a1,\n b2 from \"T\" -- note\nwhere x = 1.5e3"),
            "select a1, b2 from \"T\" where x = ?"
        );
        assert_eq!(q("SELECT /* hint */ 0x1F"), "SELECT ?");
        assert_eq!(q("SELECT 'unterminated"), "SELECT ?");
        assert_eq!(
            q("SELECT 1"),
            endpoint(L7Protocol::Postgresql, "Query", "SELECT 2")
        );
    }

    #[test]
    fn other_protocols() {
        assert_eq!(endpoint(L7Protocol::Redis, "GET", "user:42"), "GET");
        assert_eq!(
            endpoint(L7Protocol::Grpc, "POST", "/pkg.Svc/Method"),
            "/pkg.Svc/Method"
        );
        assert_eq!(endpoint(L7Protocol::Dns, "A", "example.com"), "example.com");
        assert_eq!(endpoint(L7Protocol::Mqtt, "PINGREQ", ""), "PINGREQ");
        assert_eq!(
            endpoint(L7Protocol::Dubbo, "echo", "demo.Echo:1.0"),
            "demo.Echo:1.0/echo"
        );
        assert_eq!(endpoint(L7Protocol::SofaRpc, "heartbeat", ""), "heartbeat");
    }

    #[test]
    fn long_and_odd_input_is_capped_and_never_panics() {
        let long = format!("/{}", "é".repeat(400));
        assert!(http(&long).len() <= MAX_ENDPOINT);
        let sql_long = format!("SELECT {}", "a, ".repeat(500));
        assert!(q(&sql_long).len() <= MAX_ENDPOINT);
        for s in ["'", "\"", "--", "/*", "-", "+1", "é'é", "\\", "1e"] {
            let _ = q(s);
            let _ = http(s);
        }
    }
}
