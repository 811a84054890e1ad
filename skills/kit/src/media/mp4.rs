//! Just enough ISO-BMFF (MP4/MOV) reading to describe a movie while it
//! streams into the artifact store: the top-level boxes are walked as bytes
//! pass, only `moov` (a few kilobytes of tables, wherever it sits: muxers
//! without `faststart` put it last) is kept, and its tracks give codecs,
//! frame counts, sizes and lengths. `mdat` is skipped, never buffered.
//!
//! [`Scanner::finish`] also says why a stream is *not* a usable MP4 (not
//! boxes at all, empty, truncated, no `moov`), so a skill can refuse an HTML
//! error page that came back with a 200 before it becomes an artifact.

/// Largest `moov` kept; larger ones (hours of video) are not described.
const MAX_MOOV: u64 = 16 << 20;

/// Walks top-level boxes of a stream fed in arbitrary chunks.
#[derive(Debug, Default)]
pub struct Scanner {
    /// Bytes of the current box header read so far.
    head: Vec<u8>,
    /// Bytes of the current box's body still to pass.
    remaining: u64,
    /// The current box runs to the end of the stream (size 0).
    to_end: bool,
    /// Collecting the current box's body (it is `moov`).
    collecting: Option<Vec<u8>>,
    /// The first box's type.
    first: Option<[u8; 4]>,
    /// The complete `moov` body, once seen.
    moov: Option<Vec<u8>>,
    /// The stream stopped making sense as boxes (why).
    broken: Option<String>,
}

impl Scanner {
    /// A scanner at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pass the next bytes of the stream.
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.broken.is_none() {
            if self.to_end {
                if let Some(buf) = &mut self.collecting {
                    if (buf.len() + data.len()) as u64 <= MAX_MOOV {
                        buf.extend_from_slice(data);
                    } else {
                        self.collecting = None;
                    }
                }
                return;
            }
            if self.remaining > 0 {
                let n = self.remaining.min(data.len() as u64) as usize;
                if let Some(buf) = &mut self.collecting {
                    buf.extend_from_slice(&data[..n]);
                }
                self.remaining -= n as u64;
                data = &data[n..];
                if self.remaining == 0 {
                    self.finish_box();
                }
                continue;
            }
            // Reading a header: 8 bytes, or 16 when the size is 64-bit.
            let want = if self.head.len() >= 4 && self.head[..4] == [0, 0, 0, 1] { 16 } else { 8 };
            let n = (want - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.head.len() == 8 && self.head[..4] == [0, 0, 0, 1] {
                continue; // now wants 16
            }
            if self.head.len() == want {
                self.start_box();
            }
        }
    }

    /// How many of the next bytes need not be fed: the rest of a box body
    /// that is not kept, everything once the stream is not boxes or its
    /// last box runs to the end uncollected; 0 when the next bytes matter.
    pub fn skippable(&self) -> u64 {
        if self.broken.is_some() || (self.to_end && self.collecting.is_none()) {
            u64::MAX
        } else if self.collecting.is_none() {
            self.remaining
        } else {
            0
        }
    }

    /// The next `n` bytes (at most [`skippable`](Self::skippable)) went by.
    pub fn skip(&mut self, n: u64) {
        if self.broken.is_some() || self.to_end || n == 0 {
            return;
        }
        debug_assert!(n <= self.remaining && self.collecting.is_none(), "skipped bytes the scanner needs");
        self.remaining -= n.min(self.remaining);
        if self.remaining == 0 {
            self.finish_box();
        }
    }

