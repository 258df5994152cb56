//! End to end for Dubbo and SOFARPC (Bolt v1 and v2): the real SOFARPC
//! Node server and client (`tests/fixtures/rpc`: sofa-rpc-node with
//! sofa-bolt-node or dubbo-remoting), the real BPF programs in `causeway
//! watch`, tshark capturing the same traffic, then `causeway replay` of
//! the capture. tshark dissects neither protocol, so the oracle is what
//! the client and the server printed about every call (request id,
//! service, method, outcome, error): the client's spans, the server's
//! spans and the replayed spans must each hold exactly those calls, with
//! those facts.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;
use support::*;

/// The W3C trace id the client's `traced` call carries.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
/// The SOFATracer trace id its `sofa_traced` call carries.
const SOFA_TRACE_ID: &str = "0a0fe8ec1526806853032100185011";

/// One call as the client and the server reported it.
#[derive(Debug, Clone)]
struct Call {
    scenario: String,
    service: String,
    method: String,
    ok: bool,
    error: String,
}

struct Protocol {
    /// `client.js --protocol`.
    client: &'static str,
    /// `server.js --protocol`.
    server: &'static str,
    /// The span's `protocol`.
    span: &'static str,
    version: &'static str,
    ok_code: i64,
    /// What the framework answers every failure with.
    error_code: i64,
}

const DUBBO: Protocol = Protocol {
    client: "dubbo",
    server: "dubbo",
    span: "dubbo",
    // dubbo-remoting names Dubbo 5.3.0 in every call.
    version: "5.3.0",
    ok_code: 20,
    // SERVER_ERROR, the error message as the body.
    error_code: 80,
};

const BOLT: Protocol = Protocol {
    client: "bolt",
    server: "bolt",
    span: "sofarpc",
    version: "1",
    ok_code: 0,
    // SERVER_EXCEPTION with an RpcServerException.
    error_code: 2,
};

const BOLT2: Protocol = Protocol {
    client: "bolt2",
    version: "2",
    ..BOLT
};

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
}

/// Runs every scenario of the client against a fresh server while watch
/// and tshark look, and checks the three views of it against the two
/// programs' reports.
fn calls_agree_with_client_and_server(p: &Protocol) {
    let _g = serial();
    let (server, server_lines) = rpc_server(p.server);
    let port = server.port;
    let Some(watch) = Watch::start(&["--port", &port.to_string()]) else {
        return;
    };
    let tshark = Tshark::start(port);
    let out = run_ok(
        Command::new("node")
            .arg(fixtures().join("rpc/client.js"))
            .args(["--protocol", p.client, "--port", &port.to_string()]),
    );
    let file = tshark.stop();
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    // The server prints a call once its answer is written.
    std::thread::sleep(Duration::from_millis(200));
    let served: Vec<Value> = server_lines
        .try_iter()
        .map(|l| json(&l))
        .filter(|v| v["event"] != "listening")
        .collect();
    drop(server);

    // What the client said, by request id.
    let mut calls: BTreeMap<u64, Call> = BTreeMap::new();
    for v in out.lines().map(json) {
        let id = v["request_id"].as_u64().expect("request id");
        let call = match v["event"].as_str() {
            Some("call") => Call {
                scenario: v["scenario"].as_str().unwrap_or_default().to_owned(),
                service: v["service"].as_str().unwrap_or_default().to_owned(),
                method: v["method"].as_str().unwrap_or_default().to_owned(),
                ok: v["ok"].as_bool().expect("ok"),
                error: v["error"].as_str().unwrap_or_default().to_owned(),
            },
            _ => Call {
                scenario: "heartbeat".into(),
                service: String::new(),
                method: "heartbeat".into(),
                ok: true,
                error: String::new(),
            },
        };
        assert!(calls.insert(id, call).is_none(), "request id {id} twice");
    }
    // 12 calls and one heartbeat.
    assert_eq!(calls.len(), 13, "{out}");
    // The server saw the same calls, with the same outcome.
    assert_eq!(served.len(), calls.len(), "{served:?}");
    for v in &served {
        let id = v["request_id"].as_u64().expect("request id");
        let c = &calls[&id];
        if v["event"] == "call" {
            assert_eq!(v["service"].as_str(), Some(c.service.as_str()));
            assert_eq!(v["method"].as_str(), Some(c.method.as_str()));
            assert_eq!(v["result_code"] == "00", c.ok, "{v}");
        } else {
            assert_eq!(c.method, "heartbeat");
        }
    }

    let (replayed, stats) = replay(&file, port);
    let replayed: Vec<Value> = replayed
        .into_iter()
        .filter(|sp| s(sp, "protocol") == p.span)
        .collect();
    let client = spans_of(&w.spans, p.span, "client", "node", port);
    let server = spans_of(&w.spans, p.span, "server", "node", port);
    let views = [
        ("client", client.clone()),
        ("server", server.clone()),
        ("replayed", replayed.iter().collect()),
    ];
    for (view, spans) in views {
        let mut by_id = BTreeMap::new();
        for sp in &spans {
            let id = n(sp, "request_id");
            assert!(by_id.insert(id, *sp).is_none(), "{view}: id {id} twice");
        }
        assert_eq!(
            by_id.keys().collect::<Vec<_>>(),
            calls.keys().collect::<Vec<_>>(),
            "{view} spans are the calls: {spans:#?}\n{stats}"
        );
        for (id, c) in &calls {
            let sp = by_id[id];
            let ctx = format!("{view} {}: {sp}", c.scenario);
            assert_eq!(s(sp, "request_type"), c.method, "{ctx}");
            assert_eq!(s(sp, "request_resource"), c.service, "{ctx}");
            let code = field(sp, "response_code").as_i64();
            if c.method == "heartbeat" {
                assert_eq!(code, Some(p.ok_code), "{ctx}");
                continue;
            }
            assert_eq!(s(sp, "version"), p.version, "{ctx}");
            assert_eq!(
                s(sp, "endpoint"),
                format!("{}/{}", c.service, c.method),
                "{ctx}"
            );
            if c.ok {
                assert_eq!(code, Some(p.ok_code), "{ctx}");
                assert_eq!(s(sp, "response_status"), "ok", "{ctx}");
                assert_eq!(s(sp, "exception"), "", "{ctx}");
            } else {
                assert_eq!(code, Some(p.error_code), "{ctx}");
                assert_eq!(s(sp, "response_status"), "server_error", "{ctx}");
                assert_eq!(s(sp, "exception"), c.error, "{ctx}");
            }
            let trace = match c.scenario.as_str() {
                "traced" => TRACE_ID,
                "sofa_traced" if p.span == "sofarpc" => SOFA_TRACE_ID,
                _ => "",
            };
            assert_eq!(s(sp, "trace_id"), trace, "{ctx}");
            if c.scenario == "big" {
                assert!(n(sp, "request_length") > 40_000, "{ctx}");
                assert!(n(sp, "response_length") > 40_000, "{ctx}");
            }
        }
    }
    // The concurrent calls went out in one order and were answered in the
    // other, on one connection: each span still has its own answer.
    let mut concurrent: Vec<&&Value> = client
        .iter()
        .filter(|sp| s(sp, "request_type") == "sleep")
        .collect();
    concurrent.sort_by_key(|sp| n(sp, "end_time_us"));
    let ids: Vec<u64> = concurrent.iter().map(|sp| n(sp, "request_id")).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.windows(2).all(|w| w[0] > w[1]),
        "answered last first: {ids:?}"
    );
    check_twins(&client, &server);
    check_replay_matches_live(&replayed, &client);
}

