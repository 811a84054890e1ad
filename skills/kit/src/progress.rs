//! Progress reports, previews and streamed text, shown live by the host.

use crate::bindings::c41::skill::progress as wit;

/// A progress report being built: `Progress::stage("sampling").step(3, 20).report()`.
#[derive(Debug, Clone)]
pub struct Progress(wit::Update);

impl Progress {
    /// Start a report for `stage`.
    pub fn stage(stage: &str) -> Self {
        Self(wit::Update { stage: stage.into(), fraction: None, step: None, message: None })
    }
    /// Overall completion, clamped to 0.0..=1.0.
    pub fn fraction(mut self, f: f32) -> Self {
        self.0.fraction = Some(f.clamp(0.0, 1.0));
        self
    }
    /// Step `n` of `m` within the stage.
    pub fn step(mut self, n: u32, m: u32) -> Self {
        self.0.step = Some((n, m));
        self
    }
    /// A sentence for people.
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.0.message = Some(m.into());
        self
    }
    /// Send it to the host.
    pub fn report(self) {
        wit::report(&self.0)
    }
}

/// Send a preview image (`image/jpeg` or `image/png`).
pub fn preview(mime: &str, bytes: &[u8]) {
    wit::preview(mime, bytes)
}

/// Send incremental text (LLM tokens) to the caller.
pub fn text_delta(delta: &str) {
    wit::text_delta(delta)
}

/// Tell the caller that the text streamed so far is void and starts over
/// (a model failed mid-reply and another answers), and why.
pub fn text_reset(reason: &str) {
    wit::text_reset(reason)
}
