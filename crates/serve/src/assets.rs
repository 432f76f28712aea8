//! The page's files, embedded in the binary: `cargo build` is the whole set-up, and only these files can be read.

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "assets/"]
struct Assets;

fn file(path: &str) -> Option<Response> {
    let asset = Assets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    Some(
        (
            [(header::CONTENT_TYPE, mime.as_ref().to_string()), (header::CACHE_CONTROL, "no-cache".to_string())],
            asset.data.into_owned(),
        )
            .into_response(),
    )
}

pub async fn asset(method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return super::api::error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} {}: only GET", uri.path()));
    }
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() { "index.html" } else { path };
    file(path).unwrap_or_else(|| super::api::error(StatusCode::NOT_FOUND, format!("{}: no such page", uri.path())))
}
