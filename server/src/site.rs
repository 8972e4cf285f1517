//! Serving the Leptos site: server-rendered pages plus the files cargo-leptos builds.

use std::path::{Path, PathBuf};

use leptos::config::LeptosOptions;

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
