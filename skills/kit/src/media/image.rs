//! A picture's size from its first bytes (PNG's `IHDR`, JPEG's start-of-frame
//! marker, WebP's VP8/VP8L/VP8X header), without decoding it: what a skill
//! needs to keep a portrait's aspect when it asks a server for a size.

/// Width and height of a PNG, JPEG or WebP whose first bytes are `head`
/// (a JPEG's frame header follows its metadata: pass the first 1 MiB).
pub fn size(head: &[u8]) -> Option<(u32, u32)> {
    let be32 = |b: &[u8], at: usize| b.get(at..at + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
    let le16 = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u32::from(u16::from_le_bytes([s[0], s[1]])));
    let le24 = |b: &[u8], at: usize| b.get(at..at + 3).map(|s| u32::from_le_bytes([s[0], s[1], s[2], 0]));
    let nonzero = |w: u32, h: u32| (w > 0 && h > 0).then_some((w, h));
    if head.starts_with(b"\x89PNG\r\n\x1a\n") && head.get(12..16) == Some(b"IHDR") {
        return nonzero(be32(head, 16)?, be32(head, 20)?);
    }
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return match head.get(12..16)? {
            b"VP8 " => nonzero(le16(head, 26)? & 0x3fff, le16(head, 28)? & 0x3fff),
            b"VP8L" => {
                let b = be32(head, 21).map(u32::swap_bytes)?;
                nonzero((b & 0x3fff) + 1, ((b >> 14) & 0x3fff) + 1)
            }
            b"VP8X" => nonzero(le24(head, 24)? + 1, le24(head, 27)? + 1),
            _ => None,
        };
    }
    if head.starts_with(&[0xff, 0xd8]) {
        let mut at = 2;
        while at + 4 <= head.len() {
            if head[at] != 0xff {
                return None;
            }
            let marker = head[at + 1];
            if marker == 0xff {
                at += 1;
                continue;
            }
            let len = usize::from(u16::from_be_bytes([head[at + 2], head[at + 3]]));
            // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
            if (0xc0..=0xcf).contains(&marker) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
                let h = u32::from(u16::from_be_bytes([*head.get(at + 5)?, *head.get(at + 6)?]));
                let w = u32::from(u16::from_be_bytes([*head.get(at + 7)?, *head.get(at + 8)?]));
                return nonzero(w, h);
            }
            at += 2 + len;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn png_jpeg_and_webp_sizes_are_read_from_their_headers() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&720u32.to_be_bytes());
        png.extend_from_slice(&1280u32.to_be_bytes());
        assert_eq!(size(&png), Some((720, 1280)));

        // SOI, an APP0 of 16 bytes, then SOF2 (progressive): 1080 high, 1920 wide.
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe0, 0, 16];
        jpeg.extend_from_slice(&[0; 14]);
        jpeg.extend_from_slice(&[0xff, 0xc2, 0, 17, 8, 0x04, 0x38, 0x07, 0x80]);
        assert_eq!(size(&jpeg), Some((1920, 1080)));
        // A DHT segment before the frame is skipped, not taken for one.
        let mut with_dht = vec![0xff, 0xd8, 0xff, 0xc4, 0, 4, 0, 0];
        with_dht.extend_from_slice(&jpeg[2..]);
        assert_eq!(size(&with_dht), Some((1920, 1080)));

        let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X\x0a\0\0\0\0\0\0\0".to_vec();
        vp8x.extend_from_slice(&[0xff, 0x02, 0x00, 0x3f, 0x01, 0x00]); // 768 x 320
        assert_eq!(size(&vp8x), Some((768, 320)));

        assert_eq!(size(b"GIF89a"), None);
        assert_eq!(size(&jpeg[..10]), None, "cut before the frame header");
    }
}
