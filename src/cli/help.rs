//! The help text: `rawkvm --help` (everything) and `rawkvm help CMD` / `rawkvm CMD --help`
//! (that command's usage lines and options).

/// The first line of every help.
const TITLE: &str = "rawkvm: a virtual machine monitor on raw /dev/kvm ioctls\n";

/// Each command's usage lines, in the order `--help` lists them.
const COMMANDS: &[(&str, &str)] = &[
    (
        "run",
        "  rawkvm run [GUEST] [OPTIONS]          run an embedded guest (default: hello)
",
    ),
    (
        "run",
        "  rawkvm run --image PATH [OPTIONS]     run a flat binary or an ELF executable instead
",
    ),
    (
        "list",
        "  rawkvm list                           the embedded guests, their CPU modes, the guest
                                        conventions of each mode and the system area
",
    ),
    (
        "bench",
        "  rawkvm bench WORKLOAD [--variant V] [--count N] [--kvm-device PATH] [TRACE OPTIONS]
                                        WORKLOAD: pio mmio start start-async restart console
                                        modes (--variant user|long|protected|real: the
                                        same loop per CPU mode) user (CPL3 vs CPL0 ratio)
                                        doorbell
                                        (trace options: pio and mmio, what watching costs)
",
    ),
    (
        "bench",
        "  rawkvm bench restart [--guest NAME] ...
                                        restart another embedded guest (default hlt);
                                        --variant full (what --repeat restores, the
                                        default), registers (--restart-scope registers)
                                        or ioctl (full, registers reset by ioctls)
",
    ),
    (
        "bench",
        "  rawkvm bench fork [--count N] [--mem SIZE] [--fill PERCENT] [--kvm-device PATH]
                                        time to the first instruction of N children forked
                                        from one snapshot (RAM copy-on-write) vs cold starts
                                        reaching the same RAM (PERCENT of its pages filled,
                                        default 0)
",
    ),
    (
        "bench",
        "  rawkvm bench snapshot [--mem SIZE]... [--fill PERCENT] [--reps N] [--kvm-device PATH]
                                        capture, save, file size, load, restore, verify, fork
                                        of a guest with PERCENT (default 50) of its pages
                                        filled, each vs a baseline moving the same bytes
                                        (default sizes 1M, 64M and 1G)
",
    ),
    (
        "bench",
        "  rawkvm bench suite [--reps R] [--quick] [--no-baseline] [--workload W] [--markdown]
                                        every workload and variant, against a C baseline
                                        (--markdown: the table as Markdown)
",
    ),
    (
        "abi",
        "  rawkvm abi [STRUCT|IOCTL...] [--json] [--arch ARCH]
                                        struct layouts and ioctl numbers of the KVM ABI
",
    ),
    (
        "resume",
        "  rawkvm resume PATH [--timeout D] [--no-coalesce] [--kvm-device PATH] [TRACE OPTIONS]
                                        continue a snapshot's guest in a new VM (x86-64)
",
    ),
    (
        "snapshot-info",
        "  rawkvm snapshot-info PATH [--json]    a snapshot file's sections, checked and decoded
",
    ),
    (
        "caps",
        "  rawkvm caps [--json] [--kvm-device PATH]
                                        API version, mmap size, backend, TSC rate, every
                                        KVM_CAP_*
",
    ),
    (
        "cpuid",
        "  rawkvm cpuid [--json] [--kvm-device PATH]
                                        the supported CPUID table decoded (vendor, brand,
                                        feature bits by name) and what a guest gets of it
",
    ),
    (
        "msrs",
        "  rawkvm msrs [--json] [--kvm-device PATH]
                                        every MSR KVM handles, by name, with its value on a
                                        fresh vCPU; the feature MSRs
",
    ),
    (
        "help",
        "  rawkvm help | --help | --version
",
    ),
];

