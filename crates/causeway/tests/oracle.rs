//! tshark as an independent oracle: real servers driven by real clients,
//! watched live by `causeway watch` and captured by tshark at the same time;
//! then `causeway replay` reads the capture. Every request must come out the
//! same three ways: in tshark's dissection, in the live client and server
//! spans, and in the replayed (network) spans, with equal counts.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use support::*;

#[test]
fn http_nginx_and_curl_agree_with_tshark() {
    let _g = serial();
    let srv = nginx(&[("small.txt", 100), ("big.bin", 300_000)]);
    let port = srv.port;
    let base = format!("http://127.0.0.1:{port}");
    let Some((w, replayed, file)) = observe(port, &[], || {
        // Keep-alive: several requests per connection, a 404, a large
        // download, a POST whose body is far over the capture cap, and an
        // X-Request-ID.
        let out = Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
            ])
            .args(["-H", "X-Request-ID: oracle-1"])
            .arg(format!("{base}/small.txt"))
            .arg(format!("{base}/missing"))
            .arg(format!("{base}/big.bin"))
            .output()
            .expect("curl");
        assert!(out.status.success());
        let body = "b".repeat(50_000);
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "--data-binary", &body])
            .arg(format!("{base}/post"))
            .output()
            .expect("curl");
        assert!(out.status.success());
    }) else {
        return;
    };
    // tshark: each request with the status of the response that names it.
    let rows = tshark_fields(
        &file,
        None,
        "http",
        &[
            "frame.number",
            "http.request.method",
            "http.request.uri",
            "http.response.code",
            "http.request_in",
            "http.x_forwarded_for",
        ],
    );
    let mut requests: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut codes: BTreeMap<String, i64> = BTreeMap::new();
    for r in &rows {
        if !r[1].is_empty() {
            requests.insert(r[0].clone(), (r[1].clone(), r[2].clone()));
        }
        if !r[3].is_empty() {
            codes.insert(r[4].clone(), r[3].parse().expect("status code"));
        }
    }
    let oracle = bag(requests
        .iter()
        .map(|(frame, (m, uri))| (m.clone(), uri.clone(), codes.get(frame).copied())));
    assert_eq!(oracle.values().sum::<usize>(), 4, "tshark saw {rows:?}");

    let ours = |spans: &[&Value]| {
        bag(spans.iter().map(|sp| {
            (
                s(sp, "request_type").to_owned(),
                s(sp, "request_resource").to_owned(),
                field(sp, "response_code").as_i64(),
            )
        }))
    };
    let client = live(&w.spans, "http", "client", port);
    let server = live(&w.spans, "http", "server", port);
    let network: Vec<&Value> = replayed.iter().collect();
    assert_eq!(ours(&client), oracle, "live client spans vs tshark");
    assert_eq!(ours(&server), oracle, "live server spans vs tshark");
    assert_eq!(ours(&network), oracle, "replayed spans vs tshark");
    check_replay_matches_live(&replayed, &client);
    check_twins(&client, &server);
    assert!(network.iter().any(|sp| s(sp, "x_request_id") == "oracle-1"));
}

/// Commands of the Redis test whose first argument is their key.
const KEYED: [&str; 4] = ["SET", "GET", "LPUSH", "HSET"];

