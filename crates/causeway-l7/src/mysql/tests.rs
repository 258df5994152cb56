use super::*;
use MessageKind::{Request, Response};

/// A recorded fixture (tests/fixtures/mysql, see record.py there): what
/// MariaDB 10.11 and its clients (PyMySQL, the mariadb CLI, a raw client)
/// sent through a relay.
macro_rules! fx {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mysql/",
            $name
        ))
        .as_slice()
    };
}

const REQUESTS: &[(&str, &[u8])] = &[
    ("login", fx!("login.req")),
    ("set_names", fx!("set_names.req")),
    ("select_1", fx!("select_1.req")),
    ("create_table", fx!("create_table.req")),
    ("insert", fx!("insert.req")),
    ("select_rows", fx!("select_rows.req")),
    ("select_empty", fx!("select_empty.req")),
    ("update", fx!("update.req")),
    ("syntax_error", fx!("syntax_error.req")),
    ("no_such_table", fx!("no_such_table.req")),
    ("duplicate_key", fx!("duplicate_key.req")),
    ("large_query", fx!("large_query.req")),
    ("large_result", fx!("large_result.req")),
    ("init_db", fx!("init_db.req")),
    ("init_db_unknown", fx!("init_db_unknown.req")),
    ("init_db_denied", fx!("init_db_denied.req")),
    ("ping", fx!("ping.req")),
    ("quit", fx!("quit.req")),
    ("multi_statement", fx!("multi_statement.req")),
    (
        "multi_statement_ok_first",
        fx!("multi_statement_ok_first.req"),
    ),
    ("stmt_prepare", fx!("stmt_prepare.req")),
    ("stmt_execute", fx!("stmt_execute.req")),
    ("stmt_reset", fx!("stmt_reset.req")),
    ("stmt_close", fx!("stmt_close.req")),
    ("stmt_prepare_insert", fx!("stmt_prepare_insert.req")),
    ("stmt_send_long_data", fx!("stmt_send_long_data.req")),
    ("stmt_execute_insert", fx!("stmt_execute_insert.req")),
    (
        "stmt_prepare_no_columns",
        fx!("stmt_prepare_no_columns.req"),
    ),
    ("stmt_prepare_error", fx!("stmt_prepare_error.req")),
    ("field_list", fx!("field_list.req")),
    ("statistics", fx!("statistics.req")),
    ("set_option", fx!("set_option.req")),
    ("reset_connection", fx!("reset_connection.req")),
    ("login_deprecate_eof", fx!("login_deprecate_eof.req")),
    ("select_1_deprecate_eof", fx!("select_1_deprecate_eof.req")),
    (
        "select_rows_deprecate_eof",
        fx!("select_rows_deprecate_eof.req"),
    ),
    (
        "select_empty_deprecate_eof",
        fx!("select_empty_deprecate_eof.req"),
    ),
    (
        "multi_statement_deprecate_eof",
        fx!("multi_statement_deprecate_eof.req"),
    ),
    (
        "stmt_prepare_deprecate_eof",
        fx!("stmt_prepare_deprecate_eof.req"),
    ),
    (
        "stmt_execute_deprecate_eof",
        fx!("stmt_execute_deprecate_eof.req"),
    ),
    ("stmt_execute_unknown", fx!("stmt_execute_unknown.req")),
    (
        "large_result_deprecate_eof",
        fx!("large_result_deprecate_eof.req"),
    ),
    ("session_track_use", fx!("session_track_use.req")),
    ("session_track_set", fx!("session_track_set.req")),
    ("auth_switch_login", fx!("auth_switch_login.req")),
    ("auth_switch_data", fx!("auth_switch_data.req")),
    ("login_bad_password", fx!("login_bad_password.req")),
    ("ssl_request", fx!("ssl_request.req")),
    ("too_many_connections", fx!("too_many_connections.req")),
    ("user_connection_limit", fx!("user_connection_limit.req")),
    ("lock_wait_set", fx!("lock_wait_set.req")),
    ("lock_wait_timeout", fx!("lock_wait_timeout.req")),
    ("login_mariadb_cli", fx!("login_mariadb_cli.req")),
    ("cli_query", fx!("cli_query.req")),
];

