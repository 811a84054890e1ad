//! The `c41` command. Parsing and the exit code live here; each subcommand
//! is a file in `cli/`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    reset_sigpipe();
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