#[test]
fn redis_pipelined_agrees_with_tshark() {
    let _g = serial();
    let r = redis();
    let port = r.port;
    let Some((w, replayed, file)) = observe(port, &[], || {
        run_ok(Command::new("redis-benchmark").args([
            "-p",
            &port.to_string(),
            "-c",
            "1",
            "-n",
            "320",
            "-P",
            "16",
            "-t",
            "set,get,lpush",
            "-q",
        ]));
        let mut cli = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-cli");
        use std::io::Write;
        cli.stdin
            .take()
            .expect("stdin")
            .write_all(b"SET k v\nLPUSH k x\nGET nothing\nHSET h f v\nNOSUCHCMD a\n")
            .expect("write");
        assert!(cli.wait().expect("redis-cli").success());
    }) else {
        return;
    };
    // tshark: a request is an array whose first bulk string is the command
    // and the second, for these commands, the key; requests go to the port.
    let rows = tshark_fields(
        &file,
        Some((port, "resp")),
        &format!("resp && tcp.dstport == {port}"),
        &["resp.array.length", "resp.bulk_string.value"],
    );
    let mut oracle = Vec::new();
    for r in &rows {
        let lens = occurrences(&r[0]);
        let values = occurrences(&r[1]);
        let mut at = 0;
        for len in lens {
            let len: usize = len.parse().expect("array length");
            let text = |hex: &str| {
                let bytes: Vec<u8> = (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
                    .collect();
                String::from_utf8_lossy(&bytes).into_owned()
            };
            let cmd = text(values[at]).to_uppercase();
            let key = if len > 1 && KEYED.contains(&cmd.as_str()) {
                text(values[at + 1])
            } else {
                String::new()
            };
            oracle.push((cmd, key));
            at += len;
        }
    }
    let errors = tshark_fields(
        &file,
        Some((port, "resp")),
        &format!("resp.error && tcp.srcport == {port}"),
        &["resp.error"],
    );
    let oracle_errors = bag(errors.iter().flat_map(|r| {
        occurrences(&r[0])
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    }));
    let oracle = bag(oracle);
    assert!(oracle.values().sum::<usize>() >= 3 * 320 + 5, "{oracle:?}");

    let check = |what: &str, spans: &[&Value]| {
        // The command word (ours names subcommands too: `CONFIG GET`), and
        // the key for the commands whose first argument is one.
        let got = bag(spans.iter().map(|sp| {
            let cmd = s(sp, "request_type").split(' ').next().unwrap_or_default();
            let key = if KEYED.contains(&cmd) {
                s(sp, "request_resource")
            } else {
                ""
            };
            (cmd.to_owned(), key.to_owned())
        }));
        assert_eq!(got, oracle, "{what} vs tshark");
        let errs = bag(spans
            .iter()
            .filter(|sp| !s(sp, "exception").is_empty())
            .map(|sp| s(sp, "exception").to_owned()));
        assert_eq!(errs, oracle_errors, "{what} errors vs tshark");
    };
    let client = live(&w.spans, "redis", "client", port);
    let server = live(&w.spans, "redis", "server", port);
    check("live client", &client);
    check("live server", &server);
    check("replayed", &replayed.iter().collect::<Vec<_>>());
    check_replay_matches_live(&replayed, &client);
}

#[test]
fn postgresql_agrees_with_tshark() {
    let _g = serial();
    let pg = postgres();
    let port = pg.port;
    let p = port.to_string();
    let conn = ["-h", "127.0.0.1", "-p", p.as_str(), "-U", "postgres"];
    run_ok(
        Command::new("pgbench")
            .args(conn)
            .args(["-i", "-s", "1", "-q", "postgres"]),
    );
    let Some((w, replayed, file)) = observe(port, &[], || {
        let mut psql = Command::new("psql");
        psql.args(conn).args(["-d", "postgres", "-X", "-q"]);
        for sql in [
            "SELECT 1",
            "CREATE TABLE t (id int PRIMARY KEY)",
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t VALUES (1)",
            "SELECT * FROM nope",
        ] {
            psql.args(["-c", sql]);
        }
        let _ = psql.output().expect("psql");
        run_ok(
            Command::new("pgbench")
                .args(conn)
                .args(["-M", "extended", "-n", "-c", "1", "-t", "20", "postgres"]),
        );
    }) else {
        return;
    };
    // tshark: simple queries and Parse messages (the head of each extended
    // batch) with their SQL; error SQLSTATEs.
    let rows = tshark_fields(
        &file,
        Some((port, "pgsql")),
        &format!("pgsql && tcp.dstport == {port}"),
        &["pgsql.type", "pgsql.query"],
    );
    let mut oracle = Vec::new();
    for r in &rows {
        let types = occurrences(&r[0]);
        let mut queries = occurrences(&r[1]).into_iter();
        for t in types {
            match t {
                "Simple query" => oracle.push((
                    "Query".to_owned(),
                    queries.next().unwrap_or_default().to_owned(),
                )),
                "Parse" => oracle.push((
                    "Parse".to_owned(),
                    queries.next().unwrap_or_default().to_owned(),
                )),
                _ => {}
            }
        }
    }
    let oracle = bag(oracle);
    assert_eq!(
        oracle
            .iter()
            .filter(|((t, _), _)| t == "Parse")
            .map(|(_, c)| c)
            .sum::<usize>(),
        20 * 7,
        "{oracle:?}"
    );
    let codes = tshark_fields(
        &file,
        Some((port, "pgsql")),
        &format!("pgsql.code && tcp.srcport == {port} && pgsql.type == \"Error\""),
        &["pgsql.code"],
    );
    let oracle_codes = bag(codes.iter().map(|r| r[0].clone()));
    assert_eq!(oracle_codes.values().sum::<usize>(), 2, "{codes:?}");

    let check = |what: &str, spans: &[&Value]| {
        let got = bag(spans
            .iter()
            .filter(|sp| matches!(s(sp, "request_type"), "Query" | "Parse"))
            .map(|sp| {
                (
                    s(sp, "request_type").to_owned(),
                    s(sp, "request_resource").to_owned(),
                )
            }));
        assert_eq!(got, oracle, "{what} vs tshark");
        // `exception` is `SQLSTATE <code>: <message>`.
        let got_codes = bag(spans
            .iter()
            .filter_map(|sp| s(sp, "exception").strip_prefix("SQLSTATE "))
            .map(|e| e.split(':').next().unwrap_or_default().to_owned()));
        assert_eq!(got_codes, oracle_codes, "{what} SQLSTATEs vs tshark");
    };
    let client = live(&w.spans, "postgresql", "client", port);
    let server = live(&w.spans, "postgresql", "server", port);
    check("live client", &client);
    check("live server", &server);
    check("replayed", &replayed.iter().collect::<Vec<_>>());
    check_replay_matches_live(&replayed, &client);
}

#[test]
fn mysql_agrees_with_tshark() {
    let _g = serial();
    let db = mariadb();
    let port = db.port;
    let p = port.to_string();
    let conn = ["-h", "127.0.0.1", "-P", p.as_str(), "-u", "root"];
    let Some((w, replayed, file)) = observe(port, &[], || {
        let mut client = Command::new("mariadb")
            .args(conn)
            .arg("--force")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mariadb client");
        {
            use std::io::Write;
            let mut stdin = client.stdin.take().expect("stdin");
            stdin
                .write_all(
                    b"SELECT 1;\nCREATE DATABASE d;\nCREATE TABLE d.t (id INT PRIMARY KEY);\n\
                      INSERT INTO d.t VALUES (1);\nINSERT INTO d.t VALUES (1);\nSELECT * FROM d.nope;\n",
                )
                .expect("write SQL");
        }
        let _ = client.wait().expect("mariadb client");
        run_ok(Command::new("mysqlslap").args(conn).args([
            "--concurrency=1",
            "--iterations=1",
            "--number-of-queries=60",
            "--auto-generate-sql",
        ]));
    }) else {
        return;
    };
    let rows = tshark_fields(
        &file,
        Some((port, "mysql")),
        &format!("mysql.command == 3 && tcp.dstport == {port}"),
        &["mysql.query"],
    );
    let oracle = bag(rows.iter().flat_map(|r| {
        occurrences(&r[0])
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    }));
    let errors = tshark_fields(
        &file,
        Some((port, "mysql")),
        &format!("mysql.error_code && tcp.srcport == {port}"),
        &["mysql.error_code"],
    );
    let oracle_errors = bag(errors.iter().map(|r| r[0].parse::<i64>().expect("code")));
    assert!(oracle_errors.contains_key(&1062) && oracle_errors.contains_key(&1146));

    let check = |what: &str, spans: &[&Value]| {
        let got = bag(spans
            .iter()
            .filter(|sp| s(sp, "request_type") == "COM_QUERY")
            .map(|sp| s(sp, "request_resource").to_owned()));
        assert_eq!(got, oracle, "{what} COM_QUERY vs tshark");
        let errs = bag(spans
            .iter()
            .filter(|sp| matches!(s(sp, "response_status"), "client_error" | "server_error"))
            .filter_map(|sp| field(sp, "response_code").as_i64()));
        assert_eq!(errs, oracle_errors, "{what} error codes vs tshark");
    };
    let client = live(&w.spans, "mysql", "client", port);
    let server = live(&w.spans, "mysql", "server", port);
    check("live client", &client);
    check("live server", &server);
    check("replayed", &replayed.iter().collect::<Vec<_>>());
    check_replay_matches_live(&replayed, &client);
}

#[test]
fn dns_over_udp_and_tcp_agrees_with_tshark() {
    let _g = serial();
    let srv = dnsmasq();
    let port = srv.port;
    let Some((w, replayed, file)) = observe(port, &[], || {
        for (args, tcp) in [
            (&["www.example.test", "A"][..], false),
            (&["www.example.test", "AAAA"], false),
            (&["example.test", "MX"], false),
            (&["example.test", "TXT"], false),
            (&["nothere.example.test", "A"], false),
            (&["outside.invalid", "A"], false),
            (&["www.example.test", "A"], true),
            (&["nothere.example.test", "A"], true),
        ] {
            let mut dig = Command::new("dig");
            dig.args(["@127.0.0.1", "-p", &port.to_string(), "+tries=1", "+time=2"])
                .arg(if tcp { "+tcp" } else { "+notcp" })
                .args(args);
            run_ok(&mut dig);
        }
    }) else {
        return;
    };
    // tshark: each answer's id, name, type and rcode.
    let rows = tshark_fields(
        &file,
        Some((port, "dns")),
        "dns.flags.response == 1",
        &["dns.id", "dns.qry.name", "dns.qry.type", "dns.flags.rcode"],
    );
    let type_name = |t: &str| match t {
        "1" => "A",
        "28" => "AAAA",
        "15" => "MX",
        "16" => "TXT",
        other => panic!("type {other}"),
    };
    let oracle = bag(rows.iter().map(|r| {
        (
            u64::from_str_radix(r[0].trim_start_matches("0x"), 16).expect("id"),
            r[1].clone(),
            type_name(&r[2]).to_owned(),
            r[3].parse::<i64>().expect("rcode"),
        )
    }));
    assert_eq!(oracle.values().sum::<usize>(), 8, "{rows:?}");
    let ours = |spans: &[&Value]| {
        bag(spans.iter().map(|sp| {
            (
                n(sp, "request_id"),
                s(sp, "request_resource").to_owned(),
                s(sp, "request_type").to_owned(),
                field(sp, "response_code").as_i64().expect("rcode"),
            )
        }))
    };
    let client = live(&w.spans, "dns", "client", port);
    let server = live(&w.spans, "dns", "server", port);
    assert_eq!(ours(&client), oracle, "live client (dig) spans vs tshark");
    assert_eq!(
        ours(&server),
        oracle,
        "live server (dnsmasq) spans vs tshark"
    );
    assert_eq!(
        ours(&replayed.iter().collect::<Vec<_>>()),
        oracle,
        "replayed spans vs tshark"
    );
    for sp in &client {
        let (code, status) = (n(sp, "response_code"), s(sp, "response_status"));
        let want = match code {
            0 => "ok",
            3 | 5 => "client_error",
            _ => "server_error",
        };
        assert_eq!(status, want, "{sp}");
    }
    assert!(client.iter().any(|sp| s(sp, "result") == "10.1.2.3"));
    assert!(client.iter().any(|sp| s(sp, "result") == "fd00::5"));
    assert!(client.iter().any(|sp| s(sp, "l4_protocol") == "udp"));
    assert!(client.iter().any(|sp| s(sp, "l4_protocol") == "tcp"));
}

#[test]
fn mqtt_311_and_5_agree_with_tshark() {
    let _g = serial();
    let srv = mosquitto();
    let port = srv.port;
    let p = port.to_string();
    let Some((w, replayed, file)) = observe(port, &[], || {
        // A subscriber per version, each waiting for two messages, then
        // publishers at QoS 0, 1 and 2 with both versions.
        let subs: Vec<_> = ["mqttv311", "mqttv5"]
            .iter()
            .map(|v| {
                Command::new("mosquitto_sub")
                    .args(["-h", "127.0.0.1", "-p", &p, "-V", v, "-q", "1", "-C", "3"])
                    .args(["-t", "causeway/test", "-i", &format!("sub-{v}")])
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("mosquitto_sub (scripts/setup installs it)")
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(500));
        for (v, q) in [("mqttv311", "0"), ("mqttv311", "1"), ("mqttv5", "2")] {
            run_ok(
                Command::new("mosquitto_pub")
                    .args(["-h", "127.0.0.1", "-p", &p, "-V", v, "-q", q])
                    .args([
                        "-t",
                        "causeway/test",
                        "-m",
                        "hello",
                        "-i",
                        &format!("pub-{v}-{q}"),
                    ]),
            );
        }
        for mut s in subs {
            assert!(s.wait().expect("mosquitto_sub").success());
        }
    }) else {
        return;
    };
    // tshark: the packets each side sent that expect an answer, with topic
    // and packet id: the clients' towards the broker, the broker's (its
    // QoS 1 and 2 deliveries) from it.
    let oracle = mqtt_asks(&file, port, &format!("tcp.dstport == {port}"));
    let delivered = mqtt_asks(&file, port, &format!("tcp.srcport == {port}"));
    let ours = |spans: &[&Value]| {
        // Every ask was answered: a timeout span would not compare equal.
        bag(spans
            .iter()
            .filter(|sp| s(sp, "response_status") == "ok")
            .map(|sp| {
                (
                    s(sp, "request_type").to_owned(),
                    if s(sp, "request_type") == "CONNECT" {
                        String::new()
                    } else {
                        s(sp, "request_resource").to_owned()
                    },
                    field(sp, "request_id").as_u64(),
                )
            }))
    };
    // 5 CONNECTs, a QoS 1 and a QoS 2 PUBLISH, a PUBREL, 2 SUBSCRIBEs; each
    // subscriber is sent both at QoS 1.
    assert_eq!(oracle.values().sum::<usize>(), 5 + 2 + 1 + 2, "{oracle:?}");
    assert_eq!(delivered.values().sum::<usize>(), 4, "{delivered:?}");
    // What clients asked the broker: client spans at the clients, server
    // spans at the broker, and from the capture the requests towards the port.
    let client = live(&w.spans, "mqtt", "client", port);
    let server = live(&w.spans, "mqtt", "server", port);
    assert!(client.iter().all(|sp| s(sp, "comm") != "mosquitto"));
    assert!(server.iter().all(|sp| s(sp, "comm") == "mosquitto"));
    assert_eq!(ours(&client), oracle, "live client spans vs tshark");
    assert_eq!(ours(&server), oracle, "live broker spans vs tshark");
    check_twins(&client, &server);
    let (towards, from): (Vec<&Value>, Vec<&Value>) = replayed
        .iter()
        .partition(|sp| n(sp, "dst_port") == port as u64);
    assert_eq!(
        ours(&towards),
        oracle,
        "replayed asks of the clients vs tshark"
    );
    check_replay_matches_live(&towards.into_iter().cloned().collect::<Vec<_>>(), &client);
    // The broker's deliveries: requests from the broker, answered by the
    // subscribers; the broker is their client.
    let from_broker = |op: &str| -> Vec<&Value> {
        w.spans
            .iter()
            .filter(|sp| s(sp, "protocol") == "mqtt" && s(sp, "observation_point") == op)
            .filter(|sp| n(sp, "src_port") == port as u64)
            .collect()
    };
    let (broker, subscribers) = (from_broker("client"), from_broker("server"));
    assert!(broker.iter().all(|sp| s(sp, "comm") == "mosquitto"));
    assert!(subscribers
        .iter()
        .all(|sp| s(sp, "comm") == "mosquitto_sub"));
    assert_eq!(ours(&broker), delivered, "live broker deliveries vs tshark");
    assert_eq!(
        ours(&subscribers),
        delivered,
        "live subscriber deliveries vs tshark"
    );
    assert_eq!(ours(&from), delivered, "replayed deliveries vs tshark");
    check_twins(&broker, &subscribers);
    // CONNACKs were read with the version CONNECT named.
    let connects: Vec<&&Value> = client
        .iter()
        .filter(|sp| s(sp, "request_type") == "CONNECT")
        .collect();
    assert!(connects
        .iter()
        .all(|sp| s(sp, "response_status") == "ok" && ["3.1.1", "5"].contains(&s(sp, "version"))));
}

/// The MQTT packets matching `direction` (a tshark filter) in `file` that
/// expect an answer: (type name, topic, packet id). CONNECTs have no topic;
/// QoS 0 PUBLISHes expect nothing and are left out.
fn mqtt_asks(
    file: &std::path::Path,
    port: u16,
    direction: &str,
) -> BTreeMap<(String, String, Option<u64>), usize> {
    let rows = tshark_fields(
        file,
        Some((port, "mqtt")),
        &format!("mqtt && {direction}"),
        &["mqtt.msgtype", "mqtt.qos", "mqtt.topic", "mqtt.msgid"],
    );
    // 1 CONNECT, 3 PUBLISH, 6 PUBREL, 8 SUBSCRIBE, 10 UNSUBSCRIBE, 12 PINGREQ.
    let name = |t: &str| match t {
        "1" => "CONNECT",
        "3" => "PUBLISH",
        "6" => "PUBREL",
        "8" => "SUBSCRIBE",
        "10" => "UNSUBSCRIBE",
        "12" => "PINGREQ",
        _ => "",
    };
    let mut asks = Vec::new();
    for r in &rows {
        // Several packets in one segment: their fields come in order.
        let (qos, topics, ids) = (occurrences(&r[1]), occurrences(&r[2]), occurrences(&r[3]));
        let (mut qi, mut ti, mut ii) = (0, 0, 0);
        for t in occurrences(&r[0]) {
            let (mut topic, mut id, mut q) = (String::new(), None, 0);
            if t == "3" {
                q = qos.get(qi).and_then(|v| v.parse().ok()).unwrap_or(0);
                qi += 1;
            }
            if matches!(t, "3" | "8" | "10") {
                topic = topics.get(ti).map(|s| s.to_string()).unwrap_or_default();
                ti += 1;
            }
            if matches!(t, "6" | "8" | "10") || (t == "3" && q > 0) {
                id = ids.get(ii).and_then(|v| v.parse::<u64>().ok());
                ii += 1;
            }
            if name(t).is_empty() || (t == "3" && q == 0) {
                continue;
            }
            asks.push((name(t).to_owned(), topic, id));
        }
    }
    bag(asks)
}
