//! The command line: `rawkvm run | list | bench | help`.

mod abi;
mod args;
// The benchmarks run the embedded guests, which are x86 real-mode code.
#[cfg(target_arch = "x86_64")]
mod bench;
mod caps;
mod console_out;
#[cfg(target_arch = "x86_64")]
mod cpuid;
mod debug_flags;
mod help;
#[cfg(target_arch = "x86_64")]
mod msrs;
mod repeat;
#[cfg(target_arch = "x86_64")]
mod resume;
mod run;
mod signals;
mod snapshot;
#[cfg(target_arch = "x86_64")]
mod snapshot_info;
mod status;
mod trace_file;
mod trace_flags;

use std::ffi::OsString;
use std::io::Write;

use rawkvm::error::Error;

use rawkvm::machine::guests;
use status::CliError;

use args::{Arg, Args};

/// Runs the command line and returns the process exit status.
pub fn main(raw: Vec<OsString>) -> i32 {
    match dispatch(raw) {
        Ok(code) => code,
        Err(error) => status::report(&error),
    }
}

fn dispatch(raw: Vec<OsString>) -> Result<i32, CliError> {
    let mut args = Args::new(raw).map_err(CliError::Usage)?;
    let command = match args.next_arg() {
        None => return Err(CliError::Usage("no command given".into())),
        Some(Arg::Positional(command)) => command,
        Some(Arg::Flag(flag, _)) => match flag.as_str() {
            "--help" | "-h" => return print_out(&help::general()),
            "--version" | "-V" => {
                if let Some(extra) = args.next_arg() {
                    return Err(unexpected(&flag, extra));
                }
                return print_out(&format!("rawkvm {}\n", env!("CARGO_PKG_VERSION")));
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "unknown option {flag}; expected a command"
                )));
            }
        },
    };
    // `rawkvm run --help`, `rawkvm bench suite -h`: that command's usage, whatever else is
    // on the line.
    if args.asks_for_help() {
        return print_out(&help::for_command(&command).unwrap_or_else(help::general));
    }
    match command.as_str() {
        "run" => run::command(args),
        #[cfg(target_arch = "x86_64")]
        "resume" => resume::command(args),
        #[cfg(target_arch = "x86_64")]
        "snapshot-info" => snapshot_info::command(args),
        "list" => list(args),
        #[cfg(target_arch = "x86_64")]
        "bench" => bench::command(args),
        #[cfg(not(target_arch = "x86_64"))]
        "bench" => Err(CliError::Usage(format!(
            "bench runs the embedded x86 guests; there are none for {}",
            rawkvm::bindings::HOST_ARCH
        ))),
        "abi" => abi::command(args),
        "caps" => caps::command(args),
        #[cfg(target_arch = "x86_64")]
        "cpuid" => cpuid::command(args),
        #[cfg(target_arch = "x86_64")]
        "msrs" => msrs::command(args),
        #[cfg(not(target_arch = "x86_64"))]
        "cpuid" | "msrs" => Err(CliError::Usage(format!(
            "{command} shows x86 CPUID and MSRs; there are none on {}",
            rawkvm::bindings::HOST_ARCH
        ))),
        "help" => help_command(args),
        other => Err(CliError::Usage(format!(
            "unknown command {other:?}; commands are run, list, bench, abi, caps, cpuid, msrs and help"
        ))),
    }
}

/// `rawkvm help [COMMAND]`.
fn help_command(mut args: Args) -> Result<i32, CliError> {
    let text = match args.next_arg() {
        None => help::general(),
        Some(Arg::Positional(command)) => help::for_command(&command).ok_or_else(|| {
            CliError::Usage(format!("help: no command {command:?}; try rawkvm --help"))
        })?,
        Some(other) => return Err(unexpected("help", other)),
    };
    if let Some(extra) = args.next_arg() {
        return Err(unexpected("help", extra));
    }
    print_out(&text)
}

/// Writes rawkvm's own output (not the guest's) to stdout.
fn print_out(text: &str) -> Result<i32, CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(stdout_error)?;
    Ok(status::HALTED)
}

/// A failed write of rawkvm's own output to stdout (`EPIPE`: status 141, "stdout was
/// closed").
fn stdout_error(error: std::io::Error) -> CliError {
    CliError::Vmm(Error::Output {
        target: "stdout".to_string(),
        error,
    })
}

fn list(mut args: Args) -> Result<i32, CliError> {
    if let Some(extra) = args.next_arg() {
        return Err(unexpected("list", extra));
    }
    let width = guests::all()
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    for guest in guests::all() {
        text.push_str(&format!(
            "{:width$}  {:<9}  {}\n",
            guest.name,
            guest.mode(),
            guest.description
        ));
    }
    text.push('\n');
    text.push_str(CONVENTIONS);
    #[cfg(target_arch = "x86_64")]
    {
        text.push_str(
            "\nThe system area (0x90000..0xa0000, written by the host outside real mode) and the \
             device window:\n",
        );
        for (address, size, what) in rawkvm::arch::x86_64::layout::ROWS {
            text.push_str(&format!("  {address:#010x}  {size:#8x}  {what}\n"));
        }
    }
    print_out(&text)
}

/// The guest conventions of each CPU mode, printed by `rawkvm list` (and in the README).
const CONVENTIONS: &str = "\
Guest conventions (every mode): RAM at GPA 0 (1 MiB unless --mem), the image at 0x1000
(an ELF at its PT_LOAD addresses), the parameter block at 0x0F00, ESI = vCPU index (outside
real mode vCPU i's stack starts i * 16 KiB below the top of RAM); the
MMIO console at GPA 0xD000_0000 (each byte written goes to stdout) and the exit device
(32 bits to GPA 0xD000_0008, or a byte to port 0xF4: 0 ends with status 0, else 8).
  real       CS:IP 0000:1000, SS:SP 0000:0F00; console ports 0xE9 and COM1 0x3F8; hlt ends
  protected  32-bit flat (CS 0x08, data 0x10), no paging, EIP 0x1000, ESP top of RAM; ports
             work; no IDT: an exception is a triple fault (status 6); hlt ends
  paged      protected with 32-bit paging (4 MiB pages, identity); refused on kvm_pvm
  long       64-bit CPL 0 (CS 0x18), RAM identity-mapped, RIP 0x1000, RSP top of RAM; ports
             work; an exception ends the run with status 6 naming it; hlt ends
  user       64-bit CPL 3 (CS 0x33), user pages; in/out and hlt raise #GP, so: the MMIO
             console and the exit device; an exception ends the run with status 6 naming
             vector, error code, RIP and CR2
";

/// Rejects an unexpected word in a subcommand's arguments.
fn unexpected(command: &str, arg: Arg) -> CliError {
    match arg {
        Arg::Flag(flag, _) => CliError::Usage(format!("{command}: unknown option {flag}")),
        Arg::Positional(word) => {
            CliError::Usage(format!("{command}: unexpected argument {word:?}"))
        }
    }
}