const RESPONSES: &[(&str, &[u8])] = &[
    ("greeting", fx!("greeting.resp")),
    ("login", fx!("login.resp")),
    ("set_names", fx!("set_names.resp")),
    ("select_1", fx!("select_1.resp")),
    ("create_table", fx!("create_table.resp")),
    ("insert", fx!("insert.resp")),
    ("select_rows", fx!("select_rows.resp")),
    ("select_empty", fx!("select_empty.resp")),
    ("update", fx!("update.resp")),
    ("syntax_error", fx!("syntax_error.resp")),
    ("no_such_table", fx!("no_such_table.resp")),
    ("duplicate_key", fx!("duplicate_key.resp")),
    ("large_query", fx!("large_query.resp")),
    ("large_result", fx!("large_result.resp")),
    ("init_db", fx!("init_db.resp")),
    ("init_db_unknown", fx!("init_db_unknown.resp")),
    ("init_db_denied", fx!("init_db_denied.resp")),
    ("ping", fx!("ping.resp")),
    ("multi_statement", fx!("multi_statement.resp")),
    (
        "multi_statement_ok_first",
        fx!("multi_statement_ok_first.resp"),
    ),
    ("stmt_prepare", fx!("stmt_prepare.resp")),
    ("stmt_execute", fx!("stmt_execute.resp")),
    ("stmt_reset", fx!("stmt_reset.resp")),
    ("stmt_prepare_insert", fx!("stmt_prepare_insert.resp")),
    ("stmt_execute_insert", fx!("stmt_execute_insert.resp")),
    (
        "stmt_prepare_no_columns",
        fx!("stmt_prepare_no_columns.resp"),
    ),
    ("stmt_prepare_error", fx!("stmt_prepare_error.resp")),
    ("field_list", fx!("field_list.resp")),
    ("statistics", fx!("statistics.resp")),
    ("set_option", fx!("set_option.resp")),
    ("reset_connection", fx!("reset_connection.resp")),
    ("select_1_deprecate_eof", fx!("select_1_deprecate_eof.resp")),
    (
        "select_rows_deprecate_eof",
        fx!("select_rows_deprecate_eof.resp"),
    ),
    (
        "select_empty_deprecate_eof",
        fx!("select_empty_deprecate_eof.resp"),
    ),
    (
        "multi_statement_deprecate_eof",
        fx!("multi_statement_deprecate_eof.resp"),
    ),
    (
        "stmt_prepare_deprecate_eof",
        fx!("stmt_prepare_deprecate_eof.resp"),
    ),
    (
        "stmt_execute_deprecate_eof",
        fx!("stmt_execute_deprecate_eof.resp"),
    ),
    ("stmt_execute_unknown", fx!("stmt_execute_unknown.resp")),
    (
        "large_result_deprecate_eof",
        fx!("large_result_deprecate_eof.resp"),
    ),
    ("session_track_use", fx!("session_track_use.resp")),
    ("session_track_set", fx!("session_track_set.resp")),
    ("auth_switch_login", fx!("auth_switch_login.resp")),
    ("auth_switch_data", fx!("auth_switch_data.resp")),
    ("login_bad_password", fx!("login_bad_password.resp")),
    ("ssl_request", fx!("ssl_request.resp")),
    ("too_many_connections", fx!("too_many_connections.resp")),
    ("user_connection_limit", fx!("user_connection_limit.resp")),
    ("lock_wait_set", fx!("lock_wait_set.resp")),
    ("lock_wait_timeout", fx!("lock_wait_timeout.resp")),
    ("login_mariadb_cli", fx!("login_mariadb_cli.resp")),
    ("cli_query", fx!("cli_query.resp")),
];

fn req(name: &str) -> &'static [u8] {
    lookup(REQUESTS, name)
}

fn resp(name: &str) -> &'static [u8] {
    lookup(RESPONSES, name)
}

