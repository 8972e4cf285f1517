//! JSON over HTTP (gloo-net's `fetch`), with the server's `{"error"}` bodies as messages.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The status and body text of the answer to a GET, or to a POST of `body` as JSON.
/// The body is read as text, not with `Response::json`, because an error's body
/// is not the type the caller asked for: `check` makes the message out of it.
#[cfg(feature = "hydrate")]
async fn request<B: Serialize>(url: &str, body: Option<&B>) -> Result<(u16, String), String> {
    use gloo_net::http::Request;

    let request = match body {
        Some(body) => Request::post(url).json(body),
        None => Request::get(url).build(),
    }
    .map_err(|e| e.to_string())?;
    let response = request
        .send()
        .await
        .map_err(|_| "the server cannot be reached".to_string())?;
    let text = response
        .text()
        .await
        .map_err(|_| "cannot read the response".to_string())?;
    Ok((response.status(), text))
}

/// The status and body text of the answer to a DELETE.
#[cfg(feature = "hydrate")]
async fn delete_request(url: &str) -> Result<(u16, String), String> {
    let response = gloo_net::http::Request::delete(url)
        .send()
        .await
        .map_err(|_| "the server cannot be reached".to_string())?;
    let text = response.text().await.unwrap_or_default();
    Ok((response.status(), text))
}

#[cfg(not(feature = "hydrate"))]
async fn delete_request(_url: &str) -> Result<(u16, String), String> {
    Err("not in a browser".into())
}

#[cfg(not(feature = "hydrate"))]
async fn request<B: Serialize>(_url: &str, _body: Option<&B>) -> Result<(u16, String), String> {
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
    request::<()>(url, None).await.map(|(status, _)| status)
}

pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, String> {
    let (status, text) = request::<()>(url, None).await?;
    serde_json::from_str(&check(status, text)?).map_err(|e| format!("unexpected response: {e}"))
}

pub async fn post_json<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, String> {
    let (status, text) = request(url, Some(body)).await?;
    serde_json::from_str(&check(status, text)?).map_err(|e| format!("unexpected response: {e}"))
}

/// DELETE; success has no body worth reading.
pub async fn delete(url: &str) -> Result<(), String> {
    let (status, text) = delete_request(url).await?;
    check(status, text).map(|_| ())
}

/// Like `post_json`, but a refusal keeps its HTTP status (0 when the server could
/// not be reached), for callers to whom some refusals are news, not failures: a
/// permission request answered meanwhile from another browser (`409`).
pub async fn post_json_status<B: Serialize, T: DeserializeOwned>(
    url: &str,
    body: &B,
) -> Result<T, (u16, String)> {
    let (status, text) = request(url, Some(body)).await.map_err(|e| (0, e))?;
    let text = check(status, text).map_err(|e| (status, e))?;
    serde_json::from_str(&text).map_err(|e| (status, format!("unexpected response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn success_passes_the_body_through() {
        assert_eq!(check(200, "[1]".into()), Ok("[1]".into()));
        assert_eq!(check(204, String::new()), Ok(String::new()));
    }

    #[test]
    fn error_bodies_become_the_message() {
        assert_eq!(
            check(409, r#"{"error":"already running"}"#.into()),
            Err("already running".into())
        );
        assert_eq!(check(502, "Bad Gateway".into()), Err("HTTP 502".into()));
        assert_eq!(check(404, String::new()), Err("HTTP 404".into()));
    }
}
