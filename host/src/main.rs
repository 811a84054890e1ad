//! The `c41` command. Parsing and the exit code live here; each subcommand
//! is a file in `cli/`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    reset_sigpipe();
    raise_fd_limit();
    let cli = c41::cli::Cli::parse();
    cli.init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = e.source();
            let mut n = 0;
            while let Some(s) = source {
                if n == 0 {
                    eprintln!("\nCaused by:");
                }
                eprintln!("  {n}: {s}");
                n += 1;
                source = s.source();
            }
            ExitCode::from(2)
        }
    }
}

/// `c41 list | head` should end quietly, as every Unix tool does, instead of
/// panicking on a closed stdout.
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at start-up,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Raise the soft limit on open files to the hard limit: the per-call caps
/// (`limits.open-files`, `limits.connections`) keep one call from taking
/// them all, and the head-room keeps concurrent MCP calls and the run
/// journal working under load.
fn raise_fd_limit() {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit/setrlimit on a valid, owned struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                // macOS refuses more than OPEN_MAX for the soft limit.
                let target = if cfg!(target_os = "macos") { lim.rlim_max.min(10_240) } else { lim.rlim_max };
                let raised = libc::rlimit { rlim_cur: target.max(lim.rlim_cur), rlim_max: lim.rlim_max };
                libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
            }
        }
    }
}
