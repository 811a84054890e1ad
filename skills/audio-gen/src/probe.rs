//! Reads how long the result is while it streams to the artifact store,
//! without holding it: FLAC's STREAMINFO (the first 26 bytes) or an MP4's
//! `moov` box (the `mdat` payload is skipped, not buffered). With a video,
//! MMAudio cuts the clip to `seconds` but a shorter clip stays short, so
//! the length the agent is told must come from the file itself.

/// What the header says.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// Length in seconds (an MP4's movie duration: its longest track).
    pub seconds: f64,
    /// Sample rate of the audio, when the header says it.
    pub sample_rate: Option<u32>,
    /// For an MP4: whether it has a sound track. `None` for audio files.
    pub has_audio_track: Option<bool>,
}

enum State {
    /// Waiting for the first bytes to tell the format.
    Sniff,
    /// A FLAC stream: waiting for the STREAMINFO bytes.
    Flac,
    /// Between MP4 boxes: waiting for a box header.
    BoxHeader,
    /// Inside a box that is skipped: bytes still to skip.
    Skip(u64),
    /// Inside `moov`: what was read, bytes still to read.
    Moov(Vec<u8>, u64),
    /// Finished (found it, or gave up).
    Done,
}

/// A streaming probe: [`feed`](Probe::feed) it every chunk, then read
/// [`info`](Probe::info).
pub struct Probe {
    state: State,
    pending: Vec<u8>,
    info: Option<Info>,
}

impl Default for Probe {
    fn default() -> Self {
        Self::new()
    }
}

/// The largest `moov` the probe reads (a 30 s clip's is a few KiB).
const MAX_MOOV: u64 = 16 << 20;

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The child boxes of a box body: (type, body).
fn children(mut b: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 8 {
        let size = be_u32(b, 0).unwrap_or(0) as u64;
        let kind: [u8; 4] = b[4..8].try_into().unwrap_or_default();
        let (header, size) = match size {
            0 => (8, b.len() as u64),
            1 => match be_u64(b, 8) {
                Some(s) => (16, s),
                None => break,
            },
            s => (8, s),
        };
        if size < header || size > b.len() as u64 {
            break;
        }
        out.push((kind, &b[header as usize..size as usize]));
        b = &b[size as usize..];
    }
    out
}

fn child<'a>(b: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(b).into_iter().find(|(k, _)| k == kind).map(|(_, body)| body)
}

/// Duration from `mvhd`, and whether a `trak` has a sound handler.
fn parse_moov(moov: &[u8]) -> Option<Info> {
    let mvhd = child(moov, b"mvhd")?;
    let (timescale, duration) = match mvhd.first()? {
        1 => (be_u32(mvhd, 20)?, be_u64(mvhd, 24)?),
        _ => (be_u32(mvhd, 12)?, u64::from(be_u32(mvhd, 16)?)),
    };
    if timescale == 0 {
        return None;
    }
    let mut audio_rate = None;
    let mut has_audio = false;
    for (kind, trak) in children(moov) {
        if &kind != b"trak" {
            continue;
        }
        let Some(mdia) = child(trak, b"mdia") else { continue };
        let handler = child(mdia, b"hdlr").and_then(|h| h.get(8..12));
        if handler == Some(b"soun") {
            has_audio = true;
            // An audio track's media timescale is its sample rate.
            audio_rate = child(mdia, b"mdhd").and_then(|m| match m.first()? {
                1 => be_u32(m, 20),
                _ => be_u32(m, 12),
            });
        }
    }
    Some(Info { seconds: duration as f64 / f64::from(timescale), sample_rate: audio_rate, has_audio_track: Some(has_audio) })
}

/// STREAMINFO of a FLAC stream (`fLaC`, block header, then the block).
fn parse_flac(b: &[u8]) -> Option<Info> {
    if b.get(0..4)? != b"fLaC" || b.get(4)? & 0x7f != 0 {
        return None;
    }
    // Bytes 18..26: 20 bits rate, 3 channels-1, 5 bits-per-sample-1, 36 total samples.
    let packed = be_u64(b, 18)?;
    let rate = (packed >> 44) as u32;
    let total = packed & ((1 << 36) - 1);
    if rate == 0 || total == 0 {
        return None;
    }
    Some(Info { seconds: total as f64 / f64::from(rate), sample_rate: Some(rate), has_audio_track: None })
}

impl Probe {
    /// A probe that has seen nothing yet.
    pub fn new() -> Self {
        Probe { state: State::Sniff, pending: Vec::new(), info: None }
    }

    /// What was found (once the header has gone by).
    pub fn info(&self) -> Option<&Info> {
        self.info.as_ref()
    }

