//! Read-only share links: the registry of shares (cached from the store) and what a
//! request that carries one may do. See "Share links" in docs/security.md.
//!
//! A share is a random secret; the store keeps only its SHA-256. Every request is
//! checked against an in-memory map by that hash, so validation costs one hash and
//! one lookup; expiry is checked each time against the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use app::protocol::{SHARE_MAX_SECS, SHARE_MIN_SECS, ShareCreated, ShareInfo};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::error::AppError;
use crate::store::{ShareRecord, Store, StoreError};

/// The cookie a browser gets after opening a share link.
pub const SHARE_COOKIE: &str = "tether_share";
/// The path share links live under: `/s/<secret>`.
pub const LINK_PREFIX: &str = "/s/";

/// One share as the registry keeps it.
struct Entry {
    id: String,
    conversation_id: String,
    created_at: String,
    /// As stored (RFC 3339), for listings.
    expires_text: Option<String>,
    /// Parsed once, compared on every request.
    expires_at: Option<DateTime<Utc>>,
    revoked: bool,
}

/// What a valid share lets a request do; put in its extensions by the middleware.
#[derive(Clone, Debug)]
pub struct ShareGrant {
    /// SHA-256 of the secret: the key to look the share up again.
    hash: [u8; 32],
    pub share_id: String,
    pub conversation_id: String,
    pub expires_at: Option<DateTime<Utc>>,
}

pub struct Shares {
    /// Where shares persist across restarts.
    store: Arc<dyn Store>,
    /// Every share, revoked ones too (for a clear message), by the SHA-256 of its
    /// secret. Loaded at start, updated on create and revoke; never held across `.await`.
    by_hash: Mutex<HashMap<[u8; 32], Entry>>,
    /// Bumped on every revocation: streams opened with a share watch it and end as
    /// soon as theirs is revoked.
    revocations: watch::Sender<u64>,
}

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn entry_of(record: ShareRecord) -> Option<([u8; 32], Entry)> {
    let hash = unhex(&record.secret_sha256)?;
    let expires_at = match &record.expires_at {
        Some(text) => Some(DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc)),
        None => None,
    };
    Some((
        hash,
        Entry {
            id: record.id,
            conversation_id: record.conversation_id,
            created_at: record.created_at,
            expires_text: record.expires_at,
            expires_at,
            revoked: record.revoked,
        },
    ))
}

fn expired(expires_at: Option<DateTime<Utc>>) -> bool {
    expires_at.is_some_and(|t| t <= Utc::now())
}

impl Shares {
    /// Loads every share from the store.
    pub async fn load(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let mut by_hash = HashMap::new();
        for record in store.shares().await? {
            let id = record.id.clone();
            match entry_of(record) {
                Some((hash, entry)) => {
                    by_hash.insert(hash, entry);
                }
                None => tracing::warn!(share = %id, "ignoring a corrupt share record"),
            }
        }
        Ok(Shares {
            store,
            by_hash: Mutex::new(by_hash),
            revocations: watch::Sender::new(0),
        })
    }