fn lookup(table: &[(&str, &'static [u8])], name: &str) -> &'static [u8] {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

fn request(name: &str) -> Head<'static> {
    parse(req(name), Request).unwrap_or_else(|e| panic!("{name}.req: {e}"))
}

fn response(name: &str) -> Head<'static> {
    parse(resp(name), Response).unwrap_or_else(|e| panic!("{name}.resp: {e}"))
}

fn len(b: &[u8]) -> Option<u64> {
    Some(b.len() as u64)
}

// --- every fixture -------------------------------------------------------------------

#[test]
fn every_fixture_parses_and_infers() {
    // Continuations of an exchange are not what a socket's first message
    // looks like; inference need not claim them.
    let not_inferred_req = ["auth_switch_data"];
    for (name, b) in REQUESTS {
        let h = parse(b, Request).unwrap_or_else(|e| panic!("{name}.req: {e}"));
        assert_eq!(h.message_len, len(b), "{name}.req: a request is one packet");
        let expect = (!not_inferred_req.contains(name)).then_some(Request);
        assert_eq!(infer(b), expect, "{name}.req");
        assert!(ends_message(b, Request), "{name}.req");
    }
    // Replies that ask the client for more during login, and a statistics
    // string, are too loose a shape to claim a socket by.
    let not_inferred_resp = ["auth_switch_login", "statistics"];
    for (name, b) in RESPONSES {
        let h = parse(b, Response).unwrap_or_else(|e| panic!("{name}.resp: {e}"));
        let expect = (!not_inferred_resp.contains(name)).then_some(Response);
        assert_eq!(infer(b), expect, "{name}.resp");
        // Whatever the reply, the whole of it ends the message: either its
        // head says so, or `ends_message` does.
        match h.message_len {
            Some(n) => assert_eq!(n, b.len() as u64, "{name}.resp"),
            None => assert!(ends_message(b, Response), "{name}.resp"),
        }
    }
}

#[test]
fn truncation_at_every_byte_never_panics() {
    for (name, b) in REQUESTS.iter().chain(RESPONSES) {
        // Every byte of the small ones; the big replies in strides.
        let step = if b.len() > 4096 { 97 } else { 1 };
        for cut in (0..=b.len()).step_by(step) {
            let p = &b[..cut];
            let _ = infer(p);
            for kind in [Request, Response] {
                let _ = parse(p, kind);
                let _ = ends_message(p, kind);
                let _ = statement_id(p, kind);
            }
            // Also the suffixes: later syscalls start anywhere.
            let s = &b[cut..];
            let _ = infer(s);
            for kind in [Request, Response] {
                let _ = parse(s, kind);
                let _ = ends_message(s, kind);
            }
        }
        // A cut request still names its command; a cut header is Incomplete.
        if b.len() > 4 && REQUESTS.iter().any(|(n, _)| n == name) {
            assert_eq!(parse(&b[..3], Request), Err(ParseError::Incomplete));
        }
    }
}

#[test]
fn multi_packet_replies_end_only_at_their_last_byte() {
    for (name, b) in RESPONSES {
        if parse(b, Response).unwrap().message_len.is_some() {
            continue;
        }
        for cut in 1..b.len() {
            if !ends_message(&b[..cut], Response) {
                continue;
            }
            // The one ambiguity: a prepare reply whose only definitions are
            // parameters ends with them under CLIENT_DEPRECATE_EOF, and with
            // one more EOF without it; nothing before says which.
            let eof_left = b.len() - cut == 9 && b[cut + 4] == 0xfe;
            assert!(
                name == &"stmt_prepare_insert" && eof_left,
                "{name}.resp cut at {cut} of {}",
                b.len()
            );
        }
    }
}

// --- connection setup --------------------------------------------------------------------

#[test]
fn greeting() {
    let b = resp("greeting");
    let h = response("greeting");
    // MariaDB's "5.5.5-" prefix is for old replication clients only.
    assert_eq!(h.version, "10.11.19-MariaDB-0+deb12u1");
    assert!(h.unpaired);
    assert_eq!(h.message_len, len(b));
    assert_eq!(h.response_status, None);
    assert_eq!(infer(b), Some(Response));
}

#[test]
fn login_names_user_and_database_never_auth_data() {
    for name in [
        "login",
        "login_deprecate_eof",
        "login_mariadb_cli",
        "auth_switch_login",
    ] {
        let h = request(name);
        assert_eq!(h.request_type, "LOGIN", "{name}");
        assert_eq!(h.request_resource, "user=cw", "{name}");
        assert_eq!(h.request_domain, "cwtest", "{name}");
        assert!(!h.unpaired, "{name}");
        assert!(h.exception.is_empty() && h.version.is_empty());
    }
    // PyMySQL without a database.
    let h = request("login_bad_password");
    assert_eq!(
        (&*h.request_type, &*h.request_resource, &*h.request_domain),
        ("LOGIN", "user=cw", "")
    );
    let h = response("login");
    assert_eq!(h.response_status, Some(ResponseStatus::Ok));
    assert!(!h.unpaired);
}

#[test]
fn login_errors() {
    let h = response("login_bad_password");
    assert_eq!(h.response_code, Some(1045));
    assert_eq!(h.response_status, Some(ResponseStatus::ClientError));
    assert_eq!(
        h.exception,
        "Access denied for user 'cw'@'localhost' (using password: YES)"
    );
    // MariaDB refuses a connection over the limit after the login.
    let h = response("too_many_connections");
    assert_eq!(h.response_code, Some(1040));
    assert_eq!(h.exception, "Too many connections");
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert!(!h.unpaired);
    let h = response("user_connection_limit");
    assert_eq!(h.response_code, Some(1226));
    assert_eq!(h.response_status, Some(ResponseStatus::ServerError));
    assert!(h.exception.starts_with("User 'cw' has exceeded"));
}

#[test]
fn auth_switch_is_between_login_and_its_reply() {
    // The server asks for another plugin; the client answers with auth
    // data; the OK ends the login. Only LOGIN and the OK pair.
    let h = response("auth_switch_login");
    assert!(h.unpaired);
    assert_eq!(h.message_len, len(resp("auth_switch_login")));
    let h = request("auth_switch_data");
    assert_eq!(h.request_type, "CONTINUATION");
    assert!(h.unpaired);
    assert!(h.request_resource.is_empty());
    let h = response("auth_switch_data");
    assert_eq!(h.response_status, Some(ResponseStatus::Ok));
    assert!(!h.unpaired);
}

#[test]
fn ssl_request() {
    let h = request("ssl_request");
    assert_eq!(h.request_type, "SSL_REQUEST");
    assert!(h.unpaired, "nothing in clear text answers it");
    assert_eq!(h.message_len, Some(36));
    // This server has no TLS, so it answered "Bad handshake".
    let h = response("ssl_request");
    assert_eq!(h.response_code, Some(1043));
    assert_eq!(h.exception, "Bad handshake");
    // What follows an SSL request on a TLS-capable server: TLS records.
    for tls in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03",
        b"\x17\x03\x03\x00\x45\x8a\x21",
        b"\x15\x03\x03\x00\x02\x02\x28",
    ] {
        assert_eq!(parse(tls, Response), Err(ParseError::Mismatch));
        assert_ne!(
            parse(tls, Request).map(|h| h.request_type),
            Ok("CONTINUATION".into())
        );
        assert_eq!(infer(tls), None);
    }
}

// --- commands ---------------------------------------------------------------------------------

#[test]
fn queries() {
    for (name, sql) in [
        ("select_1", "SELECT 1"),
        ("set_names", "SET NAMES utf8mb4"),
        (
            "insert",
            "INSERT INTO cw_items (name, price, note) VALUES ('apple', 1.25, 'red'), \
             ('pear', 2.50, NULL), ('plum', 0.99, 'blue'), ('fig', 3.10, NULL), \
             ('kiwi', 0.45, 'fuzzy')",
        ),
        (
            "select_rows",
            "SELECT id, name, price, note FROM cw_items ORDER BY id",
        ),
        ("syntax_error", "SELEC * FROM cw_items"),
        ("no_such_table", "SELECT * FROM cw_missing"),
        ("multi_statement", "SELECT 1 AS a; SELECT 2 AS b, 3 AS c"),
        ("session_track_use", "USE cwtest"),
        ("cli_query", "SELECT name FROM cw_items WHERE id = 3"),
    ] {
        let h = request(name);
        assert_eq!(h.request_type, "COM_QUERY", "{name}");
        assert_eq!(h.request_resource, sql, "{name}");
        assert_eq!(h.message_len, len(req(name)), "{name}");
        assert!(!h.unpaired && h.request_domain.is_empty(), "{name}");
        assert!(matches!(h.request_resource, Cow::Borrowed(_)), "{name}");
    }
}

#[test]
fn query_longer_than_the_capture() {
    let b = req("large_query");
    assert!(b.len() > 2000);
    let whole = request("large_query");
    assert!(whole.request_resource.ends_with("AS t"));
    for cap in [1024, 100, 6] {
        let h = parse(&b[..cap], Request).unwrap();
        assert_eq!(h.request_type, "COM_QUERY");
        assert_eq!(h.message_len, len(b), "the header tells the whole length");
        assert!(whole.request_resource.starts_with(&*h.request_resource));
        assert_eq!(h.request_resource.len(), cap - 5, "every SQL byte captured");
    }
    assert_eq!(infer(&b[..1024]), Some(Request));
    assert!(!ends_message(&b[..1024], Request));
}

#[test]
fn utf8_cut_by_the_capture_is_dropped() {
    let mut b = packet(
        0,
        &[b"\x03SELECT '".as_slice(), "héllo wörld".as_bytes()].concat(),
    );
    b.truncate(4 + 1 + 8 + 2); // inside the two bytes of é
    let h = parse(&b, Request).unwrap();
    assert_eq!(h.request_resource, "SELECT 'h");
    assert!(matches!(h.request_resource, Cow::Borrowed(_)));
    // Invalid bytes elsewhere (a latin1 literal) are replaced.
    let b = packet(0, b"\x03SELECT 'caf\xe9'");
    assert_eq!(
        parse(&b, Request).unwrap().request_resource,
        "SELECT 'caf\u{fffd}'"
    );
}

#[test]
fn other_commands() {
    let cases: &[(&str, &str, &str, &str, bool)] = &[
        // name, request_type, request_domain, request_resource, unpaired
        ("init_db", "COM_INIT_DB", "cwtest", "", false),
        ("init_db_unknown", "COM_INIT_DB", "cw_no_such_db", "", false),
        ("ping", "COM_PING", "", "", false),
        ("quit", "COM_QUIT", "", "", true),
        ("field_list", "COM_FIELD_LIST", "", "cw_items", false),
        ("statistics", "COM_STATISTICS", "", "", false),
        ("set_option", "COM_SET_OPTION", "", "", false),
        ("reset_connection", "COM_RESET_CONNECTION", "", "", false),
    ];
    for &(name, ty, domain, resource, unpaired) in cases {
        let h = request(name);
        assert_eq!(
            (
                &*h.request_type,
                &*h.request_domain,
                &*h.request_resource,
                h.unpaired
            ),
            (ty, domain, resource, unpaired),
            "{name}"
        );
    }
}

#[test]
fn prepared_statements() {
    let h = request("stmt_prepare");
    assert_eq!(h.request_type, "COM_STMT_PREPARE");
    assert_eq!(
        h.request_resource,
        "SELECT id, name FROM cw_items WHERE id > ? ORDER BY id"
    );
    // Ids come from the server: compare requests with the prepare replies.
    let select = statement_id(resp("stmt_prepare"), Response).unwrap();
    let insert = statement_id(resp("stmt_prepare_insert"), Response).unwrap();
    assert_ne!(select, insert);
    for (name, ty, id, unpaired) in [
        ("stmt_execute", "COM_STMT_EXECUTE", select, false),
        ("stmt_reset", "COM_STMT_RESET", select, false),
        ("stmt_close", "COM_STMT_CLOSE", select, true),
        (
            "stmt_send_long_data",
            "COM_STMT_SEND_LONG_DATA",
            insert,
            true,
        ),
        ("stmt_execute_insert", "COM_STMT_EXECUTE", insert, false),
        ("stmt_execute_unknown", "COM_STMT_EXECUTE", 0xdead, false),
    ] {
        let h = request(name);
        assert_eq!(h.request_type, ty, "{name}");
        assert_eq!(h.request_resource, format!("statement_id={id}"), "{name}");
        assert_eq!(h.unpaired, unpaired, "{name}");
        assert_eq!(statement_id(req(name), Request), Some(id), "{name}");
    }
    let id = statement_id(resp("stmt_prepare_deprecate_eof"), Response).unwrap();
    assert_eq!(
        statement_id(req("stmt_execute_deprecate_eof"), Request),
        Some(id)
    );
    assert_eq!(statement_id(req("stmt_prepare"), Request), None);
    assert_eq!(statement_id(resp("insert"), Response), None);

    // Prepare OKs: definitions follow unless there are none. Whole, the
    // reply's length is known when an EOF closes it; under
    // CLIENT_DEPRECATE_EOF nothing does, so whether more comes is for
    // `ends_message` on a whole write to tell. Without its last packet the
    // length is never known.
    for (name, last_packet, known) in [
        ("stmt_prepare", 9, true),
        ("stmt_prepare_insert", 9, true),
        ("stmt_prepare_deprecate_eof", 4 + 0x30, false),
    ] {
        let b = resp(name);
        let h = response(name);
        assert_eq!(h.response_status, Some(ResponseStatus::Ok), "{name}");
        assert_eq!(h.message_len, known.then_some(b.len() as u64), "{name}");
        assert!(ends_message(b, Response), "{name}");
        let cut = &b[..b.len() - last_packet];
        assert_eq!(parse(cut, Response).unwrap().message_len, None, "{name}");
    }
    let b = resp("stmt_prepare_no_columns");
    assert_eq!(response("stmt_prepare_no_columns").message_len, Some(16));
    assert_eq!(b.len(), 16);
    let h = response("stmt_prepare_error");
    assert_eq!(h.response_code, Some(1064));
    let h = response("stmt_execute_unknown");
    assert_eq!(h.response_code, Some(1243));
    assert!(h
        .exception
        .starts_with("Unknown prepared statement handler"));
    assert_eq!(h.response_status, Some(ResponseStatus::ClientError));
}

// --- replies ------------------------------------------------------------------------------------

#[test]
fn ok_replies() {
    for name in [
        "login",
        "set_names",
        "create_table",
        "insert",
        "update",
        "init_db",
        "ping",
        "stmt_reset",
        "stmt_execute_insert",
        "reset_connection",
        "session_track_use",
        "session_track_set",
        "lock_wait_set",
        "auth_switch_data",
        "login_mariadb_cli",
    ] {
        let h = response(name);
        assert_eq!(h.response_status, Some(ResponseStatus::Ok), "{name}");
        assert_eq!(h.response_code, None, "{name}");
        assert_eq!(h.message_len, len(resp(name)), "{name}");
        assert!(!h.unpaired && h.exception.is_empty(), "{name}");
    }
    // COM_SET_OPTION is answered by a lone EOF, COM_STATISTICS by text.
    for name in ["set_option", "statistics"] {
        let h = response(name);
        assert_eq!(h.response_status, Some(ResponseStatus::Ok), "{name}");
        assert_eq!(h.message_len, len(resp(name)), "{name}");
    }
}

#[test]
fn error_replies() {
    for (name, code, status, message) in [
        (
            "syntax_error",
            1064,
            ResponseStatus::ClientError,
            "You have an error in your SQL syntax; check the manual that corresponds to your \
             MariaDB server version for the right syntax to use near 'SELEC * FROM cw_items' at \
             line 1",
        ),
        (
            "no_such_table",
            1146,
            ResponseStatus::ClientError,
            "Table 'cwtest.cw_missing' doesn't exist",
        ),
        (
            "duplicate_key",
            1062,
            ResponseStatus::ClientError,
            "Duplicate entry '1' for key 'PRIMARY'",
        ),
        (
            "init_db_unknown",
            1049,
            ResponseStatus::ClientError,
            "Unknown database 'cw_no_such_db'",
        ),
        (
            "init_db_denied",
            1044,
            ResponseStatus::ClientError,
            "Access denied for user 'cw'@'localhost' to database 'mysql'",
        ),
        (
            "lock_wait_timeout",
            1205,
            ResponseStatus::ServerError,
            "Lock wait timeout exceeded; try restarting transaction",
        ),
    ] {
        let h = response(name);
        assert_eq!(h.response_code, Some(code), "{name}");
        assert_eq!(h.response_status, Some(status), "{name}");
        assert_eq!(h.exception, message, "{name}");
        assert!(matches!(h.exception, Cow::Borrowed(_)));
        assert_eq!(h.message_len, len(resp(name)), "{name}");
    }
}

#[test]
fn result_sets() {
    for name in [
        "select_1",
        "select_rows",
        "select_empty",
        "large_query",
        "multi_statement",
        "multi_statement_ok_first",
        "stmt_execute",
        "field_list",
        "select_1_deprecate_eof",
        "select_rows_deprecate_eof",
        "select_empty_deprecate_eof",
        "multi_statement_deprecate_eof",
        "stmt_execute_deprecate_eof",
        "cli_query",
        "large_result",
        "large_result_deprecate_eof",
    ] {
        let b = resp(name);
        let h = response(name);
        assert_eq!(h.response_status, Some(ResponseStatus::Ok), "{name}");
        // All of it captured: its length is known.
        assert_eq!(h.message_len, len(b), "{name}");
        assert!(ends_message(b, Response), "{name}");
        assert_eq!(walk_reply(b), Some(true), "{name}: the walk itself ends it");
        // Cut by the capture before its end: not.
        let cut = &b[..b.len().min(1024) - 1];
        assert_eq!(parse(cut, Response).unwrap().message_len, None, "{name}");
    }
}

#[test]
fn pipelined_replies_split() {
    // A client that pipelines commands may read several replies at once.
    for (first, second) in [
        ("select_1", "insert"),
        ("select_rows_deprecate_eof", "select_1_deprecate_eof"),
        ("stmt_prepare", "stmt_execute"),
        ("stmt_prepare_deprecate_eof", "stmt_execute_deprecate_eof"),
        ("stmt_prepare_insert", "stmt_execute_insert"),
        ("field_list", "ping"),
        ("multi_statement", "syntax_error"),
        ("insert", "select_rows"),
    ] {
        let (a, b) = (resp(first), resp(second));
        let both = [a, b].concat();
        let h = parse(&both, Response).unwrap();
        assert_eq!(h.message_len, len(a), "{first} then {second}");
        let h = parse(&both[a.len()..], Response).unwrap();
        assert_eq!(h.message_len, len(b), "{second}");
        assert!(ends_message(&both, Response), "{first} then {second}");
    }
}

#[test]
fn result_set_states() {
    // Classic: after the column definitions' EOF the rows are still to come.
    let b = resp("select_1");
    let after_defs_eof = 5 + 27 + 9;
    assert_eq!(walk_reply(&b[..after_defs_eof]), Some(false));
    assert!(!ends_message(&b[..after_defs_eof], Response));
    // Multi-statement: the first result's EOF says more results exist.
    let b = resp("multi_statement");
    let first = 5 + 27 + 9 + 6 + 9;
    assert_eq!(&b[first - 5..first - 3], b"\xfe\x00");
    assert_eq!(walk_reply(&b[..first]), Some(false));
    let b = resp("multi_statement_ok_first");
    let first = 4 + usize::from(b[0]);
    let ok = parse(&b[..first], Response).unwrap();
    assert_eq!(ok.message_len, None, "an OK announcing more results");
    assert_eq!(walk_reply(&b[..first]), Some(false));
    assert_eq!(response("multi_statement_ok_first").message_len, len(b));
}

/// Later syscalls of a big reply start inside a packet: MariaDB writes its
/// 16 KiB network buffer whole.
#[test]
fn big_reply_in_server_writes() {
    for name in ["large_result", "large_result_deprecate_eof"] {
        let b = resp(name);
        for size in [16384, 8192, 4096, 1500, 1000, 333] {
            let chunks: Vec<&[u8]> = b.chunks(size).collect();
            assert!(chunks.len() >= 3, "{name}");
            let (last, rest) = chunks.split_last().unwrap();
            for (i, c) in rest.iter().enumerate() {
                assert!(!ends_message(c, Response), "{name} {size} chunk {i}");
            }
            // A last write that holds only the end of the final packet (it
            // straddled the buffer boundary) cannot tell; the reply then
            // ends when the client speaks again.
            let whole_final = if name.ends_with("deprecate_eof") {
                11
            } else {
                9
            };
            assert_eq!(
                ends_message(last, Response),
                last.len() >= whole_final,
                "{name} {size}: last chunk of {}",
                last.len()
            );
        }
    }
}

#[test]
fn final_packet_found_from_the_end() {
    // Row bytes, then a final packet, as the last write of a reply.
    let rows = b"row data \x05\x00\x00 without a header that fits".as_slice();
    let eof = |status: u16| {
        let mut v = b"\x05\x00\x00\x09\xfe\x00\x00".to_vec();
        v.extend(status.to_le_bytes());
        v
    };
    let tail = [rows, &eof(0x0002)].concat();
    assert!(ends_message(&tail, Response));
    let tail = [rows, &eof(0x000a)].concat();
    assert!(!ends_message(&tail, Response), "more results follow");
    let ok = b"\x07\x00\x00\x0c\xfe\x00\x00\x02\x00\x00\x00";
    assert!(ends_message(&[rows, ok].concat(), Response));
    let err = packet(7, b"\xff\x35\x05#70100Query execution was interrupted");
    assert!(ends_message(&[rows, &err].concat(), Response));
    assert!(!ends_message(rows, Response));
    assert!(!ends_message(b"", Response));
}

// --- synthetic shapes -----------------------------------------------------------------------------

fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len() as u32;
    let mut v = n.to_le_bytes()[..3].to_vec();
    v.push(seq);
    v.extend_from_slice(payload);
    v
}