    fn start_box(&mut self) {
        let head = std::mem::take(&mut self.head);
        let kind: [u8; 4] = head[4..8].try_into().unwrap();
        if self.first.is_none() {
            self.first = Some(kind);
        }
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            self.broken = Some(format!("bytes {:02x?} are not a box type", kind));
            return;
        }
        let size = match u32::from_be_bytes(head[..4].try_into().unwrap()) {
            0 => None,
            1 => Some(u64::from_be_bytes(head[8..16].try_into().unwrap())),
            s => Some(u64::from(s)),
        };
        let body = match size {
            None => {
                self.to_end = true;
                None
            }
            Some(s) if s < head.len() as u64 => {
                self.broken = Some(format!("box `{}` claims {s} bytes", String::from_utf8_lossy(&kind)));
                return;
            }
            Some(s) => Some(s - head.len() as u64),
        };
        if &kind == b"moov" && self.moov.is_none() && body.is_none_or(|b| b <= MAX_MOOV) {
            self.collecting = Some(Vec::with_capacity(body.unwrap_or(0) as usize));
        }
        if let Some(b) = body {
            self.remaining = b;
            if b == 0 {
                self.finish_box();
            }
        }
    }

    fn finish_box(&mut self) {
        if let Some(buf) = self.collecting.take() {
            self.moov = Some(buf);
        }
    }

    /// What the stream turned out to be, once it ended. An error says why
    /// it is not a usable MP4.
    pub fn finish(mut self) -> Result<Movie, String> {
        if self.to_end {
            self.finish_box();
        }
        if let Some(why) = self.broken {
            return Err(format!("not an MP4 file: {why}"));
        }
        match self.first {
            None => return Err("the reply was empty".into()),
            Some(k) if &k != b"ftyp" => {
                return Err(format!("not an MP4 file (it starts with `{}`, not `ftyp`)", String::from_utf8_lossy(&k)));
            }
            _ => {}
        }
        if self.remaining > 0 || !self.head.is_empty() {
            return Err("the MP4 file is truncated".into());
        }
        let moov = self.moov.ok_or("the MP4 file has no `moov` box (it cannot be played)")?;
        Ok(Movie::parse(&moov))
    }
}

/// One track of the movie.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Track {
    /// Handler: `vide`, `soun`, ...
    pub handler: String,
    /// Sample entry: `avc1`, `hvc1`, `mp4a`, ...
    pub codec: String,
    /// Display width and height (video tracks), from `tkhd`.
    pub width: u32,
    /// Display height.
    pub height: u32,
    /// Samples (frames for video), from `stsz`; 0 for fragmented files.
    pub samples: u64,
    /// Media duration in seconds, from `mdhd`.
    pub seconds: f64,
    /// Media timescale (units per second) from `mdhd`; for an audio track,
    /// its sample rate.
    pub timescale: u32,
    /// Channels, from an audio sample entry (0 otherwise).
    pub channels: u16,
    /// Sample rate, from an audio sample entry (0 otherwise).
    pub sample_rate: u32,
}

impl Track {
    /// Frames per second of a video track (samples over seconds), when both
    /// are known.
    pub fn fps(&self) -> Option<f64> {
        (self.samples > 0 && self.seconds > 0.0).then(|| self.samples as f64 / self.seconds)
    }
}

/// What an MP4's `moov` says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Movie {
    /// The movie's length in seconds (`mvhd`: its longest track), when the
    /// header has a usable one.
    pub seconds: Option<f64>,
    /// Tracks in file order.
    pub tracks: Vec<Track>,
}

impl Movie {
    /// Reads a complete `moov` body.
    pub fn parse(moov: &[u8]) -> Movie {
        let seconds = child(moov, b"mvhd").and_then(|mvhd| {
            let (scale, duration) = timing(mvhd)?;
            (scale > 0).then(|| duration as f64 / f64::from(scale))
        });
        let tracks = children(moov).filter(|(k, _)| k == b"trak").map(|(_, t)| track(t)).collect();
        Movie { seconds, tracks }
    }

    /// The first video track.
    pub fn video(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.handler == "vide")
    }

    /// The first audio track.
    pub fn audio(&self) -> Option<&Track> {
        self.tracks.iter().find(|t| t.handler == "soun")
    }
}

/// The child boxes of a box body: (type, body). Stops at the first box that
/// does not fit.
fn children(mut body: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if body.len() < 8 {
            return None;
        }
        let kind: [u8; 4] = body[4..8].try_into().unwrap();
        let (size, head) = match u32::from_be_bytes(body[..4].try_into().unwrap()) {
            0 => (body.len() as u64, 8),
            1 if body.len() >= 16 => (u64::from_be_bytes(body[8..16].try_into().unwrap()), 16),
            s => (u64::from(s), 8),
        };
        if size < head as u64 || size > body.len() as u64 {
            return None;
        }
        let (this, rest) = body.split_at(size as usize);
        body = rest;
        Some((kind, &this[head..]))
    })
}

