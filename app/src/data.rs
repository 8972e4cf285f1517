//! What the server hands the page at render time, and how the page gets it again
//! after client-side navigation.

use serde::{Deserialize, Serialize};

use crate::protocol::{ConversationState, ConversationSummary, Message};

/// Messages rendered into the first page load at most; older ones stay on the server
/// (the page says so and the download has them).
pub const SNAPSHOT_MESSAGES: u64 = 3_000;

/// A conversation as of render time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub state: ConversationState,
    /// The index of `messages[0]`.
    pub base: u64,
    pub messages: Vec<Message>,
}

// Defined beside the watchdog it configures, so that `client` need not depend on
// this module; the server takes it from here.
pub use crate::watchdog::ClientSettings;

/// A snapshot being read on the server (older messages may come from its store).
#[cfg(feature = "ssr")]
pub type SnapshotFuture =
    std::pin::Pin<Box<dyn Future<Output = Option<Snapshot>> + Send + 'static>>;

/// Server-side access to live data for rendering (the server implements it).
#[cfg(feature = "ssr")]
pub trait DataSource: Send + Sync {
    fn list(&self) -> Vec<ConversationSummary>;
    fn snapshot(&self, id: &str) -> SnapshotFuture;
    fn settings(&self) -> ClientSettings;
}

/// Provided as context while the server renders.
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ServerData(pub std::sync::Arc<dyn DataSource>);

pub fn conversation_base(id: &str) -> String {
    format!("/api/conversations/{id}/")
}

/// Loads the conversation list: from the server's memory while rendering there,
/// over HTTP in the browser.
pub fn load_list() -> impl Future<Output = Result<Vec<ConversationSummary>, String>> + Send {
    #[cfg(feature = "ssr")]
    {
        // Read now, while the render's context is current.
        let list = leptos::prelude::use_context::<ServerData>()
            .map(|d| d.0.list())
            .ok_or_else(|| "no data source".to_string());
        async move { list }
    }
    #[cfg(not(feature = "ssr"))]
    {
        // Browser futures are not `Send`; the browser has one thread anyway.
        send_wrapper::SendWrapper::new(async move {
            crate::client::http::get_json("/api/conversations").await
        })
    }
}

/// Loads a conversation's state and its latest messages.
pub fn load_snapshot(id: String) -> impl Future<Output = Result<Snapshot, String>> + Send {
    #[cfg(feature = "ssr")]
    {
        // Asked now, while the render's context is current; read when awaited.
        let snapshot = leptos::prelude::use_context::<ServerData>().map(|d| d.0.snapshot(&id));
        async move {
            match snapshot {
                Some(reading) => reading.await,
                None => None,
            }
            .ok_or_else(|| format!("no conversation with id {id:?}"))
        }
    }
    #[cfg(not(feature = "ssr"))]
    {
        send_wrapper::SendWrapper::new(async move {
            let base = conversation_base(&id);
            let state: ConversationState =
                crate::client::http::get_json(&format!("{base}state")).await?;
            let start = state.message_count.saturating_sub(SNAPSHOT_MESSAGES);
            let messages: Vec<Message> =
                crate::client::http::get_json(&format!("{base}messages?start={start}")).await?;
            Ok(Snapshot {
                state,
                base: start,
                messages,
            })
        })
    }
}
