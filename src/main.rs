//! melxai binary: parse the command line, build the config, hand over to the library.

mod cli;

use clap::Parser;

fn main() {
    melxai::allocator::tune_for_tensors();
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
