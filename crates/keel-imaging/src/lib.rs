//! Decoding an upload and rendering its responsive variants. Synchronous,
//! CPU-bound and free of I/O: use cases run it on the blocking pool. A crate
//! of its own so debug builds can optimise it (the codecs' generic code is
//! compiled here). Dimensions are read
//! from the header and checked before any pixel is decoded, and every
//! decoder error (or panic) becomes an [`Invalid`], never a crash.

use image::codecs::jpeg::JpegEncoder;
use image::codecs::webp::WebPEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits, RgbImage};
use keel_domain::images::{self as rules, OutputFormat, SourceFormat};
use keel_domain::Invalid;
use sha2::{Digest, Sha256};
use std::io::Cursor;

/// JPEG quality of generated variants.
pub const JPEG_QUALITY: u8 = 80;
/// Upper bound on what a decoder may allocate: a maximal image in 16-bit
/// RGBA plus headroom.
const MAX_DECODE_ALLOC: u64 = rules::MAX_PIXELS * 8 + 64 * 1024 * 1024;

/// An upload, decoded and rendered.
#[derive(Debug)]
pub struct Rendered {
    pub format: SourceFormat,
    /// Upright dimensions (EXIF orientation applied).
    pub width: u32,
    pub height: u32,
    /// SHA-256 of the upload, hex.
    pub content_hash: String,
    /// Widest first, WebP then JPEG per width.
    pub variants: Vec<RenderedVariant>,
}

#[derive(Debug)]
pub struct RenderedVariant {
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
    /// Truncated SHA-256 of `bytes`, as used in the file name.
    pub hash: String,
}

impl RenderedVariant {
    pub fn file_name(&self) -> String {
        rules::variant_file_name(self.width, &self.hash, self.format)
    }
}

fn image_format(f: SourceFormat) -> ImageFormat {
    match f {
        SourceFormat::Jpeg => ImageFormat::Jpeg,
        SourceFormat::Png => ImageFormat::Png,
        SourceFormat::Webp => ImageFormat::WebP,
    }
}

fn mime(f: SourceFormat) -> &'static str {
    match f {
        SourceFormat::Jpeg => "image/jpeg",
        SourceFormat::Png => "image/png",
        SourceFormat::Webp => "image/webp",
    }
}

fn decode_error(field: &str, format: SourceFormat, e: ImageError) -> Invalid {
    match e {
        ImageError::Limits(_) => Invalid::new(field, "image_too_large", "the image exceeds the size this server decodes"),
        _ => Invalid::new(field, "invalid_image", format!("the body could not be decoded as {}", mime(format))),
    }
}

/// Checks that `bytes` are what `declared` says, then reads the header.
/// Returns the decoder, positioned before the pixels.
fn open<'a>(field: &str, bytes: &'a [u8], declared: SourceFormat) -> Result<impl ImageDecoder + 'a, Invalid> {
    match SourceFormat::sniff(bytes) {
        Some(actual) if actual == declared => {}
        Some(actual) => {
            return Err(Invalid::new(
                field,
                "invalid_image",
                format!("the body is {}, but the Content-Type says {}", mime(actual), mime(declared)),
            ))
        }
        None => return Err(Invalid::new(field, "invalid_image", format!("the body is not {}", mime(declared)))),
    }
    if declared == SourceFormat::Jpeg && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills in missing scan data silently.
        return Err(Invalid::new(field, "invalid_image", "the JPEG is truncated (no end-of-image marker)"));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format(declared));
    let mut limits = Limits::default();
    limits.max_image_width = Some(rules::MAX_SIDE);
    limits.max_image_height = Some(rules::MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    reader.into_decoder().map_err(|e| decode_error(field, declared, e))
}

/// Whether a JPEG's main image has its end-of-image marker: walks the
/// marker segments (skipping APPn payloads, which may hold a thumbnail with
/// markers of its own) to the first scan, then looks for `FF D9` after it.
/// Scan data stuffs every `FF` byte, so a `FF D9` there is a real marker.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2;
    while i + 1 < bytes.len() {
        if bytes[i] != 0xFF {
            return false;
        }
        let marker = bytes[i + 1];
        match marker {
            0xFF => i += 1,
            0xD9 => return true,
            0x01 | 0xD0..=0xD7 => i += 2,
            0xDA => return bytes[i + 2..].windows(2).any(|w| w == [0xFF, 0xD9]),
            _ => {
                let Some(len) = bytes.get(i + 2..i + 4) else { return false };
                i += 2 + usize::from(u16::from_be_bytes([len[0], len[1]]));
            }
        }
    }
    false
}

