//! A graceful stop: SIGTERM (a service manager, `kill`) or SIGHUP (the
//! terminal closed) while skills run. The runs of this process are recorded
//! as *interrupted* (so `c41 runs` says so at once and `c41 resume` picks
//! them up; a ComfyUI job already submitted is left running on the server
//! to be followed), the unfinished artifact files this process was writing
//! are removed, and the process exits with 128 + the signal number, as a
//! shell would report it. Ctrl-C (SIGINT) stays a *cancel* ([`super::run`]).

use crate::app::App;

/// What the journal records as the reason.
fn why(signal: &str) -> String {
    format!("c41 was stopped by {signal} before the run ended; `c41 resume` continues it")
}

/// Stop gracefully on SIGTERM or SIGHUP for as long as `app`'s process
/// runs.
pub(super) fn on_signals(app: &App) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut hup)) = (signal(SignalKind::terminate()), signal(SignalKind::hangup())) else {
            tracing::warn!("cannot listen for SIGTERM/SIGHUP: a stop will leave runs to be found as interrupted later");
            return;
        };
        let runs = app.runs.clone();
        let config = app.config.clone();
        tokio::spawn(async move {
            let (name, code) = tokio::select! {
                _ = term.recv() => ("SIGTERM", 128 + libc::SIGTERM),
                _ = hup.recv() => ("SIGHUP", 128 + libc::SIGHUP),
            };
            let stop = move || {
                let interrupted = runs.map(|log| log.interrupt_own(&why(name))).unwrap_or_default();
                let me = std::process::id();
                crate::app::sweep_partials(&config, |pid| pid != me && crate::runs::process_alive(pid));
                interrupted
            };
            let interrupted = tokio::task::spawn_blocking(stop).await.unwrap_or_default();
            for run in &interrupted {
                let short = &run.id[..8.min(run.id.len())];
                eprintln!(
                    "\nc41: stopped by {name}; run {short} ({}) is interrupted: `c41 resume {short}` continues it",
                    run.skill
                );
            }
            std::process::exit(code);
        });
    }
}
