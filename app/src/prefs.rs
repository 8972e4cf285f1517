//! This browser's own choices and memory, in `localStorage`: nothing here goes to
//! the server. On the server (and where storage is refused) reads give `None` and
//! writes do nothing.

/// Keys, in one place so they cannot collide.
pub const NOTIFY: &str = "tether.notify";
pub const WRAP: &str = "tether.wrap";
/// JSON map: conversation id → the `updated_at` it had when last looked at.
pub const SEEN: &str = "tether.seen";
/// Epoch ms of this browser's first visit: older activity counts as seen.
pub const SINCE: &str = "tether.since";

pub fn get(key: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        storage()?.get_item(key).ok().flatten()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = key;
        None
    }
}

pub fn set(key: &str, value: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(storage) = storage() {
        // Full or refused (private mode): the choice lasts for this page only.
        let _ = storage.set_item(key, value);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (key, value);
}

pub fn get_bool(key: &str) -> bool {
    get(key).as_deref() == Some("1")
}

pub fn set_bool(key: &str, on: bool) {
    set(key, if on { "1" } else { "0" });
}

#[cfg(feature = "hydrate")]
fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}
