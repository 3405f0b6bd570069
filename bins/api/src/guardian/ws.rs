//! `GET /api/v1/ws/guardian`: the guardian WebSocket (frames in [`haven_vault::protocol`]).
//!
//! - **Connect**: the route's guard authenticated the `Authorization: Bearer` guardian token;
//!   the socket then takes one of the guardian's connection slots (`HAVEN_GUARDIAN_MAX_
//!   CONNECTIONS`, counted across replicas): when none is free the upgrade is refused with
//!   429 and audited (`guardian.ws.refused`).
//! - **Every frame** carries a token, checked completely ([`GuardianContext::authenticate`]);
//!   an expired, revoked or foreign token closes the socket with 1008 (policy violation). A
//!   frame with a later-expiring token extends the socket's life.
//! - **Heartbeat** (`HAVEN_GUARDIAN_HEARTBEAT_SECS`): ping, renew the slot, re-check the
//!   newest token (expiry, session revocation, removal); silent for
//!   `HAVEN_GUARDIAN_IDLE_TIMEOUT_SECS` → closed (1001).
//! - **Limits**: frames above `HAVEN_GUARDIAN_MAX_FRAME_BYTES` close the socket (1009);
//!   beyond `HAVEN_GUARDIAN_MESSAGES_PER_SEC` a frame gets an error frame and is dropped; a
//!   malformed frame, a binary frame or a refused decision gets an error frame and the
//!   socket stays open.

use std::sync::Arc;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, ProtocolError, Session};
use chrono::Utc;
use ed25519_dalek::Signature;
use haven_core::ErrorCode;
use haven_core::audit::{AuditEvent, AuditSink, Severity};
use haven_vault::protocol::{
    ClientFrame, ClientMessage, DecisionResult, RequestView, ServerFrame, ServerMessage,
    parse_signature,
};
use haven_vault::{Caller, DecisionKind, DecisionOutcome, RequestId, RequestState};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::hub::Event;
use super::{GuardianContext, GuardianPrincipal, Refusal};
use crate::error::ApiError;
use crate::guardian::CurrentGuardian;

