//! Serving the Leptos site: server-rendered pages plus the files cargo-leptos builds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use app::data::{ClientSettings, DataSource, SNAPSHOT_MESSAGES, Snapshot, SnapshotFuture};
use app::protocol::{ConversationSummary, Message};
use leptos::config::LeptosOptions;

use crate::config::Config;
use crate::engine::Engine;

/// What pages see of the server while it renders them.
pub struct SiteData {
    pub engine: Arc<Engine>,
    pub config: Arc<Config>,
}

impl DataSource for SiteData {
    fn list(&self) -> Vec<ConversationSummary> {
        self.engine.summaries()
    }

    fn snapshot(&self, id: &str) -> SnapshotFuture {
        let conversation = self.engine.get(id).ok();
        Box::pin(async move {
            let conversation = conversation?;
            let state = conversation.state();
            let base = state.message_count.saturating_sub(SNAPSHOT_MESSAGES);
            let messages = conversation
                .log
                .read(base, state.message_count, SNAPSHOT_MESSAGES as usize)
                .await
                .ok()?
                .iter()
                .filter_map(|entry| serde_json::from_str::<Message>(entry.json()).ok())
                .collect();
            Some(Snapshot {
                state,
                base,
                messages,
            })
        })
    }

    fn settings(&self) -> ClientSettings {
        let timeout_ms = self.config.client_timeout_secs as f64 * 1000.0;
        ClientSettings {
            watchdog_ms: timeout_ms,
            // Look often enough that a short (test) timeout is noticed promptly.
            watchdog_check_ms: (timeout_ms / 3.0).clamp(250.0, app::watchdog::CHECK_INTERVAL_MS),
        }
    }
}

/// Leptos options that work both under cargo-leptos (which sets `LEPTOS_*` variables)
/// and when the binary is started directly after a build.
pub fn leptos_options() -> LeptosOptions {
    // cargo-leptos names the output through LEPTOS_OUTPUT_NAME (at build or run time);
    // without it Leptos would complain and guess, so use our own defaults instead.
    let under_cargo_leptos = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some()
        || option_env!("LEPTOS_OUTPUT_NAME").is_some();
    let mut options = under_cargo_leptos
        .then(|| leptos::config::get_configuration(None).ok())
        .flatten()
        .map(|conf| conf.leptos_options)
        .unwrap_or_else(|| LeptosOptions::builder().output_name("tether").build());
    if options.output_name.is_empty() {
        options.output_name = "tether".into();
    }
    if std::env::var_os("LEPTOS_SITE_ROOT").is_none() {
        options.site_root = site_root().to_string_lossy().into_owned().into();
    }
    options
}

/// `target/site` under the current directory if it is there (started from the repo
/// root), else `../site` next to the executable (`target/release/tether`).
fn site_root() -> PathBuf {
    let local = Path::new("target/site");
    if local.is_dir() {
        return local.to_path_buf();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent()?.parent().map(|dir| dir.join("site")))
        .filter(|dir| dir.is_dir())
        .unwrap_or_else(|| local.to_path_buf())
}
