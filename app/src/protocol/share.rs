//! Read-only share links: someone without the token watches one conversation.
//! See "Share links" in `docs/security.md` and the endpoints in `docs/protocol.md`.

use serde::{Deserialize, Serialize};

/// The shortest expiry a share link may have, in seconds.
pub const SHARE_MIN_SECS: u64 = 60;
/// The longest expiry a share link may have: 30 days, in seconds.
pub const SHARE_MAX_SECS: u64 = 30 * 24 * 60 * 60;

/// `POST /api/conversations/{id}/shares`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateShare {
    /// Seconds until the link stops working (`SHARE_MIN_SECS..=SHARE_MAX_SECS`);
    /// absent: it works until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
}

/// The answer to creating a share: the only time its secret is ever shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareCreated {
    pub share_id: String,
    /// `/s/<secret>`, relative to the server's address.
    pub url: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// One share link as `GET /api/conversations/{id}/shares` lists it (never its secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareInfo {
    pub share_id: String,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// Past its expiry (it is listed until revoked).
    pub expired: bool,
}

/// What the page's visitor may do, rendered into the page (`<meta name="tether-access">`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    /// Opened through a share link without the token: watch only.
    pub read_only: bool,
    /// The one conversation a share link opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}