#[test]
fn query_attributes_prefix() {
    // MySQL 8 connectors with CLIENT_QUERY_ATTRIBUTES and no attributes.
    let b = packet(0, b"\x03\x00\x01SELECT 1");
    assert_eq!(infer(&b), Some(Request));
    assert_eq!(parse(&b, Request).unwrap().request_resource, "SELECT 1");
    // With attributes, the values cannot be skipped without their types.
    let b = packet(0, b"\x03\x01\x01\x00\x01\xfe\x00\x03abc\x03xyzSELECT 1");
    let h = parse(&b, Request).unwrap();
    assert_eq!((&*h.request_type, &*h.request_resource), ("COM_QUERY", ""));
}

#[test]
fn sql_sent_with_its_c_string_terminator() {
    // mysqlslap's COM_QUERY packets end in the NUL of a C string; tshark
    // shows the SQL without it, and so do we.
    let b = packet(0, b"\x03SELECT intcol1 FROM t1\0");
    assert_eq!(
        parse(&b, Request).unwrap().request_resource,
        "SELECT intcol1 FROM t1"
    );
}

#[test]
fn interim_replies_are_unpaired() {
    for (what, b) in [
        // caching_sha2_password fast path: "more data" 0x03, then OK.
        ("auth more data", packet(2, b"\x01\x03")),
        ("old auth switch", packet(2, b"\xfe")),
        ("local infile", packet(1, b"\xfb/tmp/data.csv")),
        (
            "progress report",
            packet(1, b"\xff\xff\xff\x01\x01\x00\x00\x00\x10stage"),
        ),
    ] {
        let h = parse(&b, Response).unwrap();
        assert!(h.unpaired, "{what}");
        assert_eq!(h.message_len, len(&b), "{what}");
    }
    // The LOCAL INFILE contents and their empty end packet.
    for b in [packet(2, b"1,apple\n2,pear\n"), packet(3, b"")] {
        let h = parse(&b, Request).unwrap();
        assert_eq!(h.request_type, "CONTINUATION");
        assert!(h.unpaired);
    }
}

