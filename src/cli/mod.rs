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
#[cfg(target_arch = "x86_64")]
mod msrs;
mod repeat;
mod run;
mod signals;
mod status;
mod trace_file;
mod trace_flags;

use std::ffi::OsString;
use std::io::Write;

use rawkvm::error::Error;

use rawkvm::machine::guests;
use status::CliError;

use args::{Arg, Args};

const USAGE: &str = "\
rawkvm: a virtual machine monitor on raw /dev/kvm ioctls

Usage:
  rawkvm run [GUEST] [OPTIONS]          run an embedded guest (default: hello)
  rawkvm run --image PATH [OPTIONS]     run a flat binary or an ELF executable instead
  rawkvm list                           the embedded guests, their CPU modes, the guest
                                        conventions of each mode and the system area
  rawkvm bench WORKLOAD [--variant V] [--count N] [--kvm-device PATH] [TRACE OPTIONS]
                                        WORKLOAD: pio mmio start start-async restart console
                                        modes (--variant user|long|protected|real: the
                                        same loop per CPU mode) user (CPL3 vs CPL0 ratio)
                                        (trace options: pio and mmio, what watching costs)
  rawkvm bench restart [--guest NAME] ...
                                        restart another embedded guest (default hlt)
  rawkvm bench suite [--reps R] [--quick] [--no-baseline] [--workload W] [--markdown]
                                        every workload and variant, against a C baseline
                                        (--markdown: the table as Markdown)
  rawkvm abi [STRUCT|IOCTL...] [--json] [--arch ARCH]
                                        struct layouts and ioctl numbers of the KVM ABI
  rawkvm caps [--json] [--kvm-device PATH]
                                        API version, mmap size, backend, TSC rate, every
                                        KVM_CAP_*
  rawkvm cpuid [--json] [--kvm-device PATH]
                                        the supported CPUID table decoded (vendor, brand,
                                        feature bits by name) and what a guest gets of it
  rawkvm msrs [--json] [--kvm-device PATH]
                                        every MSR KVM handles, by name, with its value on a
                                        fresh vCPU; the feature MSRs
  rawkvm help | --help | --version

Run options:
  --image PATH        flat binary, or ELF32/ELF64 executable (PT_LOAD segments at their
                      physical addresses, .bss zeroed, entered at e_entry), instead of
                      an embedded guest
  --mode MODE         the CPU mode every vCPU starts in, set up by the host: real
                      (default), protected (32-bit flat, no paging), paged (32-bit
                      paging; refused on kvm_pvm), long (64-bit CPL 0, RAM
                      identity-mapped), user (64-bit CPL 3; exceptions end the run with
                      status 6 naming vector, error code, RIP, CR2); an ELF image picks
                      protected (ELF32) or long (ELF64), an embedded guest its own
  --mem SIZE          guest RAM at address 0 (default 1M; accepts 64K, 2M, 0x100000, 1048576)
  --load-addr ADDR    where the --image is loaded (default 0x1000; the embedded guests
                      are linked at 0x1000 and run only there)
  --entry SEG:OFF     real-mode entry point, hex (default 0000:1000)
  --entry ADDR        the entry in the other modes, hex (default the load address or
                      the ELF's e_entry); RSP starts at the top of RAM
  --param N           32-bit value written at 0x0F00 before the run (a loop count, ...)
  --kvm-device PATH   the KVM device (default /dev/kvm)
  --vcpus N           vCPUs, each on its own thread, vCPU i entered with ESI = i
                      (default 1, or the guest's own setup; at most KVM_CAP_MAX_VCPUS)
  --timeout DURATION  stop the guest if it has not halted after 500ms, 2s, 1m, ...
  --repeat N          run N times on one VM, restored in place between runs (dirty pages
                      copied back, registers reset); the output of every run is printed,
                      and the trace options watch all the runs
  --cpuid-vendor STR  leaf 0's vendor string, exactly 12 bytes (default: the host's); every
                      vCPU gets KVM_SET_CPUID2 with the supported table, its hypervisor leaf
                      0x40000000 saying \"rawkvmrawkvm\"
  --tsc-khz N         the guest TSC rate (KVM_SET_TSC_KHZ); refused with status 5 where the
                      host cannot honour it (without TSC scaling: any other rate)
  --no-coalesce       every console write exits (default: port 0xE9 is coalesced
                      when the kernel has KVM_CAP_COALESCED_PIO; --trace and --explain
                      imply --no-coalesce, since they show every exit)

Trace options (run, and bench pio|mmio, which then also reports the overhead ratio):
  --trace[=text|json] one line (or JSON object) per exit, with every payload field
  --trace-file PATH   write the trace there instead of stderr (a regular file, truncated;
                      a pipe with a reader or a terminal; never the --image)
  --explain           after each exit: the kvm_run fields read and written, with offsets,
                      and what the guest did
  --stats             at the end: exits, time in KVM_RUN and in rawkvm per reason, top
                      ports and MMIO addresses, and the kernel's own counters (all vCPUs
                      together; bench: of the last traced run)

The guest's console (port 0xE9, COM1 at 0x3F8, and the MMIO console at GPA
0xD000_0000..0xD000_0008) is written to stdout unchanged; a write to the exit device
(port 0xF4: a byte; GPA 0xD000_0008: 32 bits) ends the run with that code (0: status 0);
errors, the trace and the statistics go to stderr. When a run ends in a guest fault, the
last 32 exits (the flight recorder) are printed before the error. SIGINT, SIGTERM and
SIGHUP stop every vCPU, flush the console and exit with 128 + the signal number (a second
one exits at once, with the first one's status); a signal the parent ignored (nohup) stays
ignored. If stdout's reader goes away (`rawkvm run | head -c1`), the guest is stopped and the
status is 141; so it is if the trace's reader goes away, or rawkvm's own output (help,
lists, bench lines) cannot be written because its reader went away. A trace that cannot be
written stops the guest at once.

Exit status:
  0  the guest halted normally
  2  usage or configuration error (bad flag, bad size)
  3  KVM unavailable or unusable (missing, permission, not a KVM device, API version,
     capability, a CPU mode the backend cannot run)
  4  guest image error (missing, empty, too large, not a regular file, a bad ELF,
     overlapping the system area 0x90000..0xa0000)
  5  resource or setup failure (mmap, memory slot, vCPU creation, registers, threads),
     a failed KVM_RUN, or output that could not be written (other than EPIPE)
  6  guest fault (triple fault, failed entry, internal error, undecodable exit, a CPU
     exception in long or user mode)
  7  timeout: the guest was still running at the deadline
  8  the guest reported failure: it wrote a code other than 0 to the exit device
     (a byte to port 0xF4, or 32 bits to GPA 0xD000_0008)
  130, 143, 129  stopped by SIGINT, SIGTERM, SIGHUP (128 + the signal number)
  141  stdout's or the trace's reader went away (EPIPE; 128 + SIGPIPE)
";

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
            "--help" | "-h" => return print_out(USAGE),
            "--version" | "-V" => {
                return print_out(&format!("rawkvm {}\n", env!("CARGO_PKG_VERSION")));
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "unknown option {flag}; expected a command"
                )));
            }
        },
    };
    // `rawkvm run --help`, `rawkvm bench suite -h`: the usage, whatever else is on the line.
    if args.asks_for_help() {
        return print_out(USAGE);
    }
    match command.as_str() {
        "run" => run::command(args),
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
        "help" => print_out(USAGE),
        other => Err(CliError::Usage(format!(
            "unknown command {other:?}; commands are run, list, bench, abi, caps, cpuid, msrs and help"
        ))),
    }
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
