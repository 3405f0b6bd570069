//! The operator console: a static page, its script and its stylesheet, compiled into the
//! binary (`bins/api/console/`), served under `/console` with a strict Content-Security-Policy.
//!
//! The console holds no authority of its own. It logs in through `POST /api/v1/auth/login`,
//! keeps the token pair in the tab's `sessionStorage` and sends the access token as a bearer
//! token on every call (no cookie, so there is nothing a cross-site request could ride on),
//! and every action is the same api route, with the same guard and audit row, that `curl`
//! would call. It shows action buttons only for the permissions `whoami` lists; the server
//! refuses the others whatever the page does.
//!
//! The policy allows scripts, styles, images and connections from this origin only, no
//! inline script or style and no framing, so nothing on a page can load from elsewhere.

use actix_web::HttpResponse;
use actix_web::http::header;

/// The console's Content-Security-Policy (the api's other answers keep `default-src 'none'`).
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

const INDEX: &str = include_str!("../../console/index.html");
const SCRIPT: &str = include_str!("../../console/console.js");
const STYLE: &str = include_str!("../../console/console.css");

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONSOLE_CSP))
        // revalidated on every load, so a new release is seen at once
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// The console's page: sign-in, then the pages chosen in its navigation.
#[utoipa::path(
    get,
    path = "/console",
    tag = "console",
    responses((status = 200, description = "The console's HTML page", content_type = "text/html")),
)]
pub async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

/// The console's script.
#[utoipa::path(
    get,
    path = "/console/console.js",
    tag = "console",
    responses((status = 200, description = "JavaScript", content_type = "text/javascript")),
)]
pub async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

/// The console's stylesheet.
#[utoipa::path(
    get,
    path = "/console/console.css",
    tag = "console",
    responses((status = 200, description = "CSS", content_type = "text/css")),
)]
pub async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}