fn child<'a>(body: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(body).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn path<'a>(mut body: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    for k in kinds {
        body = child(body, k)?;
    }
    Some(body)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4).map(|s| u32::from_be_bytes(s.try_into().unwrap()))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8).map(|s| u64::from_be_bytes(s.try_into().unwrap()))
}

fn fourcc(b: &[u8], at: usize) -> String {
    b.get(at..at + 4).map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default()
}

/// (timescale, duration) of an `mvhd` or `mdhd` body, version 0 or 1.
fn timing(b: &[u8]) -> Option<(u32, u64)> {
    if b.first() == Some(&1) {
        Some((be32(b, 20)?, be64(b, 24)?))
    } else {
        Some((be32(b, 12)?, u64::from(be32(b, 16)?)))
    }
}

fn track(trak: &[u8]) -> Track {
    let mut t = Track::default();
    if let Some(tkhd) = child(trak, b"tkhd")
        && tkhd.len() >= 8
    {
        // Width and height (16.16 fixed point) end the box in both versions.
        let n = tkhd.len();
        t.width = be32(tkhd, n - 8).unwrap_or(0) >> 16;
        t.height = be32(tkhd, n - 4).unwrap_or(0) >> 16;
    }
    let Some(mdia) = child(trak, b"mdia") else { return t };
    if let Some((s, d)) = child(mdia, b"mdhd").and_then(timing)
        && s > 0
    {
        t.timescale = s;
        t.seconds = d as f64 / f64::from(s);
    }
    if let Some(hdlr) = child(mdia, b"hdlr") {
        t.handler = fourcc(hdlr, 8);
    }
    if let Some(stbl) = path(mdia, &[b"minf", b"stbl"]) {
        if let Some(stsd) = child(stbl, b"stsd") {
            t.codec = fourcc(stsd, 12);
            // An audio sample entry (after its 8-byte box header): channels
            // at 16, sample rate (16.16) at 24.
            if t.handler == "soun" {
                let entry = stsd.get(16..).unwrap_or_default();
                t.channels = entry.get(16..18).map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
                t.sample_rate = be32(entry, 24).unwrap_or(0) >> 16;
            }
        }
        if let Some(stsz) = child(stbl, b"stsz") {
            t.samples = be32(stsz, 8).map_or(0, u64::from);
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((8 + body.len()) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    fn trak(handler: &[u8; 4], codec: &[u8; 4], size: (u32, u32), scale: u32, duration: u32, samples: u32) -> Vec<u8> {
        let mut tkhd = vec![0u8; 76];
        tkhd.extend_from_slice(&(size.0 << 16).to_be_bytes());
        tkhd.extend_from_slice(&(size.1 << 16).to_be_bytes());
        let mut mdhd = vec![0u8; 12];
        mdhd.extend_from_slice(&scale.to_be_bytes());
        mdhd.extend_from_slice(&duration.to_be_bytes());
        mdhd.extend_from_slice(&[0; 4]);
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0; 13]);
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(bx(codec, &[0; 16]));
        let mut stsz = vec![0u8; 8];
        stsz.extend_from_slice(&samples.to_be_bytes());
        let stbl = bx(b"stbl", &cat(&[bx(b"stsd", &stsd), bx(b"stsz", &stsz)]));
        let mdia = bx(b"mdia", &cat(&[bx(b"mdhd", &mdhd), bx(b"hdlr", &hdlr), bx(b"minf", &stbl)]));
        bx(b"trak", &cat(&[bx(b"tkhd", &tkhd), mdia]))
    }

    /// A small MP4 like the simulator's: ftyp, mdat, then moov.
    fn sample_mp4() -> Vec<u8> {
        let moov = bx(
            b"moov",
            &cat(&[
                bx(b"mvhd", &[0; 100]),
                trak(b"vide", b"avc1", (64, 48), 12_800, 12_800, 25),
                trak(b"soun", b"mp4a", (0, 0), 48_000, 50_048, 49),
            ]),
        );
        cat(&[bx(b"ftyp", b"isom\0\0\x02\0isomavc1"), bx(b"mdat", &[7; 3000]), moov])
    }

    fn scan(bytes: &[u8], chunk: usize) -> Result<Movie, String> {
        let mut s = Scanner::new();
        for c in bytes.chunks(chunk) {
            s.feed(c);
        }
        s.finish()
    }

    #[test]
    fn describes_the_tracks_whatever_the_chunking() {
        let mp4 = sample_mp4();
        for chunk in [1, 3, 7, 64, 1000, mp4.len()] {
            let m = scan(&mp4, chunk).unwrap();
            let v = m.video().unwrap();
            assert_eq!((v.codec.as_str(), v.width, v.height, v.samples), ("avc1", 64, 48, 25), "chunk {chunk}");
            assert!((v.seconds - 1.0).abs() < 1e-9);
            let a = m.audio().unwrap();
            assert_eq!((a.codec.as_str(), a.samples), ("mp4a", 49));
            assert!((a.seconds - 50_048.0 / 48_000.0).abs() < 1e-9);
        }
    }

    /// Fed as `copy_body` feeds it: what the scanner may skip goes by
    /// unseen, the rest in `chunk`s; returns the result and the bytes seen.
    fn scan_skipping(bytes: &[u8], chunk: usize) -> (Result<Movie, String>, usize) {
        let (mut s, mut at, mut seen) = (Scanner::new(), 0, 0);
        while at < bytes.len() {
            let skip = s.skippable().min((bytes.len() - at) as u64) as usize;
            if skip > 0 {
                s.skip(skip as u64);
                at += skip;
            } else {
                let n = chunk.min(bytes.len() - at);
                s.feed(&bytes[at..at + n]);
                (at, seen) = (at + n, seen + n);
            }
        }
        (s.finish(), seen)
    }

    #[test]
    fn skipping_what_it_may_skip_changes_nothing_and_spares_the_mdat() {
        let mp4 = sample_mp4();
        for chunk in [1, 3, 8, 64, 1000] {
            let (m, seen) = scan_skipping(&mp4, chunk);
            assert_eq!(m, scan(&mp4, chunk), "chunk {chunk}");
            assert!(seen < mp4.len() - 3000 + chunk, "chunk {chunk}: saw {seen} of {} bytes", mp4.len());
        }
        let truncated = &mp4[..mp4.len() - 10];
        assert_eq!(scan_skipping(truncated, 8).0, scan(truncated, 8));
        let html = b"<html><body>Bad gateway</body></html>";
        assert_eq!(scan_skipping(html, 4).0, scan(html, 4));
    }

    #[test]
    fn reads_64_bit_sizes_and_moov_first() {
        let mut big = 1u32.to_be_bytes().to_vec();
        big.extend_from_slice(b"mdat");
        big.extend_from_slice(&(16u64 + 5).to_be_bytes());
        big.extend_from_slice(&[1; 5]);
        let mp4 = sample_mp4();
        let ftyp_len = 8 + 16;
        let moov_at = ftyp_len + 8 + 3000;
        let bytes = cat(&[mp4[..ftyp_len].to_vec(), mp4[moov_at..].to_vec(), big]);
        let m = scan(&bytes, 5).unwrap();
        assert_eq!(m.video().unwrap().samples, 25);
    }

    #[test]
    fn refuses_what_is_not_an_mp4() {
        let err = scan(br#"{"detail":"oops"}"#, 4).unwrap_err();
        assert!(err.contains("not an MP4") || err.contains("not a box"), "{err}");
        let err = scan(b"<html><body>Bad gateway</body></html>", 100).unwrap_err();
        assert!(err.contains("not an MP4"), "{err}");
        assert_eq!(scan(b"", 1).unwrap_err(), "the reply was empty");
        let mp4 = sample_mp4();
        assert!(scan(&mp4[..mp4.len() - 10], 64).unwrap_err().contains("truncated"));
        let no_moov = cat(&[bx(b"ftyp", b"isom"), bx(b"mdat", &[0; 10])]);
        assert!(scan(&no_moov, 3).unwrap_err().contains("moov"));
    }
}
