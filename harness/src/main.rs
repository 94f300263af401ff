//! The `mcproof` command line. Not yet functional: see the crate documentation.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "mcproof: the scanner is not built yet (known revisions: {}). \
         Run the reference server with `cargo run -p mcproof-server -- --help`.",
        mcproof::KNOWN_REVISIONS.join(", ")
    );
    ExitCode::from(2)
}