/// Width and height from the header alone, checked against the limits.
pub fn probe(field: &str, bytes: &[u8], declared: SourceFormat) -> Result<(u32, u32), Invalid> {
    let decoder = open(field, bytes, declared)?;
    let (w, h) = decoder.dimensions();
    rules::check_dimensions(field, w, h)?;
    Ok((w, h))
}

/// Decodes `bytes` and renders every variant; catches decoder panics.
pub fn render(field: &str, bytes: &[u8], declared: SourceFormat) -> Result<Rendered, Invalid> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| render_inner(field, bytes, declared))) {
        Ok(r) => r,
        Err(_) => Err(Invalid::new(field, "invalid_image", format!("the body could not be decoded as {}", mime(declared)))),
    }
}

fn render_inner(field: &str, bytes: &[u8], declared: SourceFormat) -> Result<Rendered, Invalid> {
    let mut decoder = open(field, bytes, declared)?;
    let (w, h) = decoder.dimensions();
    rules::check_dimensions(field, w, h)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(field, declared, e))?;
    img.apply_orientation(orientation);
    let rendered = render_variants(&img);
    Ok(Rendered {
        format: declared,
        width: img.width(),
        height: img.height(),
        content_hash: hex::encode(Sha256::digest(bytes)),
        variants: rendered,
    })
}

/// Every variant of a decoded image, widest first. Each width is resized
/// from the next wider one, so the cost is dominated by the first step.
pub fn render_variants(img: &DynamicImage) -> Vec<RenderedVariant> {
    let alpha = img.color().has_alpha();
    let mut source = if alpha { DynamicImage::ImageRgba8(img.to_rgba8()) } else { DynamicImage::ImageRgb8(img.to_rgb8()) };
    let (w, h) = (source.width(), source.height());
    let mut out = Vec::new();
    for width in rules::variant_widths(w).into_iter().rev() {
        let height = rules::scaled_height(w, h, width);
        if (source.width(), source.height()) != (width, height) {
            source = source.resize_exact(width, height, FilterType::CatmullRom);
        }
        out.push(encode(&source, OutputFormat::Webp));
        out.push(encode(&source, OutputFormat::Jpeg));
    }
    out
}

fn encode(img: &DynamicImage, format: OutputFormat) -> RenderedVariant {
    let mut bytes = Vec::new();
    let result = match format {
        // The `image` crate's WebP encoder is lossless.
        OutputFormat::Webp => img.write_with_encoder(WebPEncoder::new_lossless(&mut bytes)),
        OutputFormat::Jpeg => {
            let rgb = flatten(img);
            rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY))
        }
    };
    // Encoding RGB(A)8 pixels into memory has no failure mode but a bug.
    result.expect("encoding an in-memory RGB(A)8 image");
    let hash = hex::encode(Sha256::digest(&bytes))[..rules::FILE_HASH_LEN].to_owned();
    RenderedVariant { format, width: img.width(), height: img.height(), bytes, hash }
}

/// JPEG has no alpha: composite over white.
fn flatten(img: &DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgba8(rgba) => {
            let mut rgb = RgbImage::new(rgba.width(), rgba.height());
            for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
                let a = u16::from(src[3]);
                for c in 0..3 {
                    dst[c] = ((u16::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
                }
            }
            rgb
        }
        other => other.to_rgb8(),
    }
}

