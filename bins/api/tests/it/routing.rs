//! Authorization follows the route the router matched (issue A1, A2, A2b): every spelling
//! of every protected route of the table is refused without credentials and writes nothing;
//! a handler without an access row stops the application from starting; an idempotency key
//! covers every spelling of its route.

use std::collections::BTreeMap;

use actix_web::http::Method;
use haven_api::access::{Access, ROUTE_ACCESS, RouteSet};
use haven_api::testing::{TestApi, spawn_api};
use haven_auth::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{create_passwordless_user, pool};

/// Sends `method target` exactly as written (no client-side normalization of `.`, `..`, `//`
/// or percent-escapes) and returns the status, or 0 when the server closed without one.
async fn raw(api: &TestApi, method: &str, target: &str, headers: &[(&str, &str)]) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", api.port))
        .await
        .unwrap();
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = if method == "GET" || method == "DELETE" {
        ""
    } else {
        "{}"
    };
    request.push_str(&format!(
        "content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    ));
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A concrete path of a pattern: parameters filled with plain values.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{id}", "0191e8a0-0000-7000-8000-000000000001")
        .replace("{tx_id}", "tx-1")
        .replace("{source}", "aurora")
}

fn encode_char(c: char) -> String {
    format!("%{:02X}", c as u32)
}

/// The spellings an attacker tries for `path` (a concrete path).
fn variants(path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let last = segments.len() - 1;
    let with_last = |f: &dyn Fn(&str) -> String| {
        let mut s = segments.clone();
        let replaced = f(s[last]);
        s[last] = &replaced;
        format!("/{}", s.join("/"))
    };
    let first_letter_encoded = |seg: &str| {
        let mut chars = seg.chars();
        match chars.next() {
            Some(c) => format!("{}{}", encode_char(c), chars.as_str()),
            None => seg.to_owned(),
        }
    };
    let mut out = vec![
        // Percent-encoded letters: the first of each segment, then every character.
        format!(
            "/{}",
            segments
                .iter()
                .map(|s| first_letter_encoded(s))
                .collect::<Vec<_>>()
                .join("/")
        ),
        format!(
            "/{}",
            segments
                .iter()
                .map(|s| s.chars().map(encode_char).collect::<String>())
                .collect::<Vec<_>>()
                .join("/")
        ),
        with_last(&|s| first_letter_encoded(s)),
        // Encoded slashes.
        format!("/{}", segments.join("%2F")),
        format!("/{}", segments.join("%2f")),
        // Doubled slashes, dot segments, trailing slash.
        format!("//{}", segments.join("/")),
        format!("/{}", segments.join("//")),
        format!("/{}/./{}", segments[..last].join("/"), segments[last]),
        format!("/{}/x/../{}", segments[..last].join("/"), segments[last]),
        format!("/{}/%2e/{}", segments[..last].join("/"), segments[last]),
        format!(
            "/{}/x/%2e%2e/{}",
            segments[..last].join("/"),
            segments[last]
        ),
        format!("{path}/"),
        format!("{path}/."),
        // Mixed case.
        path.to_uppercase(),
        with_last(&|s| {
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        }),
        // Matrix parameters.
        format!("{path};x=1"),
        format!("/{};a=b/{}", segments[..last].join("/"), segments[last]),
        // Overlong UTF-8 of the first letter of the last segment, and of `/`.
        with_last(&|s| {
            let mut chars = s.chars();
            let c = chars.next().unwrap_or('a') as u32;
            format!(
                "%{:02X}%{:02X}{}",
                0xC0 | (c >> 6),
                0x80 | (c & 0x3F),
                chars.as_str()
            )
        }),
        format!("/{}", segments.join("%C0%AF")),
        // NUL.
        format!("{path}%00"),
        with_last(&|s| format!("%00{s}")),
        // Backslashes.
        format!("/{}", segments.join("\\")),
        format!("/{}", segments.join("%5C")),
    ];
    out.sort();
    out.dedup();
    out.retain(|v| v != path);
    out
}

/// The issue's reproduction: these answered 200 with every user, every wallet and every
/// alert to an anonymous caller.
#[tokio::test(flavor = "multi_thread")]
async fn the_reported_bypasses_are_refused() {
    let api = spawn_api().await;
    create_passwordless_user(&api, haven_db::Role::Admin).await;
    create_passwordless_user(&api, haven_db::Role::Viewer).await;
    for target in [
        "/api/v1/users",
        "/api/v1/%75sers",
        "/api/v1/admin/%77allets",
        "/api/v1/admin/%61lerts",
    ] {
        assert_eq!(raw(&api, "GET", target, &[]).await, 401, "{target}");
    }
}

/// A1 / point 2: every spelling of every protected route of the table, without credentials,
/// answers 401, 403, 404 (or 400/405 for a target the server cannot route) — never 2xx — and
/// no table gains or loses a row. The table is walked, so a new route is covered at once.
#[tokio::test(flavor = "multi_thread")]
async fn every_spelling_of_every_protected_route_is_refused_without_credentials() {
    let api = spawn_api().await;
    create_passwordless_user(&api, haven_db::Role::Admin).await;
    let db = pool(&api).await;
    let before = haven_db::row_counts(&db).await.unwrap();
    let mut answers: BTreeMap<u16, usize> = BTreeMap::new();
    let mut tried = 0;
    for row in ROUTE_ACCESS.iter().filter(|r| r.access != Access::Public) {
        let path = concrete(row.path);
        assert_eq!(
            raw(&api, row.method, &path, &[]).await,
            401,
            "{}",
            row.name()
        );
        for target in variants(&path) {
            let status = raw(&api, row.method, &target, &[]).await;
            tried += 1;
            *answers.entry(status).or_default() += 1;
            assert!(
                [400, 401, 403, 404, 405].contains(&status),
                "{} {target} answered {status} without credentials",
                row.method
            );
        }
    }
    let after = haven_db::row_counts(&db).await.unwrap();
    assert_eq!(before, after, "no handler side effect");
    assert!(tried > 300, "{tried} spellings tried");
    eprintln!("{tried} spellings: {answers:?}");
}

/// The same spellings with a viewer's token reach at most the routes a viewer may use.
#[tokio::test(flavor = "multi_thread")]
async fn spellings_of_admin_routes_are_forbidden_to_a_viewer() {
    let api = spawn_api().await;
    let viewer = create_passwordless_user(&api, haven_db::Role::Viewer).await;
    let token = crate::support::dev_jwt("k1")
        .issue_access(viewer, Role::Viewer, chrono::Utc::now())
        .unwrap();
    let bearer = format!("Bearer {}", token.as_str());
    for target in [
        "/api/v1/%75sers",
        "/api/v1/admin/%77allets",
        "/api/v1/%75sers/",
    ] {
        let status = raw(&api, "GET", target, &[("authorization", &bearer)]).await;
        assert!([403, 404].contains(&status), "{target}: {status}");
    }
}

async fn ok() -> &'static str {
    "ok"
}

/// A2: a handler registered without a row in the access table stops the application from
/// starting, naming the route.
#[tokio::test(flavor = "multi_thread")]
async fn a_route_without_an_access_row_refuses_to_start() {
    let db = haven_testkit::TestDb::new().await;
    let config =
        haven_api::config::ApiConfig::for_tests(db.url(), &haven_testkit::TestRedis::server_url());
    let mut routes = haven_api::routes();
    routes.add(Method::GET, "/api/v1/sneaky", ok);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = haven_api::Application::build_with_routes(config.clone(), listener, routes)
        .expect_err("an undeclared route must not start");
    let message = format!("{err:#}");
    assert!(message.contains("GET /api/v1/sneaky"), "{message}");
    assert!(message.contains("ROUTE_ACCESS"), "{message}");

    // A row whose handler is missing is refused as well.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = haven_api::Application::build_with_routes(config, listener, RouteSet::new())
        .expect_err("an empty route set leaves every row unserved");
    assert!(format!("{err:#}").contains("no handler serves it"));
}
