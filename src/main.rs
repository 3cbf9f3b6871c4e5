//! melxai binary: parse the command line, build the config, hand over to the library.

mod cli;

use clap::Parser;

fn main() {
    melxai::allocator::tune_for_tensors();
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::exit(2);
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text
/// the message already ends with (an I/O error named inside the path error
/// that carries it), so no reason is printed twice.
fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if text.ends_with(&s) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s);
    }
    text
}
