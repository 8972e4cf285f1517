//! `fetch` with JSON in and out, and the server's `{"error"}` bodies as messages.

use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "hydrate")]
async fn request(method: &str, url: &str, body: Option<String>) -> Result<(u16, String), String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;

    let window = web_sys::window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        let headers = web_sys::Headers::new().map_err(|_| "cannot build headers")?;
        headers
            .set("content-type", "application/json")
            .map_err(|_| "cannot set a header")?;
        init.set_headers(&headers);
        init.set_body(&wasm_bindgen::JsValue::from_str(&body));
    }
    let response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|_| "the server cannot be reached".to_string())?;
    let response: web_sys::Response = response.dyn_into().map_err(|_| "not a response")?;
    let text = JsFuture::from(response.text().map_err(|_| "cannot read the response")?)
        .await
        .map_err(|_| "cannot read the response".to_string())?
        .as_string()
        .unwrap_or_default();
    Ok((response.status(), text))
}

#[cfg(not(feature = "hydrate"))]
async fn request(
    _method: &str,
    _url: &str,
    _body: Option<String>,
) -> Result<(u16, String), String> {
    Err("not in a browser".into())
}

fn check(status: u16, text: String) -> Result<String, String> {
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let message = serde_json::from_str::<crate::protocol::ErrorBody>(&text)
        .map(|e| e.error)
        .unwrap_or_else(|_| format!("HTTP {status}"));
    Err(message)
}

/// The HTTP status alone (for "is the conversation gone?").
pub async fn status(url: &str) -> Result<u16, String> {
    request("GET", url, None).await.map(|(status, _)| status)
}

pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let (status, text) = request("GET", url, None).await?;
    serde_json::from_str(&check(status, text)?).map_err(|e| format!("unexpected response: {e}"))
}

pub async fn post_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, String> {
    let body = serde_json::to_string(body).map_err(|e| e.to_string())?;
    let (status, text) = request("POST", url, Some(body)).await?;
    serde_json::from_str(&check(status, text)?).map_err(|e| format!("unexpected response: {e}"))
}