#[test]
fn pre_handshake_error() {
    // A server refusing a connection before greeting (MySQL: host blocked).
    let b = packet(
        0,
        b"\xff\x69\x04Host '10.0.0.9' is blocked because of many connection errors",
    );
    let h = parse(&b, Response).unwrap();
    assert_eq!(h.response_code, Some(1129));
    assert!(h.exception.starts_with("Host '10.0.0.9'"));
    assert!(h.unpaired, "no request asked for it");
    assert_eq!(infer(&b), Some(Response));
}

#[test]
fn change_user() {
    let mut p = b"\x11bob\x00\x14".to_vec();
    p.extend([0xaa; 20]);
    p.extend(b"shop\x00\x2d\x00mysql_native_password\x00");
    let b = packet(0, &p);
    let h = parse(&b, Request).unwrap();
    assert_eq!(h.request_type, "COM_CHANGE_USER");
    assert_eq!(h.request_resource, "user=bob");
    assert_eq!(h.request_domain, "shop");
    assert_eq!(infer(&b), Some(Request));
}

#[test]
fn pipelined_close_then_query() {
    // Connectors send COM_STMT_CLOSE and the next command in one write.
    let b = [req("stmt_close"), req("select_1")].concat();
    assert_eq!(infer(&b), Some(Request));
    let h = parse(&b, Request).unwrap();
    assert_eq!(h.request_type, "COM_STMT_CLOSE");
    let n = h.message_len.unwrap() as usize;
    assert_eq!(
        parse(&b[n..], Request).unwrap().request_resource,
        "SELECT 1"
    );
    assert!(ends_message(&b, Request));
}