/// A 1200×1200 PNG placeholder (the demo shop's product pictures), the
/// `n`th of `count`: flat artwork in its own hue (a backdrop, a floor band
/// and a disc), so listings look distinct and files stay small.
pub fn placeholder_png(n: usize, count: usize) -> Vec<u8> {
    const SIZE: u32 = 1200;
    let hue = (n as f32 * 360.0 / count.max(1) as f32) % 360.0;
    let rgb = |c: [f32; 3]| image::Rgb([c[0] as u8, c[1] as u8, c[2] as u8]);
    let mut img = image::RgbImage::from_pixel(SIZE, SIZE, rgb(hsv(hue, 0.25, 0.97)));
    let floor = rgb(hsv(hue, 0.35, 0.88));
    for y in SIZE * 3 / 4..SIZE {
        for x in 0..SIZE {
            img.put_pixel(x, y, floor);
        }
    }
    let disc = rgb(hsv((hue + 25.0) % 360.0, 0.7, 0.75));
    let (cx, cy, r) = (SIZE as i64 / 2, SIZE as i64 * 11 / 20, SIZE as i64 * 3 / 10);
    for y in (cy - r)..=(cy + r) {
        let half = ((r * r - (y - cy) * (y - cy)) as f64).sqrt() as i64;
        for x in (cx - half)..=(cx + half) {
            img.put_pixel(x as u32, y as u32, disc);
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    out.into_inner()
}

fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [(r + m) * 255.0, (g + m) * 255.0, (b + m) * 255.0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, Rgba, RgbaImage};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img).write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn renders_every_width_in_both_formats() {
        let r = render("body", &png(1000, 500), SourceFormat::Png).unwrap();
        assert_eq!((r.width, r.height), (1000, 500));
        let got: Vec<(OutputFormat, u32, u32)> = r.variants.iter().map(|v| (v.format, v.width, v.height)).collect();
        assert_eq!(
            got,
            vec![
                (OutputFormat::Webp, 960, 480),
                (OutputFormat::Jpeg, 960, 480),
                (OutputFormat::Webp, 640, 320),
                (OutputFormat::Jpeg, 640, 320),
                (OutputFormat::Webp, 320, 160),
                (OutputFormat::Jpeg, 320, 160),
            ]
        );
        for v in &r.variants {
            let decoded = image::load_from_memory(&v.bytes).unwrap();
            assert_eq!((decoded.width(), decoded.height()), (v.width, v.height));
            assert_eq!(v.hash.len(), rules::FILE_HASH_LEN);
        }
    }

    #[test]
    fn small_images_keep_their_width() {
        let r = render("body", &png(200, 300), SourceFormat::Png).unwrap();
        assert_eq!(r.variants.len(), 2);
        assert!(r.variants.iter().all(|v| (v.width, v.height) == (200, 300)));
    }

    #[test]
    fn alpha_is_flattened_on_white_for_jpeg() {
        let img = DynamicImage::ImageRgba8(RgbaImage::from_pixel(8, 8, Rgba([0, 0, 0, 0])));
        let rgb = flatten(&img);
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([255, 255, 255]));
    }

    #[test]
    fn bad_bytes_are_invalid_not_panics() {
        let e = render("body", b"definitely not an image", SourceFormat::Png).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("body", "invalid_image"));
        let mut truncated = png(400, 400);
        truncated.truncate(truncated.len() / 2);
        assert_eq!(render("body", &truncated, SourceFormat::Png).unwrap_err().code, "invalid_image");
        let e = render("body", &png(10, 10), SourceFormat::Jpeg).unwrap_err();
        assert!(e.message.contains("image/png"), "{}", e.message);
    }

    #[test]
    fn placeholders_differ_and_decode() {
        let (a, b) = (placeholder_png(0, 20), placeholder_png(1, 20));
        assert_ne!(a, b);
        assert_eq!(probe("body", &a, SourceFormat::Png).unwrap(), (1200, 1200));
    }

    #[test]
    fn truncated_files_are_invalid_in_every_format() {
        let img = DynamicImage::ImageRgb8(RgbImage::from_fn(600, 400, |x, y| Rgb([(x % 256) as u8, (y % 256) as u8, 90])));
        for (f, sf) in [(ImageFormat::Jpeg, SourceFormat::Jpeg), (ImageFormat::WebP, SourceFormat::Webp), (ImageFormat::Png, SourceFormat::Png)] {
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, f).unwrap();
            let mut b = out.into_inner();
            assert!(render("body", &b, sf).is_ok());
            b.truncate(b.len() * 2 / 3);
            assert_eq!(render("body", &b, sf).unwrap_err().code, "invalid_image", "{f:?}");
        }
    }

    #[test]
    fn jpeg_completeness_skips_segments() {
        // SOI, an APP1 whose payload holds a complete thumbnail (FF DA … FF D9), then the main scan.
        let mut b = vec![0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x08, 0xFF, 0xDA, 0x01, 0xFF, 0xD9, 0x00];
        b.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x03, 0x01, 0x12, 0xFF, 0x00, 0x34]);
        assert!(!jpeg_is_complete(&b), "the thumbnail's end is not the image's");
        b.extend_from_slice(&[0xFF, 0xD9]);
        assert!(jpeg_is_complete(&b));
        assert!(!jpeg_is_complete(&[0xFF, 0xD8]));
    }

    #[test]
    fn probe_reads_the_header_only() {
        assert_eq!(probe("body", &png(30, 20), SourceFormat::Png).unwrap(), (30, 20));
    }
}
