//! The `rights` command-line client.

fn main() {
    std::process::exit(rightsfs::cli::main());
}