#[test]
fn dubbo_calls_agree_with_client_and_server() {
    calls_agree_with_client_and_server(&DUBBO);
}

#[test]
fn sofarpc_bolt_v1_calls_agree_with_client_and_server() {
    calls_agree_with_client_and_server(&BOLT);
}

#[test]
fn sofarpc_bolt_v2_calls_agree_with_client_and_server() {
    calls_agree_with_client_and_server(&BOLT2);
}

/// PyPI's dubbo-python (another Dubbo implementation: Dubbo 2.4.10 framing,
/// its own hessian2 writer) against the same Node server: the client's and
/// the server's spans hold every call in order with the facts both
/// programs reported.
#[test]
fn dubbo_python_client_calls_agree_with_client_and_server() {
    let _g = serial();
    let (server, server_lines) = rpc_server("dubbo");
    let port = server.port;
    let Some(watch) = Watch::start(&["--port", &port.to_string()]) else {
        return;
    };
    let out = run_ok(
        Command::new("python3")
            .arg(fixtures().join("rpc/client.py"))
            .args(["--port", &port.to_string()]),
    );
    let w = watch.stop();
    assert_eq!(w.lost, 0, "{}", w.stats_line);
    std::thread::sleep(Duration::from_millis(200));
    let served: Vec<Value> = server_lines
        .try_iter()
        .map(|l| json(&l))
        .filter(|v| v["event"] == "call")
        .collect();
    drop(server);
    let said: Vec<Value> = out.lines().map(json).collect();
    assert_eq!(said.len(), 5, "{out}");
    // The server saw the same calls in the same order, with the outcomes
    // the client reported.
    assert_eq!(served.len(), said.len(), "{served:?}");
    for (v, c) in served.iter().zip(&said) {
        assert_eq!(v["service"], c["service"], "{v} {c}");
        assert_eq!(v["method"], c["method"], "{v} {c}");
        assert_eq!(v["result_code"] == "00", c["ok"] == true, "{v} {c}");
    }
    let client = spans_of(&w.spans, "dubbo", "client", "python3", port);
    let server = spans_of(&w.spans, "dubbo", "server", "node", port);
    for (view, spans) in [("client", &client), ("server", &server)] {
        assert_eq!(spans.len(), said.len(), "{view}: {spans:#?}");
        for ((sp, c), v) in spans.iter().zip(&said).zip(&served) {
            let ctx = format!("{view}: {sp}");
            assert_eq!(
                n(sp, "request_id"),
                v["request_id"].as_u64().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                s(sp, "request_type"),
                c["method"].as_str().unwrap(),
                "{ctx}"
            );
            assert_eq!(
                s(sp, "request_resource"),
                c["service"].as_str().unwrap(),
                "{ctx}"
            );
            // What dubbo-python names in every call.
            assert_eq!(s(sp, "version"), "2.4.10", "{ctx}");
            if c["ok"] == true {
                assert_eq!(
                    field(sp, "response_code").as_i64(),
                    Some(DUBBO.ok_code),
                    "{ctx}"
                );
                assert_eq!(s(sp, "response_status"), "ok", "{ctx}");
            } else {
                assert_eq!(
                    field(sp, "response_code").as_i64(),
                    Some(DUBBO.error_code),
                    "{ctx}"
                );
                assert_eq!(s(sp, "response_status"), "server_error", "{ctx}");
                // The server's message, which the client's exception quotes.
                let e = s(sp, "exception");
                assert!(e.contains("boom from python"), "{ctx}");
                assert!(c["error"].as_str().unwrap().contains(e.trim()), "{ctx} {c}");
            }
        }
        assert!(
            n(spans[4], "request_length") > 3000,
            "{view}: the long echo"
        );
    }
    check_twins(&client, &server);
}
