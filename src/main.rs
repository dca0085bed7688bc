//! The `rawkvm` command: runs the embedded real-mode guests, or a flat image, on `/dev/kvm`.

mod cli;

fn main() {
    let status = cli::main(std::env::args_os().skip(1).collect());
    std::process::exit(status);
}
