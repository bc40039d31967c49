//! `/media/{image_id}/{file}`: generated image files, public and immutable
//! (their names carry a hash of their bytes), and the `<picture>` markup
//! pages use to show them.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use keel_app::images::ImageView;

pub const CACHE_FOREVER: &str = "public, max-age=31536000, immutable";

pub fn router() -> Router<AppState> {
    Router::new().route("/media/{image_id}/{file}", get(serve))
}

async fn serve(State(s): State<AppState>, Path((image_id, file)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some((path, format, hash)) = s.app.media.locate(&image_id, &file) else {
        return ApiError::not_found("no such file").into_response();
    };
    let etag = format!("\"{hash}\"");
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let bytes = if cached {
        // The name is the content: if the file exists, the client's copy is it.
        let p = path.clone();
        match tokio::task::spawn_blocking(move || p.is_file()).await {
            Ok(true) => None,
            _ => return ApiError::not_found("no such file").into_response(),
        }
    } else {
        match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
            Ok(Ok(b)) => Some(b),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return ApiError::not_found("no such file").into_response()
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "could not read a media file");
                return ApiError::internal().into_response();
            }
            Err(_) => return ApiError::internal().into_response(),
        }
    };
    let mut res = match bytes {
        Some(b) => b.into_response(),
        None => StatusCode::NOT_MODIFIED.into_response(),
    };
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_FOREVER));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.mime()));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    res
}

/// What a page needs to show one image responsively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub alt: String,
    /// Intrinsic size (of the widest file), so the browser reserves space.
    pub width: i64,
    pub height: i64,
    /// `url 320w, url 640w, …`; `None` when the WebP files would be heavier
    /// than the JPEGs (Keel's WebP is lossless, which loses on photographs).
    pub webp_srcset: Option<String>,
    pub jpeg_srcset: String,
    /// For browsers without `srcset`: the JPEG nearest 640 px wide.
    pub fallback_src: String,
}

impl Picture {
    /// `None` for an image without JPEG files (never the case for an
    /// image Keel stored).
    pub fn from_image(img: &ImageView) -> Option<Picture> {
        let of = |format: &str| {
            let mut files: Vec<_> = img.variants.iter().filter(|v| v.format == format).collect();
            files.sort_by_key(|v| v.width);
            files
        };
        let (webp, jpeg) = (of("webp"), of("jpeg"));
        let widest = jpeg.last()?;
        let srcset = |files: &[&keel_app::images::ImageFileView]| {
            files.iter().map(|v| format!("{} {}w", v.url, v.width)).collect::<Vec<_>>().join(", ")
        };
        let bytes = |files: &[&keel_app::images::ImageFileView]| files.iter().map(|v| v.byte_size).sum::<i64>();
        let webp_srcset = (!webp.is_empty() && bytes(&webp) <= bytes(&jpeg)).then(|| srcset(&webp));
        let fallback = jpeg.iter().find(|v| v.width >= 640).unwrap_or(widest);
        Some(Picture {
            alt: img.alt.clone(),
            width: widest.width,
            height: widest.height,
            webp_srcset,
            jpeg_srcset: srcset(&jpeg),
            fallback_src: fallback.url.clone(),
        })
    }

    /// The picture of the first image (in display order), if any.
    pub fn first_of(images: &[ImageView]) -> Option<Picture> {
        images.first().and_then(Picture::from_image)
    }

    /// Replaces the alt text (e.g. with the product title when the image
    /// has none).
    pub fn with_alt(mut self, alt: impl Into<String>) -> Picture {
        self.alt = alt.into();
        self
    }
}