    /// Takes a share record another replica wrote: a new share works here too, a
    /// revoked one ends its streams here too.
    pub fn follow(&self, record: ShareRecord) {
        let Some((hash, entry)) = entry_of(record) else {
            return;
        };
        let revoked = entry.revoked;
        let was_revoked = self
            .map()
            .insert(hash, entry)
            .is_some_and(|old| old.revoked);
        if revoked && !was_revoked {
            self.revocations.send_modify(|n| *n += 1);
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The grant of a valid secret, or why it is not valid.
    pub fn check(&self, secret: &str) -> Result<ShareGrant, AppError> {
        // A map lookup by the secret's hash: its timing says nothing about the secret.
        let hash = digest(secret);
        let map = self.map();
        let Some(entry) = map.get(&hash) else {
            return Err(AppError::Unauthorized(
                "this share link is not valid: check that it was copied whole".into(),
            ));
        };
        if entry.revoked {
            return Err(AppError::Rejected(
                StatusCode::FORBIDDEN,
                "this share link was revoked: ask for a new one".into(),
            ));
        }
        if expired(entry.expires_at) {
            return Err(AppError::Rejected(
                StatusCode::FORBIDDEN,
                format!(
                    "this share link expired at {}: ask for a new one",
                    entry.expires_text.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(ShareGrant {
            hash,
            share_id: entry.id.clone(),
            conversation_id: entry.conversation_id.clone(),
            expires_at: entry.expires_at,
        })
    }

    /// Creates a share of `conversation_id` (which must exist), persisted before it works.
    pub async fn create(
        &self,
        conversation_id: &str,
        expires_in_secs: Option<u64>,
    ) -> Result<ShareCreated, AppError> {
        if let Some(secs) = expires_in_secs
            && !(SHARE_MIN_SECS..=SHARE_MAX_SECS).contains(&secs)
        {
            return Err(AppError::BadRequest(format!(
                "expires_in_secs must be between {SHARE_MIN_SECS} and {SHARE_MAX_SECS} (30 days), got {secs}; \
                 leave it out for a link that works until revoked"
            )));
        }
        // Two v4 UUIDs: 244 random bits from the operating system's generator.
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let hash = digest(&secret);
        let now = Utc::now();
        let expires_at = expires_in_secs
            .and_then(|secs| now.checked_add_signed(chrono::Duration::seconds(secs as i64)));
        let record = ShareRecord {
            id: uuid::Uuid::new_v4().to_string(),
            conversation_id: conversation_id.to_string(),
            secret_sha256: hex(&hash),
            created_at: rfc3339(now),
            expires_at: expires_at.map(rfc3339),
            revoked: false,
        };
        self.store.create_share(&record).await?;
        let created = ShareCreated {
            share_id: record.id.clone(),
            url: format!("{LINK_PREFIX}{secret}"),
            created_at: record.created_at.clone(),
            expires_at: record.expires_at.clone(),
        };
        if let Some((hash, entry)) = entry_of(record) {
            self.map().insert(hash, entry);
        }
        Ok(created)
    }

    /// The conversation's shares that are not revoked, oldest first.
    pub fn list(&self, conversation_id: &str) -> Vec<ShareInfo> {
        let mut list: Vec<ShareInfo> = self
            .map()
            .values()
            .filter(|e| e.conversation_id == conversation_id && !e.revoked)
            .map(|e| ShareInfo {
                share_id: e.id.clone(),
                created_at: e.created_at.clone(),
                expires_at: e.expires_text.clone(),
                expired: expired(e.expires_at),
            })
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        list
    }

    /// Revokes a share of `conversation_id`; its open streams end.
    pub async fn revoke(&self, conversation_id: &str, share_id: &str) -> Result<(), AppError> {
        let known = self
            .map()
            .values()
            .any(|e| e.id == share_id && e.conversation_id == conversation_id && !e.revoked);
        if !known {
            return Err(AppError::NotFound(format!(
                "no share {share_id:?} in this conversation"
            )));
        }
        self.store.revoke_share(share_id).await?;
        if let Some(entry) = self.map().values_mut().find(|e| e.id == share_id) {
            entry.revoked = true;
        }
        self.revocations.send_modify(|n| *n += 1);
        Ok(())
    }

    fn still_valid(&self, grant: &ShareGrant) -> bool {
        self.map()
            .get(&grant.hash)
            .is_some_and(|e| !e.revoked && !expired(e.expires_at))
    }

    /// Resolves once `grant`'s share is revoked or expires: a stream opened with it ends then.
    pub async fn ended(self: Arc<Self>, grant: ShareGrant) {
        let mut revocations = self.revocations.subscribe();
        let expiry = async {
            match grant.expires_at {
                Some(at) => {
                    let left = (at - Utc::now()).to_std().unwrap_or_default();
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expiry);
        loop {
            revocations.mark_unchanged();
            if !self.still_valid(&grant) {
                return;
            }
            tokio::select! {
                changed = revocations.changed() => {
                    if changed.is_err() {
                        // The registry is gone: the server is stopping.
                        return;
                    }
                }
                () = &mut expiry => return,
            }
        }
    }
}

/// The share secret a request carries: `Authorization: Share <secret>` (programs)
/// or the `tether_share` cookie (browsers).
pub fn credential(headers: &HeaderMap) -> Option<&str> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Share "))
        .map(str::trim);
    from_header.or_else(|| super::security::cookie(headers, SHARE_COOKIE))
}

/// Whether a request with only a share for `conversation_id` may go on: reading that
/// conversation's page, stream, messages, state, changes and download; nothing else.
pub fn allows(method: &Method, path: &str, conversation_id: &str) -> bool {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return false;
    }
    if path.strip_prefix("/c/") == Some(conversation_id) {
        return true;
    }
    let Some(rest) = path.strip_prefix("/api/conversations/") else {
        return false;
    };
    let Some((id, what)) = rest.split_once('/') else {
        return false;
    };
    id == conversation_id
        && matches!(
            what,
            "stream" | "messages" | "state" | "download" | "changes"
        )
}

/// The refusal for anything a share does not allow.
pub fn not_allowed() -> Response {
    AppError::Rejected(
        StatusCode::FORBIDDEN,
        "a share link only lets you watch its own conversation (its page, stream, messages, \
         changes and download); it cannot change anything or open anything else"
            .into(),
    )
    .into_response()
}

/// `GET /s/<secret>`: a valid link sets the share cookie and sends the browser on to
/// its conversation.
pub fn open_link(shares: &Shares, secret: &str) -> Response {
    let grant = match shares.check(secret) {
        Ok(grant) => grant,
        Err(err) => return err.into_response(),
    };
    let mut response = Redirect::to(&format!("/c/{}", grant.conversation_id)).into_response();
    // Lax, not Strict: a link clicked in a chat app is a cross-site navigation, and a
    // Strict cookie would be left off the redirect that follows. A share only ever
    // allows GETs of one conversation, so a cross-site navigation carrying it can
    // only show the viewer what they were given.
    let cookie = format!("{SHARE_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
