//! Cursor paging, the same for every list of the operator API.
//!
//! A list takes `?limit=N` (default [`DEFAULT_LIMIT`], at most [`MAX_LIMIT`]) and
//! `?cursor=C`. Its body stays a JSON array; when there is more, the answer carries
//! `X-Next-Cursor: C` and `Link: <PATH?...&cursor=C>; rel="next"`. A cursor is opaque
//! to clients: base64url of a small JSON value the list chose (its keyset position).
//! One the platform did not hand out is 400 `bad_cursor`.

use axum::Json;
use axum::http::Uri;
use axum::http::header::{HeaderName, HeaderValue, LINK};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use patchctl_proto::trust::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Items per page when the client does not say.
pub const DEFAULT_LIMIT: u32 = 100;
/// Most items per page.
pub const MAX_LIMIT: u32 = 1000;
/// The header that carries the next page's cursor.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// The paging parameters of a list (flatten it into the list's query type).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Where to go on (from `X-Next-Cursor`).
    pub cursor: Option<String>,
}

impl PageQuery {
    /// The limit to use: 400 for 0 or more than [`MAX_LIMIT`].
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ApiError::bad_request(format!(
                "limit={n} is out of range: use 1 to {MAX_LIMIT}, and follow X-Next-Cursor \
                 for more"
            ))),
        }
    }

    /// The decoded cursor, if any: 400 `bad_cursor` for one this platform did not hand
    /// out.
    pub fn position<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// The cursor of a position.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// The position of a cursor: 400 `bad_cursor` for one this platform did not hand out.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "the cursor is not one this platform handed out: pass X-Next-Cursor of the \
                 previous page as it came, or start again without a cursor",
            )
            .with_code(ErrorCode::BadCursor)
        })
}

/// A page of a list: `limit + 1` rows were asked for; when more than `limit` came, the
/// page is cut to `limit` and the cursor is the position of its last item.
pub fn cut<T, P: Serialize>(
    mut rows: Vec<T>,
    limit: u32,
    position: impl Fn(&T) -> P,
) -> (Vec<T>, Option<String>) {
    let limit = limit as usize;
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|last| encode_cursor(&position(last)));
    (rows, next)
}

/// The answer of a list: the items as a JSON array, and when there is a next page its
/// cursor in `X-Next-Cursor` and `Link` (the request's query with `cursor` replaced).
pub fn paged<T: Serialize>(uri: &Uri, items: Vec<T>, next: Option<String>) -> Response {
    let mut resp = Json(items).into_response();
    if let Some(next) = next {
        let mut query: Vec<String> = uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
            .map(str::to_owned)
            .collect();
        query.push(format!("cursor={next}"));
        let link = format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"));
        if let (Ok(c), Ok(l)) = (HeaderValue::from_str(&next), HeaderValue::from_str(&link)) {
            resp.headers_mut()
                .insert(HeaderName::from_static(NEXT_CURSOR), c);
            resp.headers_mut().insert(LINK, l);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_bad_cursor() {
        let c = encode_cursor(&("web-01", 7));
        let back: (String, i32) = decode_cursor(&c).unwrap();
        assert_eq!(back, ("web-01".to_owned(), 7));
        for bad in ["", "!!", "bm90IGpzb24"] {
            let e = decode_cursor::<(String, i32)>(bad).unwrap_err();
            assert_eq!(e.code, Some(ErrorCode::BadCursor), "{bad}");
        }
    }

    #[test]
    fn cut_and_paged_give_the_next_link() {
        let (page, next) = cut(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page, vec![1, 2]);
        let next = next.unwrap();
        assert_eq!(decode_cursor::<i32>(&next).unwrap(), 2);
        let uri: Uri = "/api/v1/hosts?status=online&cursor=old&limit=2"
            .parse()
            .unwrap();
        let resp = paged(&uri, page, Some(next.clone()));
        assert_eq!(resp.headers()[NEXT_CURSOR], next.as_str());
        let link = resp.headers()[LINK].to_str().unwrap();
        assert_eq!(
            link,
            format!("</api/v1/hosts?status=online&limit=2&cursor={next}>; rel=\"next\"")
        );
        assert!(cut(vec![1, 2], 2, |n| *n).1.is_none());
        assert!(
            PageQuery {
                limit: Some(0),
                cursor: None
            }
            .limit()
            .is_err()
        );
        assert!(
            PageQuery {
                limit: Some(1001),
                cursor: None
            }
            .limit()
            .is_err()
        );
    }
}
