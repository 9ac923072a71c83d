//! The dashboard's stylesheet and script, built into the binary (`include_bytes!`) and
//! served under content-hashed names (`/ui/static/app.<hash>.css`) with a one-year
//! immutable cache: a new build changes the name, so a browser never keeps an old copy.
//! No CDN: the dashboard works offline.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::UiError;
use crate::error::ApiError;

/// One built-in asset.
struct Asset {
    /// The URL it is served at, with the first 16 hex digits of its SHA-256.
    url: String,
    /// Its content type.
    content_type: &'static str,
    /// Its bytes.
    bytes: &'static [u8],
}

impl Asset {
    fn new(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        let hash = hex::encode(Sha256::digest(bytes));
        Asset {
            url: format!("/ui/static/{stem}.{}.{ext}", &hash[..16]),
            content_type,
            bytes,
        }
    }
}

static CSS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "css",
        "text/css; charset=utf-8",
        include_bytes!("../../assets/app.css"),
    )
});
static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "app",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/app.js"),
    )
});

/// URL of the stylesheet.
pub fn css_url() -> &'static str {
    &CSS.url
}

/// URL of the script.
pub fn js_url() -> &'static str {
    &JS.url
}

/// `GET /ui/static/{file}`: an asset by its hashed name; any other name is 404.
pub async fn serve(Path(file): Path<String>) -> Result<Response, UiError> {
    let path = format!("/ui/static/{file}");
    let Some(asset) = [&*CSS, &*JS].into_iter().find(|a| a.url == path) else {
        return Err(ApiError::not_found(format!(
            "no asset {file:?}; reload the page to get the current asset names"
        ))
        .into());
    };
    let mut resp = asset.bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(resp)
}