#[test]
fn continued_packets() {
    // A payload of 2^24 - 1 bytes continues in the next packet: the
    // message length is not in the first header.
    let mut b = vec![0xff, 0xff, 0xff, 0x00, 0x03];
    b.extend_from_slice(b"INSERT INTO blobs VALUES ('");
    b.resize(1024, b'z');
    let h = parse(&b, Request).unwrap();
    assert_eq!(h.message_len, None);
    assert!(h.request_resource.starts_with("INSERT INTO blobs"));
    assert_eq!(infer(&b), Some(Request));
    assert!(!ends_message(&b, Request));
    // Two whole packets, the first full: ends with the short second.
    let mut b = vec![0xff, 0xff, 0xff, 0x00];
    b.resize(4 + MAX_PAYLOAD, b'a');
    b.extend(packet(1, b"tail"));
    assert!(ends_message(&b, Request));
    // A full row packet continued by one starting with 0xfe is no EOF.
    let mut r = packet(1, b"\x01");
    r.extend(packet(
        2,
        b"\x03def\x00\x00\x00\x01a\x00\x0c\x3f\x00\x01\x00\x00\x00\x03\x81\x00\x00\x00\x00",
    ));
    r.extend(packet(3, b"\xfe\x00\x00\x02\x00"));
    r.extend([0xff, 0xff, 0xff, 4, 0xfe]);
    r.resize(r.len() + MAX_PAYLOAD - 1, b'x');
    r.extend(packet(5, b"\xfe\x00\x00\x02\x00"));
    assert_eq!(
        walk_reply(&r),
        Some(false),
        "the 0xfe packet continues the row"
    );
    r.extend(packet(6, b"\xfe\x00\x00\x02\x00"));
    assert_eq!(walk_reply(&r), Some(true));
}