/// Opens a guardian socket (see the module docs).
#[utoipa::path(
    get,
    path = "/api/v1/ws/guardian",
    tag = "guardians",
    security(("guardian_token" = [])),
    responses(
        (status = 101, description = "Switching to the guardian WebSocket protocol"),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::openapi::ErrorBodySchema),
        (status = 429, description = "The guardian already holds its maximum of sockets", body = crate::openapi::ErrorBodySchema),
    ),
)]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    guardian: CurrentGuardian,
    ctx: web::Data<GuardianContext>,
) -> Result<HttpResponse, ApiError> {
    let principal = guardian.0;
    let socket_id = Uuid::new_v4();
    let ip = crate::ratelimit::client_ip(&req).map(|ip| ip.to_string());
    let taken = ctx
        .slots
        .acquire(principal.guardian_id.0, socket_id)
        .await
        .map_err(|e| ApiError::new(ErrorCode::ServiceUnavailable, e.to_string()))?;
    if !taken {
        let max = ctx.slots.max();
        let mut event = AuditEvent::new(principal.actor(), "guardian.ws.refused", Severity::Medium)
            .target(format!("vault:{}", principal.vault_id))
            .details(json!({"reason": "connection limit", "max": max}));
        event.ip = ip;
        if let Err(error) = ctx.audit.append(event).await {
            tracing::error!(%error, "could not audit a refused guardian socket");
        }
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            format!("a guardian may hold at most {max} sockets at once; close one first"),
        ));
    }
    let token = bearer(&req).unwrap_or_default();
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(parts) => parts,
        Err(e) => {
            ctx.slots.release(principal.guardian_id.0, socket_id).await;
            return Err(ApiError::new(
                ErrorCode::ValidationError,
                format!("not a WebSocket upgrade: {e}"),
            ));
        }
    };
    let stream = stream
        .max_frame_size(ctx.config.max_frame_bytes)
        .aggregate_continuations()
        .max_continuation_size(ctx.config.max_frame_bytes);
    let rate = ctx.config.messages_per_sec;
    let socket = Socket {
        ctx: ctx.into_inner(),
        session,
        principal,
        token,
        socket_id,
        bucket: Bucket::new(rate),
        last_seen: Instant::now(),
        ip,
    };
    actix_web::rt::spawn(socket.run(stream));
    Ok(response)
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let raw = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = raw.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// A token bucket of `rate` frames per second, bursts of twice that.
struct Bucket {
    tokens: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Self {
        Self {
            tokens: f64::from(rate) * 2.0,
            rate: f64::from(rate),
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Whether the socket goes on.
enum Flow {
    Continue,
    Close(CloseReason),
}

fn close(code: CloseCode, why: impl Into<String>) -> Flow {
    let mut description: String = why.into();
    // a close frame's reason is at most 123 bytes
    while description.len() > 120 {
        description.pop();
    }
    Flow::Close(CloseReason {
        code,
        description: Some(description),
    })
}

struct Socket {
    ctx: Arc<GuardianContext>,
    session: Session,
    principal: GuardianPrincipal,
    /// The newest token seen; never logged.
    token: String,
    socket_id: Uuid,
    bucket: Bucket,
    last_seen: Instant,
    ip: Option<String>,
}

impl Socket {
    async fn run(mut self, mut stream: actix_ws::AggregatedMessageStream) {
        let guardian = self.principal.guardian_id;
        let mut events = self.ctx.hub.subscribe(self.principal.vault_id);
        let mut tick = tokio::time::interval(self.ctx.config.heartbeat);
        tick.tick().await;
        metrics::gauge!(crate::metrics::GUARDIAN_SOCKETS).increment(1.0);
        tracing::info!(%guardian, socket = %self.socket_id, "guardian socket open");
        let welcome = ServerMessage::Welcome {
            guardian_id: guardian,
            vault_id: self.principal.vault_id,
            token_expires_at: self.principal.expires_at,
        };
        let mut flow = self.send(ServerFrame::push(welcome)).await;
        while let Flow::Continue = flow {
            flow = tokio::select! {
                message = stream.recv() => match message {
                    None => break,
                    Some(Err(ProtocolError::Overflow)) => close(CloseCode::Size, format!(
                        "frames are at most {} bytes", self.ctx.config.max_frame_bytes)),
                    Some(Err(e)) => close(CloseCode::Protocol, e.to_string()),
                    Some(Ok(message)) => {
                        self.last_seen = Instant::now();
                        self.on_message(message).await
                    }
                },
                event = events.recv() => self.on_event(event).await,
                _ = tick.tick() => self.heartbeat().await,
            };
        }
        if let Flow::Close(reason) = flow {
            tracing::info!(%guardian, socket = %self.socket_id, code = ?reason.code,
                reason = reason.description.as_deref().unwrap_or(""), "guardian socket closed");
            if reason.code == CloseCode::Policy {
                self.audit_policy_close(&reason).await;
            }
            let _ = self.session.clone().close(Some(reason)).await;
        }
        self.ctx.slots.release(guardian.0, self.socket_id).await;
        metrics::gauge!(crate::metrics::GUARDIAN_SOCKETS).decrement(1.0);
    }

    /// A socket closed for its token (expired, revoked, foreign) or its guardian's removal
    /// is a security event: one `guardian.ws.closed` row.
    async fn audit_policy_close(&self, reason: &CloseReason) {
        let mut event = AuditEvent::new(
            self.principal.actor(),
            "guardian.ws.closed",
            Severity::Medium,
        )
        .target(format!("vault:{}", self.principal.vault_id))
        .details(json!({
            "code": 1008,
            "reason": reason.description.as_deref().unwrap_or(""),
            "session": self.principal.session,
        }));
        event.ip = self.ip.clone();
        if let Err(error) = self.ctx.audit.append(event).await {
            tracing::error!(%error, "could not audit a closed guardian socket");
        }
    }

    async fn send(&mut self, frame: ServerFrame) -> Flow {
        match self.session.text(frame.to_text()).await {
            Ok(()) => Flow::Continue,
            Err(_) => close(CloseCode::Away, "the client went away"),
        }
    }

    async fn on_event(&mut self, event: Result<Event, RecvError>) -> Flow {
        match event {
            Ok(Event::Frame(text)) => match self.session.text(text.as_str().to_owned()).await {
                Ok(()) => Flow::Continue,
                Err(_) => close(CloseCode::Away, "the client went away"),
            },
            Ok(Event::FrameFor(guardian, text)) if guardian == self.principal.guardian_id.0 => {
                match self.session.text(text.as_str().to_owned()).await {
                    Ok(()) => Flow::Continue,
                    Err(_) => close(CloseCode::Away, "the client went away"),
                }
            }
            Ok(Event::SessionRevoked(session)) if session == self.principal.session => {
                self.recheck().await
            }
            Ok(Event::GuardianRemoved(id)) if id == self.principal.guardian_id.0 => {
                self.recheck().await
            }
            Ok(_) => Flow::Continue,
            Err(RecvError::Lagged(missed)) => {
                let frame = ServerFrame::error(
                    None,
                    ErrorCode::Conflict.as_str(),
                    format!("{missed} pushes were missed; send list_requests to catch up"),
                );
                self.send(frame).await
            }
            Err(RecvError::Closed) => close(CloseCode::Restart, "the server is restarting"),
        }
    }

    async fn heartbeat(&mut self) -> Flow {
        if self.last_seen.elapsed() > self.ctx.config.idle_timeout {
            return close(CloseCode::Away, "idle for too long");
        }
        if let Flow::Close(reason) = self.recheck().await {
            return Flow::Close(reason);
        }
        match self
            .ctx
            .slots
            .renew(self.principal.guardian_id.0, self.socket_id)
            .await
        {
            Ok(false) => return close(CloseCode::Again, "the connection slot lapsed; reconnect"),
            Ok(true) => {}
            Err(error) => tracing::warn!(%error, "could not renew a guardian connection slot"),
        }
        match self.session.ping(b"").await {
            Ok(()) => Flow::Continue,
            Err(_) => close(CloseCode::Away, "the client went away"),
        }
    }

    /// Re-checks the newest token: expired, revoked or removed closes the socket (1008).
    async fn recheck(&mut self) -> Flow {
        if self.principal.expires_at <= Utc::now() {
            return close(CloseCode::Policy, Refusal::Expired.message());
        }
        match self.ctx.authenticate(&self.token).await {
            Ok(_) | Err(Refusal::Unavailable(_)) => Flow::Continue,
            Err(refusal) => close(CloseCode::Policy, refusal.message()),
        }
    }

    async fn on_message(&mut self, message: AggregatedMessage) -> Flow {
        match message {
            AggregatedMessage::Text(text) => self.on_text(&text).await,
            AggregatedMessage::Binary(_) => {
                let frame = ServerFrame::error(
                    None,
                    ErrorCode::ValidationError.as_str(),
                    "guardian frames are JSON text frames",
                );
                self.send(frame).await
            }
            AggregatedMessage::Ping(bytes) => match self.session.pong(&bytes).await {
                Ok(()) => Flow::Continue,
                Err(_) => close(CloseCode::Away, "the client went away"),
            },
            AggregatedMessage::Pong(_) => Flow::Continue,
            AggregatedMessage::Close(_) => close(CloseCode::Normal, "closed by the client"),
        }
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        if !self.bucket.take() {
            let frame = ServerFrame::error(
                None,
                ErrorCode::RateLimited.as_str(),
                format!(
                    "at most {} frames per second; this one was dropped",
                    self.ctx.config.messages_per_sec
                ),
            );
            return self.send(frame).await;
        }
        let frame = match ClientFrame::parse(text, self.ctx.config.max_frame_bytes) {
            Ok(frame) => frame,
            Err(e) => {
                let frame =
                    ServerFrame::error(None, ErrorCode::ValidationError.as_str(), e.to_string());
                return self.send(frame).await;
            }
        };
        let principal = match self.ctx.authenticate(frame.token.expose()).await {
            Ok(p) if p.guardian_id == self.principal.guardian_id => p,
            Ok(_) => return close(CloseCode::Policy, "the frame's token is another guardian's"),
            Err(Refusal::Unavailable(why)) => {
                let frame =
                    ServerFrame::error(frame.id, ErrorCode::ServiceUnavailable.as_str(), why);
                return self.send(frame).await;
            }
            Err(refusal) => return close(CloseCode::Policy, refusal.message()),
        };
        if principal.expires_at >= self.principal.expires_at {
            self.principal = principal;
            self.token = frame.token.expose().to_owned();
        }
        let answer = self.dispatch(frame.id, frame.message).await;
        self.send(answer).await
    }

    async fn dispatch(&mut self, id: Option<String>, message: ClientMessage) -> ServerFrame {
        match message {
            ClientMessage::Ping => ServerFrame::reply(id, ServerMessage::Pong),
            ClientMessage::Threshold(contribution) => {
                match self
                    .ctx
                    .threshold
                    .contribute(&self.principal, contribution)
                    .await
                {
                    Ok(()) => ServerFrame::reply(id, ServerMessage::Accepted),
                    Err(e) => ServerFrame::error(id, e.0.code.as_str(), e.0.message.clone()),
                }
            }
            ClientMessage::ListRequests => {
                let listed = self
                    .ctx
                    .vaults
                    .requests(self.principal.vault_id, Some(RequestState::Open))
                    .await;
                match listed {
                    Ok(requests) => ServerFrame::reply(
                        id,
                        ServerMessage::Requests {
                            requests: requests.iter().map(RequestView::from).collect(),
                        },
                    ),
                    Err(e) => ServerFrame::error(id, e.code().as_str(), e.to_string()),
                }
            }
            ClientMessage::Approve {
                request_id,
                signature,
            } => {
                self.decide(id, DecisionKind::Approve, request_id, &signature)
                    .await
            }
            ClientMessage::Reject {
                request_id,
                signature,
            } => {
                self.decide(id, DecisionKind::Reject, request_id, &signature)
                    .await
            }
        }
    }

    async fn decide(
        &mut self,
        id: Option<String>,
        kind: DecisionKind,
        request_id: RequestId,
        signature: &str,
    ) -> ServerFrame {
        let signature = match parse_signature(signature) {
            Ok(bytes) => Signature::from_bytes(&bytes),
            Err(e) => {
                return ServerFrame::error(id, ErrorCode::ValidationError.as_str(), e.to_string());
            }
        };
        let mut caller = Caller::new(self.principal.actor());
        if let Some(ip) = &self.ip {
            caller = caller.with_ip(ip.clone());
        }
        let guardian = self.principal.guardian_id;
        let decided = match kind {
            DecisionKind::Approve => {
                self.ctx
                    .vaults
                    .approve(request_id, guardian, &signature, &caller)
                    .await
            }
            DecisionKind::Reject => {
                self.ctx
                    .vaults
                    .reject(request_id, guardian, &signature, &caller)
                    .await
            }
        };
        let (result, approvals, threshold) = match decided {
            Ok(DecisionOutcome::Counted {
                approvals,
                threshold,
                ..
            }) => (DecisionResult::Counted, Some(approvals), Some(threshold)),
            Ok(DecisionOutcome::AlreadyRecorded { .. }) => (DecisionResult::Duplicate, None, None),
            Ok(DecisionOutcome::Released(release)) => {
                let approvals = release.approvers.len();
                self.ctx.releases.execute(&release).await;
                self.ctx.hub.push(
                    release.vault_id,
                    ServerMessage::RequestClosed {
                        request_id,
                        state: RequestState::Approved,
                    },
                );
                (DecisionResult::Released, Some(approvals), None)
            }
            Ok(DecisionOutcome::Rejected) => {
                if let Ok(request) = self.ctx.vaults.request(request_id).await {
                    self.ctx.releases.closed(&request).await;
                }
                self.ctx.hub.push(
                    self.principal.vault_id,
                    ServerMessage::RequestClosed {
                        request_id,
                        state: RequestState::Rejected,
                    },
                );
                (DecisionResult::Rejected, None, None)
            }
            Ok(_) => (DecisionResult::Counted, None, None),
            Err(e) => return ServerFrame::error(id, e.code().as_str(), e.to_string()),
        };
        metrics::counter!(crate::metrics::VAULT_DECISIONS, "kind" => kind.as_str(),
            "result" => format!("{result:?}").to_lowercase())
        .increment(1);
        ServerFrame::reply(
            id,
            ServerMessage::Decision {
                request_id,
                result,
                approvals,
                threshold,
            },
        )
    }
}
