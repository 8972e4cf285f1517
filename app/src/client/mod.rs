//! Browser-side plumbing: HTTP calls and the resilient event stream. On the server
//! these compile to stubs (nothing here runs during server rendering).

pub mod frames;
pub mod http;
pub mod stream;
#[cfg(feature = "hydrate")]
pub mod worker;

/// Milliseconds since the epoch, from the browser's clock.
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0.0
    }
}

/// Parses an RFC 3339 timestamp to epoch milliseconds (browser only).
pub fn parse_time_ms(rfc3339: &str) -> Option<f64> {
    #[cfg(feature = "hydrate")]
    {
        let ms = js_sys::Date::parse(rfc3339);
        (!ms.is_nan()).then_some(ms)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = rfc3339;
        None
    }
}