    /// The next chunk of the file.
    pub fn feed(&mut self, chunk: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.pending.extend_from_slice(chunk);
        let mut at = 0;
        loop {
            let avail = &self.pending[at..];
            match &mut self.state {
                State::Done => break,
                State::Sniff => {
                    if avail.len() < 8 {
                        break;
                    }
                    self.state = if &avail[0..4] == b"fLaC" {
                        State::Flac
                    } else if &avail[4..8] == b"ftyp" {
                        State::BoxHeader
                    } else {
                        State::Done
                    };
                }
                State::Flac => {
                    if avail.len() < 26 {
                        break;
                    }
                    self.info = parse_flac(avail);
                    self.state = State::Done;
                }
                State::BoxHeader => {
                    if avail.len() < 16 {
                        // Enough for any header, unless the file ends here.
                        break;
                    }
                    let size = u64::from(be_u32(avail, 0).unwrap_or(0));
                    let (header, size) = match size {
                        1 => (16, be_u64(avail, 8).unwrap_or(0)),
                        s => (8, s),
                    };
                    if size < header {
                        // 0 (runs to the end) or broken: nothing more to learn.
                        self.state = State::Done;
                        continue;
                    }
                    let body = size - header;
                    self.state = if &avail[4..8] == b"moov" {
                        if body > MAX_MOOV { State::Done } else { State::Moov(Vec::with_capacity(body as usize), body) }
                    } else {
                        State::Skip(body)
                    };
                    at += header as usize;
                }
                State::Skip(left) => {
                    let n = (*left).min(avail.len() as u64);
                    *left -= n;
                    at += n as usize;
                    if *left == 0 {
                        self.state = State::BoxHeader;
                    } else {
                        break;
                    }
                }
                State::Moov(buf, left) => {
                    let n = (*left).min(avail.len() as u64) as usize;
                    buf.extend_from_slice(&avail[..n]);
                    *left -= n as u64;
                    at += n;
                    if *left == 0 {
                        self.info = parse_moov(buf);
                        self.state = State::Done;
                    } else {
                        break;
                    }
                }
            }
        }
        if matches!(self.state, State::Done) {
            self.pending = Vec::new();
        } else {
            self.pending.drain(..at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full_box(kind: &[u8; 4], version: u8, rest: &[u8]) -> Vec<u8> {
        let mut body = vec![version, 0, 0, 0];
        body.extend_from_slice(rest);
        boxed(kind, &body)
    }

    fn header_v0(timescale: u32, duration: u32) -> Vec<u8> {
        let mut r = vec![0u8; 8]; // creation, modification
        r.extend_from_slice(&timescale.to_be_bytes());
        r.extend_from_slice(&duration.to_be_bytes());
        r
    }

    fn track(handler: &[u8; 4], timescale: u32, duration: u32) -> Vec<u8> {
        let mdhd = full_box(b"mdhd", 0, &header_v0(timescale, duration));
        let mut h = vec![0u8; 4];
        h.extend_from_slice(handler);
        h.extend_from_slice(&[0u8; 13]);
        let hdlr = full_box(b"hdlr", 0, &h);
        boxed(b"trak", &boxed(b"mdia", &[mdhd, hdlr].concat()))
    }

    /// ftyp, a large mdat, then moov (the layout of a muxer without faststart).
    fn mp4(with_audio: bool) -> Vec<u8> {
        let mut moov = full_box(b"mvhd", 0, &[header_v0(1000, 2046), vec![0u8; 80]].concat());
        moov.extend(track(b"vide", 10, 20));
        if with_audio {
            moov.extend(track(b"soun", 44_100, 90_227));
        }
        let mdat: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        [boxed(b"ftyp", b"isomiso2avc1mp41"), boxed(b"mdat", &mdat), boxed(b"moov", &moov)].concat()
    }

    fn flac(rate: u32, samples: u64) -> Vec<u8> {
        let mut b = b"fLaC".to_vec();
        b.extend_from_slice(&[0x80, 0, 0, 34]); // last block, STREAMINFO, 34 bytes
        b.extend_from_slice(&[0x10, 0, 0x10, 0, 0, 0, 0, 0, 0, 0]);
        let packed = (u64::from(rate) << 44) | (15 << 36) | samples; // mono: channels-1 = 0
        b.extend_from_slice(&packed.to_be_bytes());
        b.extend_from_slice(&[0u8; 16]); // md5
        b.extend_from_slice(&[0xff, 0xf8, 1, 2, 3]); // a frame's start
        b
    }

    fn probe_in_chunks(bytes: &[u8], chunk: usize) -> Option<Info> {
        let mut p = Probe::new();
        for c in bytes.chunks(chunk) {
            p.feed(c);
        }
        p.info().cloned()
    }

    #[test]
    fn reads_flac_streaminfo_whatever_the_chunking() {
        let b = flac(44_100, 88_200);
        for chunk in [1, 5, 26, 4096] {
            assert_eq!(
                probe_in_chunks(&b, chunk),
                Some(Info { seconds: 2.0, sample_rate: Some(44_100), has_audio_track: None }),
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn reads_mp4_moov_after_a_skipped_mdat() {
        let b = mp4(true);
        for chunk in [1, 7, 16, 65_536, b.len()] {
            let info = probe_in_chunks(&b, chunk).unwrap_or_else(|| panic!("chunks of {chunk}"));
            assert!((info.seconds - 2.046).abs() < 1e-9, "{info:?}");
            assert_eq!((info.sample_rate, info.has_audio_track), (Some(44_100), Some(true)));
        }
        let info = probe_in_chunks(&mp4(false), 4096).unwrap();
        assert_eq!((info.sample_rate, info.has_audio_track), (None, Some(false)));
    }

    #[test]
    fn other_or_truncated_files_give_nothing() {
        assert_eq!(probe_in_chunks(b"RIFF\0\0\0\0WAVEfmt ", 4), None);
        let b = mp4(true);
        assert_eq!(probe_in_chunks(&b[..b.len() - 10], 1000), None);
        assert_eq!(probe_in_chunks(&flac(44_100, 0), 100), None);
        assert_eq!(probe_in_chunks(b"", 1), None);
    }
}
