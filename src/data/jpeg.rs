//! Structural completeness check for JPEG files.
//!
//! The `image` crate decodes JPEGs leniently: a file cut off mid-scan decodes
//! "successfully" with the missing part grey. A truncated photograph must be
//! skipped and listed instead, so before decoding, the marker structure is
//! walked from SOI to EOI; running off the end means the file is truncated.
//! Data after EOI (camera trailers, motion-photo video) is allowed.

/// Whether `bytes` starts like a JPEG (SOI followed by a marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.len() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF
}

/// `Ok` when the JPEG in `bytes` reaches its end-of-image marker.
pub fn check_complete(bytes: &[u8]) -> Result<(), String> {
    let len = bytes.len();
    let truncated = |at: usize| {
        Err(format!(
            "truncated JPEG: the data ends at byte {len} before the end-of-image marker (last segment at byte {at})"
        ))
    };
    if !is_jpeg(bytes) {
        return Err("not a JPEG (no start-of-image marker)".into());
    }
    let mut pos = 2;
    loop {
        // Next marker: skip anything up to 0xFF, then fill bytes.
        while pos < len && bytes[pos] != 0xFF {
            pos += 1;
        }
        while pos < len && bytes[pos] == 0xFF {
            pos += 1;
        }
        if pos >= len {
            return truncated(pos.min(len));
        }
        let marker = bytes[pos];
        let segment = pos - 1;
        pos += 1;
        match marker {
            0xD9 => return Ok(()),
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        if pos + 2 > len {
            return truncated(segment);
        }
        let length = u16::from_be_bytes([bytes[pos], bytes[pos + 1]]) as usize;
        if length < 2 {
            return Err(format!(
                "corrupt JPEG: segment at byte {segment} has length {length}"
            ));
        }
        pos += length;
        if pos > len {
            return truncated(segment);
        }
        if marker == 0xDA {
            // Entropy-coded data runs to the next marker that is neither a
            // stuffed 0xFF00 nor a restart marker.
            loop {
                if pos + 1 >= len {
                    return truncated(segment);
                }
                if bytes[pos] == 0xFF {
                    let next = bytes[pos + 1];
                    if next != 0x00 && !(0xD0..=0xD7).contains(&next) {
                        break;
                    }
                    pos += 2;
                } else {
                    pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_jpeg() -> Vec<u8> {
        let img =
            image::RgbImage::from_fn(32, 24, |x, y| image::Rgb([x as u8 * 8, y as u8 * 10, 90]));
        let mut out = std::io::Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut out, image::ImageFormat::Jpeg)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn complete_jpeg_passes_and_trailers_are_allowed() {
        let mut b = tiny_jpeg();
        assert_eq!(check_complete(&b), Ok(()));
        b.extend_from_slice(b"trailing camera data");
        assert_eq!(check_complete(&b), Ok(()));
    }

    #[test]
    fn every_truncation_is_detected() {
        let b = tiny_jpeg();
        for cut in 3..b.len() - 1 {
            assert!(check_complete(&b[..cut]).is_err(), "cut at {cut} accepted");
        }
    }
}
