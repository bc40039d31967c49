//! Image rules: accepted formats, size limits, which responsive widths an
//! image gets, and the names of generated files.

use crate::Invalid;

/// Widths Keel generates, narrowest first. An image never gets a width
/// larger than its own.
pub const WIDTHS: [u32; 4] = [320, 640, 960, 1440];
/// Largest upload body accepted (20 MiB).
pub const MAX_UPLOAD_BYTES: usize = 20 * 1024 * 1024;
/// Largest image accepted, checked from the file header before decoding.
pub const MAX_PIXELS: u64 = 40_000_000;
pub const MAX_SIDE: u32 = 10_000;
/// Alt text bound, in characters.
pub const MAX_ALT: usize = 1000;

/// A format an upload may be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    Jpeg,
    Png,
    Webp,
}

impl SourceFormat {
    /// From a `Content-Type` value (parameters ignored, any case).
    pub fn from_content_type(value: &str) -> Option<SourceFormat> {
        let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(SourceFormat::Jpeg),
            "image/png" => Some(SourceFormat::Png),
            "image/webp" => Some(SourceFormat::Webp),
            _ => None,
        }
    }

    /// From the first bytes of a file.
    pub fn sniff(bytes: &[u8]) -> Option<SourceFormat> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(SourceFormat::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(SourceFormat::Png)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(SourceFormat::Webp)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpeg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
        }
    }

    pub fn parse(s: &str) -> Option<SourceFormat> {
        match s {
            "jpeg" => Some(SourceFormat::Jpeg),
            "png" => Some(SourceFormat::Png),
            "webp" => Some(SourceFormat::Webp),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            SourceFormat::Jpeg => "jpg",
            SourceFormat::Png => "png",
            SourceFormat::Webp => "webp",
        }
    }
}

/// A format Keel generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum OutputFormat {
    Webp,
    Jpeg,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 2] = [OutputFormat::Webp, OutputFormat::Jpeg];

    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Webp => "webp",
            OutputFormat::Jpeg => "jpeg",
        }
    }

    pub fn parse(s: &str) -> Option<OutputFormat> {
        match s {
            "webp" => Some(OutputFormat::Webp),
            "jpeg" => Some(OutputFormat::Jpeg),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Webp => "webp",
            OutputFormat::Jpeg => "jpg",
        }
    }

    pub fn from_extension(ext: &str) -> Option<OutputFormat> {
        match ext {
            "webp" => Some(OutputFormat::Webp),
            "jpg" => Some(OutputFormat::Jpeg),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            OutputFormat::Webp => "image/webp",
            OutputFormat::Jpeg => "image/jpeg",
        }
    }
}

/// Refuses images too large to process, from their declared dimensions.
pub fn check_dimensions(field: &str, width: u32, height: u32) -> Result<(), Invalid> {
    if width == 0 || height == 0 {
        return Err(Invalid::new(field, "invalid_image", "the image has no pixels"));
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Invalid::new(
            field,
            "image_too_large",
            format!(
                "the image is {width}×{height}; at most {MAX_SIDE} pixels a side and {} megapixels are accepted",
                MAX_PIXELS / 1_000_000
            ),
        ));
    }
    Ok(())
}

/// The widths generated for an image `original` pixels wide: every standard
/// width that does not upscale it, or its own width when it is narrower
/// than the smallest.
pub fn variant_widths(original: u32) -> Vec<u32> {
    let widths: Vec<u32> = WIDTHS.iter().copied().filter(|w| *w <= original).collect();
    if widths.is_empty() && original > 0 {
        vec![original]
    } else {
        widths
    }
}

/// The height of a `width`-wide copy of a `w`×`h` image, rounded, at least 1.
pub fn scaled_height(w: u32, h: u32, width: u32) -> u32 {
    let scaled = (u64::from(h) * u64::from(width) + u64::from(w) / 2) / u64::from(w.max(1));
    scaled.clamp(1, u64::from(u32::MAX)) as u32
}

/// Length of the content hash embedded in generated file names (hex digits).
pub const FILE_HASH_LEN: usize = 16;

/// The name of a generated file: `{width}-{hash}.{ext}`.
pub fn variant_file_name(width: u32, hash: &str, format: OutputFormat) -> String {
    format!("{width}-{hash}.{}", format.extension())
}

/// Parses a generated file name strictly; anything else (dots, slashes,
/// upper case, other extensions, the stored original) is `None`.
pub fn parse_variant_file_name(name: &str) -> Option<(u32, &str, OutputFormat)> {
    let (stem, ext) = name.split_once('.')?;
    let format = OutputFormat::from_extension(ext)?;
    let (width, hash) = stem.split_once('-')?;
    let width_ok = (1..=5).contains(&width.len()) && width.bytes().all(|b| b.is_ascii_digit()) && !width.starts_with('0');
    let hash_ok = hash.len() == FILE_HASH_LEN && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !width_ok || !hash_ok {
        return None;
    }
    Some((width.parse().ok()?, hash, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_never_upscale() {
        assert_eq!(variant_widths(2000), vec![320, 640, 960, 1440]);
        assert_eq!(variant_widths(1440), vec![320, 640, 960, 1440]);
        assert_eq!(variant_widths(1000), vec![320, 640, 960]);
        assert_eq!(variant_widths(639), vec![320]);
        assert_eq!(variant_widths(320), vec![320]);
        assert_eq!(variant_widths(200), vec![200]);
        assert_eq!(variant_widths(1), vec![1]);
        assert!(variant_widths(0).is_empty());
    }

    #[test]
    fn heights_keep_the_aspect_ratio() {
        assert_eq!(scaled_height(1200, 800, 640), 427);
        assert_eq!(scaled_height(1000, 1, 320), 1);
        assert_eq!(scaled_height(300, 600, 300), 600);
    }

    #[test]
    fn dimension_limits() {
        assert!(check_dimensions("body", 10_000, 4_000).is_ok());
        assert_eq!(check_dimensions("body", 10_001, 10).unwrap_err().code, "image_too_large");
        assert_eq!(check_dimensions("body", 8_000, 6_000).unwrap_err().code, "image_too_large");
        assert_eq!(check_dimensions("body", 0, 6).unwrap_err().code, "invalid_image");
    }

    #[test]
    fn formats_from_headers_and_bytes() {
        assert_eq!(SourceFormat::from_content_type("image/PNG; charset=binary"), Some(SourceFormat::Png));
        assert_eq!(SourceFormat::from_content_type("image/gif"), None);
        assert_eq!(SourceFormat::sniff(b"\xFF\xD8\xFF\xE0rest"), Some(SourceFormat::Jpeg));
        assert_eq!(SourceFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some(SourceFormat::Webp));
        assert_eq!(SourceFormat::sniff(b"GIF89a"), None);
    }

    #[test]
    fn file_names_are_parsed_strictly() {
        let name = variant_file_name(640, "0123456789abcdef", OutputFormat::Webp);
        assert_eq!(name, "640-0123456789abcdef.webp");
        assert_eq!(parse_variant_file_name(&name), Some((640, "0123456789abcdef", OutputFormat::Webp)));
        assert!(parse_variant_file_name("640-0123456789abcdef.jpg").is_some());
        for bad in [
            "../640-0123456789abcdef.jpg",
            "640-0123456789abcdef.jpg.webp",
            "640-0123456789ABCDEF.jpg",
            "640-0123456789abcde.jpg",
            "0640-0123456789abcdef.jpg",
            "640-0123456789abcdef.png",
            "original.png",
            "640-0123456789abcdef",
            "",
        ] {
            assert_eq!(parse_variant_file_name(bad), None, "{bad}");
        }
    }
}