/// Escapes text for a double-quoted HTML attribute.
pub fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `<picture>` markup for `p`. `sizes` is the layout hint (e.g.
/// `(min-width: 60em) 50vw, 100vw`). `eager` marks the main image of a page
/// (`fetchpriority="high"`, loaded at once); others load lazily.
pub fn picture_html(p: &Picture, sizes: &str, eager: bool) -> String {
    let sizes = escape_attr(sizes);
    let mut out = String::from("<picture>");
    if let Some(webp) = &p.webp_srcset {
        out.push_str(&format!(r#"<source type="image/webp" srcset="{}" sizes="{sizes}">"#, escape_attr(webp)));
    }
    out.push_str(&format!(
        r#"<img src="{}" srcset="{}" sizes="{sizes}" width="{}" height="{}" alt="{}""#,
        escape_attr(&p.fallback_src),
        escape_attr(&p.jpeg_srcset),
        p.width,
        p.height,
        escape_attr(&p.alt),
    ));
    if eager {
        out.push_str(r#" fetchpriority="high""#);
    } else {
        out.push_str(r#" loading="lazy" decoding="async""#);
    }
    out.push_str("></picture>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_app::images::ImageFileView;

    fn file(format: &str, width: i64, byte_size: i64) -> ImageFileView {
        let ext = if format == "webp" { "webp" } else { "jpg" };
        ImageFileView {
            format: format.into(),
            width,
            height: width / 2,
            url: format!("/media/img_1/{width}-0123456789abcdef.{ext}"),
            byte_size,
        }
    }

    fn image(alt: &str, files: Vec<ImageFileView>) -> ImageView {
        ImageView {
            id: "img_1".into(),
            object: "product_image",
            product_id: "prod_1".into(),
            variant_id: None,
            position: 0,
            alt: alt.into(),
            format: "png".into(),
            width: 1000,
            height: 500,
            byte_size: 1,
            content_hash: String::new(),
            variants: files,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn renders_a_lazy_picture_with_both_formats() {
        let img = image(
            "A \"red\" <mug> & saucer",
            vec![file("webp", 320, 10), file("webp", 960, 30), file("webp", 640, 20), file("jpeg", 320, 11), file("jpeg", 640, 21), file("jpeg", 960, 31)],
        );
        let p = Picture::from_image(&img).unwrap();
        assert_eq!((p.width, p.height), (960, 480));
        assert_eq!(p.fallback_src, "/media/img_1/640-0123456789abcdef.jpg");
        let html = picture_html(&p, "(min-width: 40em) 50vw, 100vw", false);
        assert_eq!(
            html,
            "<picture><source type=\"image/webp\" srcset=\"/media/img_1/320-0123456789abcdef.webp 320w, \
             /media/img_1/640-0123456789abcdef.webp 640w, /media/img_1/960-0123456789abcdef.webp 960w\" \
             sizes=\"(min-width: 40em) 50vw, 100vw\"><img src=\"/media/img_1/640-0123456789abcdef.jpg\" \
             srcset=\"/media/img_1/320-0123456789abcdef.jpg 320w, /media/img_1/640-0123456789abcdef.jpg 640w, \
             /media/img_1/960-0123456789abcdef.jpg 960w\" sizes=\"(min-width: 40em) 50vw, 100vw\" width=\"960\" \
             height=\"480\" alt=\"A &quot;red&quot; &lt;mug&gt; &amp; saucer\" loading=\"lazy\" decoding=\"async\"></picture>"
        );
    }

    #[test]
    fn the_main_image_is_eager_and_high_priority() {
        let p = Picture::from_image(&image("Mug", vec![file("webp", 320, 1), file("jpeg", 320, 2)])).unwrap();
        let html = picture_html(&p, "100vw", true);
        assert!(html.contains(r#"fetchpriority="high""#), "{html}");
        assert!(!html.contains("loading="), "{html}");
        assert_eq!(p.fallback_src, "/media/img_1/320-0123456789abcdef.jpg", "the widest when none reaches 640");
    }

    #[test]
    fn heavier_webp_is_left_out() {
        let p = Picture::from_image(&image("", vec![file("webp", 320, 50), file("jpeg", 320, 10)])).unwrap();
        assert_eq!(p.webp_srcset, None);
        let html = picture_html(&p, "100vw", false);
        assert!(!html.contains("<source"), "{html}");
        assert!(html.contains(r#"alt="""#), "{html}");
        assert_eq!(Picture::from_image(&image("x", vec![file("webp", 320, 1)])), None);
        assert_eq!(Picture::first_of(&[]), None);
        assert_eq!(p.with_alt("Mug").alt, "Mug");
    }
}
