//! End to end, per protocol: a real server and its real client, the real
//! BPF programs in `causeway watch`, and spans checked against what the
//! client did: the same commands, keys and statements, with their outcome,
//! seen once in the client process and once in the server process.

mod support;

use std::process::Command;
use support::*;

#[test]
fn redis_cli_commands_and_errors() {
    let _g = serial();
    let r = redis();
    let port = r.port.to_string();
    let Some(watch) = Watch::start(&["--port", &port]) else {
        return;
    };
    // One connection, one command at a time, as a person types them.
    let script = "SET greeting hello\nGET greeting\nGET nothing\nLPUSH list a b\nGET list\nINCR counter\nPING\n";
    let mut child = Command::new("redis-cli")
        .args(["-p", &port])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-cli (scripts/setup installs it)");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write commands");
    assert!(child.wait().expect("redis-cli").success());
    let w = watch.stop();
    assert_eq!(w.lost, 0);
    let client = spans_of(&w.spans, "redis", "client", "redis-cli", r.port);
    let server = spans_of(&w.spans, "redis", "server", "redis-server", r.port);
    // redis-cli asks `COMMAND DOCS` first when it starts interactive help;
    // keep to the commands of the script.
    let wanted = ["SET", "GET", "GET", "LPUSH", "GET", "INCR", "PING"];
    let ours: Vec<_> = client
        .iter()
        .filter(|c| wanted.contains(&s(c, "request_type")))
        .collect();
    let got: Vec<(&str, &str, &str)> = ours
        .iter()
        .map(|c| {
            (
                s(c, "request_type"),
                s(c, "request_resource"),
                s(c, "response_status"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("SET", "greeting", "ok"),
            ("GET", "greeting", "ok"),
            ("GET", "nothing", "ok"),
            ("LPUSH", "list", "ok"),
            ("GET", "list", "client_error"),
            ("INCR", "counter", "ok"),
            ("PING", "", "ok"),
        ],
        "{:#?}",
        w.spans
    );
    assert!(
        s(ours[4], "exception").starts_with("WRONGTYPE"),
        "{}",
        ours[4]
    );
    check_twins(&client, &server);
    assert_eq!(client.len(), server.len());
}

/// redis-benchmark pipelines 16 commands per write: every one is a span.
#[test]
fn redis_benchmark_pipelined_counts() {
    let _g = serial();
    let r = redis();
    let port = r.port.to_string();
    let Some(watch) = Watch::start(&["--port", &port]) else {
        return;
    };
    run_ok(Command::new("redis-benchmark").args([
        "-p", &port, "-c", "1", "-n", "2000", "-P", "16", "-t", "set,get", "-q",
    ]));
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    let client = spans_of(&w.spans, "redis", "client", "redis-benchmark", r.port);
    let server = spans_of(&w.spans, "redis", "server", "redis-server", r.port);
    for (side, spans) in [("client", &client), ("server", &server)] {
        for cmd in ["SET", "GET"] {
            let count = spans
                .iter()
                .filter(|sp| {
                    s(sp, "request_type") == cmd && s(sp, "request_resource") == "key:__rand_int__"
                })
                .filter(|sp| s(sp, "response_status") == "ok")
                .count();
            assert_eq!(count, 2000, "{side} {cmd} spans; {}", w.stats_line);
        }
    }
    check_twins(&client, &server);
}

/// psql's simple queries, errors included, and pgbench's extended-protocol
/// batches (Parse/Bind/Describe/Execute/Sync in one write).
#[test]
fn postgresql_psql_and_pgbench_extended() {
    let _g = serial();
    let pg = postgres();
    let port = pg.port.to_string();
    let conn = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "postgres"];
    run_ok(
        Command::new("pgbench")
            .args(conn)
            .args(["-i", "-s", "1", "-q", "postgres"]),
    );
    let Some(watch) = Watch::start(&["--port", &port]) else {
        return;
    };
    let statements = [
        ("SELECT 1", "ok"),
        ("CREATE TABLE t (id int PRIMARY KEY)", "ok"),
        ("INSERT INTO t VALUES (1)", "ok"),
        ("INSERT INTO t VALUES (1)", "client_error"), // 23505 unique violation
        ("SELECT * FROM nope", "client_error"),       // 42P01 undefined table
    ];
    let mut psql = Command::new("psql");
    psql.args(conn).args(["-d", "postgres", "-X", "-q"]);
    for (sql, _) in statements {
        psql.args(["-c", sql]);
    }
    // psql exits 1 after an error; what matters is what it sent.
    let _ = psql.output().expect("psql (scripts/setup installs it)");
    run_ok(
        Command::new("pgbench")
            .args(conn)
            .args(["-M", "extended", "-n", "-c", "1", "-t", "30", "postgres"]),
    );
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);

    let client = spans_of(&w.spans, "postgresql", "client", "psql", pg.port);
    let server = spans_of(&w.spans, "postgresql", "server", "postgres", pg.port);
    let queries: Vec<(&str, &str)> = client
        .iter()
        .filter(|c| s(c, "request_type") == "Query")
        .map(|c| (s(c, "request_resource"), s(c, "response_status")))
        .collect();
    assert_eq!(queries, statements, "{:#?}", w.spans);
    // The database named at startup is the domain of every later span.
    let after_startup = client
        .iter()
        .skip_while(|c| s(c, "request_type") != "STARTUP");
    assert!(after_startup.clone().count() > statements.len());
    assert!(
        after_startup
            .clone()
            .all(|c| s(c, "request_domain") == "postgres"),
        "{client:#?}"
    );
    let errors: Vec<&str> = client
        .iter()
        .filter(|c| s(c, "response_status") == "client_error")
        .map(|c| s(c, "exception"))
        .collect();
    assert!(
        errors[0].contains("23505") || errors[0].contains("duplicate"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("42P01") || errors[1].contains("does not exist"),
        "{errors:?}"
    );
    check_twins(&client, &server);

    // pgbench's TPC-B-like transaction is 7 statements, each its own batch.
    let bench = spans_of(&w.spans, "postgresql", "client", "pgbench", pg.port);
    let batches = bench
        .iter()
        .filter(|c| s(c, "request_type") == "Parse")
        .count();
    assert_eq!(batches, 30 * 7, "pgbench extended batches");
    assert!(bench
        .iter()
        .filter(|c| s(c, "request_type") == "Parse")
        .all(|c| s(c, "response_status") == "ok"));
    let updates = bench
        .iter()
        .filter(|c| s(c, "request_resource").starts_with("UPDATE pgbench_accounts"))
        .count();
    assert_eq!(updates, 30);
    check_twins(&bench, &server);
}

