//! `causeway watch`: load the probes, run the capture pipeline in this
//! process, and print each span as it completes.

use crate::capture::{install_signal_handlers, Capture, CaptureArgs};
use crate::output::{parse_protocol, Format, Printer};
use anyhow::Result;
use causeway_model::L7Protocol;
use clap::Args;

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    capture: CaptureArgs,
    /// Only this application protocol (http, redis, mysql, postgresql, ...).
    #[arg(long, value_parser = parse_protocol)]
    protocol: Option<L7Protocol>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(args: WatchArgs) -> Result<()> {
    let capture = Capture::start(&args.capture)?;
    install_signal_handlers();
    // Written out once per poll of the ring buffer, not per span: a write
    // syscall per line would cost the agent more than building the span.
    let mut out = Printer::new(args.format, args.protocol);
    eprintln!("causeway: watching; {}; Ctrl-C to stop", capture.coverage());
    let summary = capture.run(&mut out)?;
    eprintln!("causeway: {summary}");
    Ok(())
}
