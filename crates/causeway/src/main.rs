//! `causeway`: the one binary. Today it has `watch`, the live terminal view
//! of every request on this host, and `replay`, the same for a capture file; the server-side subcommands join it as
//! they land (DESIGN.md, section 2).

mod duration;
mod output;
mod replay;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "causeway",
    version,
    about = "Zero-code observability for Linux services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print every request/response any process on this host handles, live.
    Watch(watch::WatchArgs),
    /// Read a pcap or pcapng capture through the same pipeline (observation point `network`).
    Replay(replay::ReplayArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Watch(args) => watch::run(args),
        Command::Replay(args) => replay::run(args),
    };
    if let Err(e) = result {
        eprintln!("causeway: {e:#}");
        std::process::exit(1);
    }
}