/// The mariadb client's COM_QUERY statements, errors included, and
/// mysqlslap's load.
#[test]
fn mysql_client_queries_and_mysqlslap() {
    let _g = serial();
    let db = mariadb();
    let port = db.port.to_string();
    let conn = ["-h", "127.0.0.1", "-P", port.as_str(), "-u", "root"];
    let Some(watch) = Watch::start(&["--port", &port]) else {
        return;
    };
    let statements = [
        ("SELECT 1", "ok", None),
        ("CREATE DATABASE d", "ok", None),
        ("CREATE TABLE d.t (id INT PRIMARY KEY)", "ok", None),
        ("INSERT INTO d.t VALUES (1)", "ok", None),
        ("INSERT INTO d.t VALUES (1)", "client_error", Some(1062)), // duplicate key
        ("SELECT * FROM d.nope", "client_error", Some(1146)),       // no such table
    ];
    let sql: Vec<String> = statements.iter().map(|(q, _, _)| format!("{q};")).collect();
    // --force: go on after an error (it takes effect for statements read
    // from stdin, not for -e).
    let mut client = Command::new("mariadb")
        .args(conn)
        .arg("--force")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("mariadb client (scripts/setup installs it)");
    {
        use std::io::Write;
        let mut stdin = client.stdin.take().expect("stdin");
        stdin
            .write_all(sql.join("\n").as_bytes())
            .expect("write SQL");
    }
    let _ = client.wait().expect("mariadb client");
    run_ok(Command::new("mysqlslap").args(conn).args([
        "--concurrency=1",
        "--iterations=1",
        "--number-of-queries=100",
        "--auto-generate-sql",
    ]));
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);

    let client = spans_of(&w.spans, "mysql", "client", "mariadb", db.port);
    let server = spans_of(&w.spans, "mysql", "server", "mariadbd", db.port);
    let queries: Vec<(&str, &str, Option<i64>)> = client
        .iter()
        .filter(|c| s(c, "request_type") == "COM_QUERY")
        .filter(|c| {
            statements
                .iter()
                .any(|(q, _, _)| *q == s(c, "request_resource"))
        })
        .map(|c| {
            (
                s(c, "request_resource"),
                s(c, "response_status"),
                field(c, "response_code").as_i64(),
            )
        })
        .collect();
    let want: Vec<(&str, &str, Option<i64>)> = statements.to_vec();
    assert_eq!(queries, want, "{:#?}", w.spans);
    check_twins(&client, &server);

    let slap = spans_of(&w.spans, "mysql", "client", "mysqlslap", db.port);
    let slap_queries = slap
        .iter()
        .filter(|c| s(c, "request_type") == "COM_QUERY")
        .count();
    assert!(
        slap_queries >= 100,
        "mysqlslap sent at least its 100 queries: {slap_queries}"
    );
    check_twins(&slap, &server);
}

#[test]
fn protobuf_rpc_calls_match_what_the_client_saw() {
    let _g = serial();
    let port = free_port();
    let Some(watch) = Watch::start(&["--port", &port.to_string()]) else {
        return;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../causeway-l7/tests/fixtures/protobuf_rpc/record.py");
    let out =
        run_ok(
            Command::new("python3")
                .arg(&script)
                .args(["--live", "--port", &port.to_string()]),
        );
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    // What the client saw: correlation id, service, method, error code.
    let mut said: Vec<(u64, String, String, i64)> = out
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().expect("id"),
                f[1].to_owned(),
                f[2].to_owned(),
                f[3].parse().expect("code"),
            )
        })
        .collect();
    said.sort();
    assert_eq!(said.len(), 8, "{out}");
    for op in ["client", "server"] {
        let mut got: Vec<(u64, String, String, i64)> =
            spans_of(&w.spans, "protobuf_rpc", op, "python3", port)
                .iter()
                .map(|sp| {
                    (
                        n(sp, "request_id"),
                        s(sp, "request_resource").to_owned(),
                        s(sp, "request_type").to_owned(),
                        field(sp, "response_code").as_i64().expect("code"),
                    )
                })
                .collect();
        got.sort();
        assert_eq!(got, said, "{op} spans vs the client: {:#?}", w.spans);
    }
    let statuses: Vec<&str> = spans_of(&w.spans, "protobuf_rpc", "client", "python3", port)
        .iter()
        .map(|sp| s(sp, "response_status"))
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "client_error").count(), 2);
    assert_eq!(statuses.iter().filter(|s| **s == "server_error").count(), 2);
    check_twins(
        &spans_of(&w.spans, "protobuf_rpc", "client", "python3", port),
        &spans_of(&w.spans, "protobuf_rpc", "server", "python3", port),
    );
}
