//! The `steward` binary: parses the command line and hands each command to its module.
//! Everything it does lives in the library crates; this is wiring.

/// Writes a line to stderr, ignoring failures: a closed terminal or pipe must not bring down a
/// platform or a runner (`eprintln!` panics when stderr is gone).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod api;
mod cli;
mod commands;
mod dirlock;
mod dirs;
mod output;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    if !cli.command.is_service() {
        // Short-lived commands end quietly when their output is cut (`steward runs | head`),
        // like other Unix tools, instead of panicking on a broken pipe.
        // SAFETY: no other thread exists yet, and SIG_DFL is a valid disposition.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    // Two TLS providers are linked (aws-lc-rs and ring through dependencies); pick one before
    // any client or server is built.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            say!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(commands::dispatch(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            say!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
