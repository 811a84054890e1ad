//! Any stream into the artifact store, cut anywhere: the media probe
//! describes it the same whole or in chunks, and never panics.
#![no_main]
use c41_kit::media::{Probe, audio::Kind};
use libfuzzer_sys::fuzz_target;

fn describe(m: &c41_kit::media::Media) -> String {
    let audio: Vec<_> = [Kind::Wav, Kind::Flac, Kind::Mp3].into_iter().map(|k| format!("{:?}", m.audio(k))).collect();
    format!("{:?} {:?} {audio:?}", m.info(), m.movie().map(|mv| format!("{mv:?}")))
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else { return };
    let mut whole = Probe::new();
    whole.feed(bytes);
    let mut chunked = Probe::new();
    for chunk in bytes.chunks(usize::from(cut).max(1)) {
        chunked.feed(chunk);
    }
    assert_eq!(describe(&whole.finish()), describe(&chunked.finish()));
});