#[test]
fn garbage() {
    assert_eq!(parse(b"", Request), Err(ParseError::Incomplete));
    assert_eq!(
        parse(b"\x01\x00\x00", Response),
        Err(ParseError::Incomplete)
    );
    assert_eq!(
        parse(b"\x00\x00\x00\x00", Request),
        Err(ParseError::Invalid("packet length"))
    );
    assert_eq!(
        parse(b"\x00\x00\x00\x01", Response),
        Err(ParseError::Invalid("packet length"))
    );
    assert_eq!(
        parse(&packet(0, b"\x63abc"), Request),
        Err(ParseError::Invalid("command"))
    );
    assert_eq!(
        parse(&packet(0, b"\x17\x01\x00"), Request),
        Err(ParseError::Invalid("statement id"))
    );
    assert_eq!(
        parse(&packet(0, b"\x17\x01\x00\x00\x00")[..6], Request),
        Err(ParseError::Incomplete)
    );
    assert_eq!(
        parse(&packet(0, b"\x42garbage"), Response),
        Err(ParseError::Invalid("greeting"))
    );
    assert_eq!(
        parse(&packet(1, b"\xff\x01"), Response),
        Err(ParseError::Invalid("error packet"))
    );
    // Header says a command follows but the capture stopped at the header.
    assert_eq!(
        parse(&packet(0, b"\x03SELECT 1")[..4], Request),
        Err(ParseError::Incomplete)
    );
    // A length field larger than anything that follows is fine to parse.
    let h = parse(b"\xfe\xff\xff\x00\x03SELECT", Request).unwrap();
    assert_eq!(h.message_len, Some(0xff_fffe + 4));
    // Deterministic noise, at every offset.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut claimed = 0;
    for start in 0..noise.len() - 64 {
        let b = &noise[start..start + 64];
        claimed += usize::from(infer(b).is_some());
        for kind in [Request, Response] {
            let _ = parse(b, kind);
            let _ = ends_message(b, kind);
        }
    }
    assert_eq!(claimed, 0, "random bytes are not MySQL");
}

