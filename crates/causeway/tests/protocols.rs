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