/// The options of `run`.
const RUN_OPTIONS: &str = "\
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
  --timeout DURATION  stop the guest if it has not halted after DURATION, which needs a
                      unit: 500ms, 2s, 1m
  --repeat N          run N times on one VM, restored in place between runs (dirty pages
                      copied back, registers reset, and what --restart-scope says); the
                      output of every run is printed, and the trace options watch all the runs
  --restart-scope S   what --repeat puts back besides memory and registers: full (default:
                      also the FPU/XSAVE, XCR0, MSRs but the TSC, debug registers, kvmclock,
                      the in-kernel LAPIC, PICs, IOAPIC and PIT) or registers (only the
                      registers, pending events and the user-space PIC: about 4 times
                      faster on kvm_pvm, for guests known to leave the rest alone)
  --cpuid-vendor STR  leaf 0's vendor string, exactly 12 bytes (default: the host's); every
                      vCPU gets KVM_SET_CPUID2 with the supported table, its hypervisor leaf
                      0x40000000 saying \"rawkvmrawkvm\"
  --tsc-khz N         the guest TSC rate (KVM_SET_TSC_KHZ); refused with status 5 where the
                      host cannot honour it (without TSC scaling: any other rate)
  --irqchip MODE      the interrupt controller: kernel (KVM_CREATE_IRQCHIP + KVM_CREATE_PIT2:
                      in-kernel PIC, IOAPIC, LAPIC and PIT), user (rawkvm's 8259 pair,
                      injecting with KVM_INTERRUPT) or none (default: the guest's setup, else
                      none, because every guest written to rawkvm's conventions ends with
                      hlt, and with an in-kernel LAPIC hlt waits in the kernel for an
                      interrupt instead of ending the run: such runs end through the exit
                      device, port 0xF4 or GPA 0xD0000008, or at --timeout)
  --no-coalesce       every console write exits (default: port 0xE9 is coalesced
                      when the kernel has KVM_CAP_COALESCED_PIO; --trace and --explain
                      imply --no-coalesce, since they show every exit)
  --snapshot-on-port PORT PATH
                      a guest write to PORT (0xF5 by convention) stops every vCPU, saves
                      the machine to PATH and ends the run (status 0); `rawkvm resume
                      PATH` continues it (run and resume; not with --repeat; x86-64)
  --snapshot-after DURATION PATH
                      the same, DURATION after the run starts
";

/// The trace options of `run` and `bench pio|mmio`.
const TRACE_OPTIONS: &str = "\
Trace options (run, and bench pio|mmio, which then also reports the overhead ratio):
  --trace[=text|json] one line (or JSON object) per exit, with every payload field
  --trace-file PATH   write the trace there instead of stderr (a regular file, truncated;
                      a pipe with a reader or a terminal; never the --image)
  --explain           after each exit: the kvm_run fields read and written, with offsets,
                      and what the guest did
  --stats             at the end: exits, time in KVM_RUN and in rawkvm per reason, top
                      ports and MMIO addresses, and the kernel's own counters (all vCPUs
                      together; bench: of the last traced run)
  --trace=chrome PATH (run only) write a Chrome trace-event timeline (Perfetto,
                      chrome://tracing): a KVM_RUN slice and an exit event per exit
";

/// The debugger's options of `run`.
const DEBUG_OPTIONS: &str = "\
Debug options (run, x86-64, one vCPU):
  --gdb ADDR          stop before the first instruction and wait for gdb on
                      127.0.0.1:PORT (port 0: a free one, printed) or a Unix socket path;
                      `k` ends the run with status 0, `D` lets the guest run on
  --step[=text|json]  single-step: one line per instruction (CS:IP, its bytes, the
                      registers it changed), the exits met on the way between them
  --step-limit N      stop --step after N instructions
";

/// What a run prints where, and how it stops.
const NOTES: &str = "\
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
";

/// The exit statuses.
const EXIT_STATUS: &str = "\
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

/// `rawkvm --help`: every command, every option, every status.
pub fn general() -> String {
    let mut text = format!("{TITLE}\nUsage:\n");
    for (_, lines) in COMMANDS {
        text.push_str(lines);
    }
    for part in [
        RUN_OPTIONS,
        TRACE_OPTIONS,
        DEBUG_OPTIONS,
        NOTES,
        EXIT_STATUS,
    ] {
        text.push('\n');
        text.push_str(part);
    }
    text
}

/// `rawkvm help CMD`, `rawkvm CMD --help`: that command's usage lines and the options it
/// takes; `None` for a word that is no command.
pub fn for_command(command: &str) -> Option<String> {
    let mut found = false;
    let mut text = format!("{TITLE}\nUsage:\n");
    for (_, lines) in COMMANDS.iter().filter(|(name, _)| *name == command) {
        found = true;
        text.push_str(lines);
    }
    if !found {
        return None;
    }
    let parts: &[&str] = match command {
        "run" => &[
            RUN_OPTIONS,
            TRACE_OPTIONS,
            DEBUG_OPTIONS,
            NOTES,
            EXIT_STATUS,
        ],
        "resume" => &[TRACE_OPTIONS, EXIT_STATUS],
        "bench" => &[TRACE_OPTIONS, EXIT_STATUS],
        _ => &[EXIT_STATUS],
    };
    for part in parts {
        text.push('\n');
        text.push_str(part);
    }
    Some(text)
}