#[test]
fn infer_rejects_other_protocols() {
    for b in [
        // HTTP/1
        &b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"[..],
        b"POST /api HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        // Redis
        b"*1\r\n$4\r\nPING\r\n",
        b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n",
        b"+OK\r\n",
        b"-ERR unknown command 'FOO'\r\n",
        b":1\r\n",
        b"$5\r\nhello\r\n",
        b"PING\r\n",
        // PostgreSQL: SSLRequest, startup, simple query (lengths whose low
        // byte is a MySQL command), parse, sync, terminate, replies.
        b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
        b"\x00\x00\x00\x54\x00\x03\x00\x00user\x00postgres\x00database\x00app\x00\x00",
        b"Q\x00\x00\x00\x0dSELECT 1;\x00",
        b"Q\x00\x00\x00\x16SELECT * FROM items\x00",
        b"Q\x00\x00\x00\x03",
        b"P\x00\x00\x00\x16\x00SELECT $1::int\x00\x00\x00",
        b"P\x00\x00\x00\x16s1\x00SELECT $1::int\x00\x00\x00",
        b"S\x00\x00\x00\x04",
        b"X\x00\x00\x00\x04",
        b"R\x00\x00\x00\x08\x00\x00\x00\x00",
        b"Z\x00\x00\x00\x05I",
        b"E\x00\x00\x00\x4fSERROR\x00C42P01\x00Mrelation \"x\" does not exist\x00\x00",
        // TLS
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xab\xcd",
        b"\x16\x03\x01\x01\x2c\x01\x00\x01\x28\x03\x03",
        b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03",
        b"\x17\x03\x03\x01\x03\x00\x00",
        // Other binary: a DNS query over TCP, a Kafka request.
        b"\x00\x1d\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01",
        b"\x00\x00\x00\x14\x00\x03\x00\x0c\x00\x00\x00\x01\x00\x06client",
        // Too short, empty packets, unknown commands, malformed shapes.
        b"",
        b"\x01\x00\x00",
        b"\x01\x00\x00\x00",
        b"\x00\x00\x00\x00\x03",
        b"\x05\x00\x00\x00\x63abcd",
        b"\x01\x00\x00\x00\x03",
        b"\x02\x00\x00\x00\x0e\x00",
        b"\x09\x00\x00\x00\x03\x00\x01\x02\x03\x04\x05\x06\x07",
        b"\x05\x00\x00\x00\x03 \x01\x02\x03",
        b"\x01\x00\x00\x01\x01",
        b"\x01\x00\x00\x01\x05\x10\x00\x00\x02nodef",
        b"\x07\x00\x00\x01\x00\x01",
    ] {
        assert_eq!(infer(b), None, "{:?}", String::from_utf8_lossy(b));
    }
}

#[test]
fn infer_accepts_short_real_shapes() {
    for (b, kind) in [
        (packet(0, b"\x0e"), Request),
        (packet(0, b"\x01"), Request),
        (packet(0, b"\x03  select 1"), Request),
        (packet(0, b"\x03/* app=1 */ SELECT 1"), Request),
        (packet(0, b"\x03(SELECT 1) UNION (SELECT 2)"), Request),
        (packet(0, b"\x16INSERT INTO t VALUES (?)"), Request),
        (packet(0, b"\x02shop"), Request),
        (packet(0, b"\x19\x01\x00\x00\x00"), Request),
        (packet(1, b"\x00\x00\x00\x02\x00\x00\x00"), Response),
        (packet(1, b"\xfe\x00\x00\x02\x00"), Response),
        (
            packet(1, b"\xff\x7a\x04#42S02Table 'a.b' doesn't exist"),
            Response,
        ),
    ] {
        assert_eq!(infer(&b), Some(kind), "{:?}", String::from_utf8_lossy(&b));
    }
}

#[test]
fn error_status_table() {
    use ResponseStatus::{ClientError, ServerError};
    for code in [
        1040, 1205, 1213, 1226, 1317, 1969, 2006, 2013, 1053, 1290, 4031,
    ] {
        assert_eq!(error_status(code), ServerError, "{code}");
    }
    for code in [
        1045, 1044, 1049, 1054, 1062, 1064, 1146, 1243, 1406, 1452, 3819,
    ] {
        assert_eq!(error_status(code), ClientError, "{code}");
    }
}

#[test]
fn command_names() {
    assert_eq!(command_name(COM_QUERY), Some("COM_QUERY"));
    assert_eq!(
        command_name(COM_STMT_BULK_EXECUTE),
        Some("COM_STMT_BULK_EXECUTE")
    );
    assert_eq!((0x20..0xfa).filter_map(command_name).count(), 0);
    assert_eq!((0..=0x1f).filter_map(command_name).count(), 32);
}
