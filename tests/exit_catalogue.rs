//! One guest per exit this host can produce, each checked for its exact exit sequence and its
//! result (console bytes, registers, host memory). Where the backend cannot produce an exit,
//! the test says `SKIPPED: <reason>` and the decoder's unit table (`src/exit/tests.rs`) still
//! covers it.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{Seen, backend, kvm_or_skip, machine};
use rawkvm::Kvm;
use rawkvm::devices::{Claim, Devices, IoHandler};
use rawkvm::error::{Error, GuestFault};
use rawkvm::exit::{Exit, IoDirection};
use rawkvm::machine::Machine;
use rawkvm::run_loop::{Observer, Outcome};

/// An exit, owned: the common [`Seen`], or one of the kinds this file adds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Seen(Seen),
    Msr {
        write: bool,
        index: u32,
        reason: u32,
        data: u64,
        error: bool,
    },
    Debug {
        exception: u32,
        pc: u64,
        dr6: u64,
    },
    IrqWindow {
        ready: bool,
        if_flag: bool,
    },
}

#[derive(Debug, Default)]
struct Events(Vec<Event>);

impl Observer for Events {
    fn exit(&mut self, _vcpu: u32, exit: &Exit<'_>, _dispatch: Option<Claim>) {
        self.0.push(match exit {
            Exit::X86Rdmsr(msr) | Exit::X86Wrmsr(msr) => Event::Msr {
                write: matches!(exit, Exit::X86Wrmsr(_)),
                index: msr.index,
                reason: msr.reason,
                data: msr.data,
                error: msr.error,
            },
            Exit::Debug(debug) => Event::Debug {
                exception: debug.exception,
                pc: debug.pc,
                dr6: debug.dr6,
            },
            &Exit::IrqWindowOpen {
                ready_for_interrupt_injection,
                if_flag,
            } => Event::IrqWindow {
                ready: ready_for_interrupt_injection,
                if_flag,
            },
            other => Event::Seen(Seen::of(other)),
        });
    }
}

fn out(port: u16, text: &str) -> Vec<Event> {
    text.bytes()
        .map(|b| Event::Seen(Seen::out(port, b)))
        .collect()
}

const CONSOLE: u16 = 0xE9;

/// Runs `machine` to the end with `handler`; the events, and what ended the run.
fn run<H: IoHandler>(
    machine: &mut Machine,
    handler: &mut H,
) -> (Vec<Event>, Result<Outcome, Error>) {
    let mut events = Events::default();
    let outcome = machine.run(handler, &mut events);
    (events.0, outcome)
}

/// Runs embedded guest `name` with the default devices.
fn run_default(kvm: &Kvm, name: &str) -> (Vec<Event>, Vec<u8>, Result<Outcome, Error>) {
    let mut machine = machine(kvm, name);
    let mut devices = Devices::new(Vec::new());
    let (events, outcome) = run(&mut machine, &mut devices);
    (events, devices.console.into_sink().unwrap(), outcome)
}

/// Devices plus what the tests need: a port whose i-th byte read is `i & 0xff`, MMIO reads
/// answered from a known pattern, one MSR.
struct TestDevices {
    devices: Devices<Vec<u8>>,
    bytes_served: u64,
    msr_writes: Vec<(u32, u64)>,
}

const PATTERN_PORT: u16 = 0x511;
const TEST_MSR: u32 = 0xC0DE_0001;
const TEST_MSR_VALUE: u64 = 0x1122_3344_5566_7788;

/// The byte the test devices answer an MMIO read of `gpa` with.
fn mmio_byte(gpa: u64) -> u8 {
    (gpa as u8).wrapping_mul(7) ^ 0xA5
}

impl TestDevices {
    fn new() -> TestDevices {
        TestDevices {
            devices: Devices::new(Vec::new()),
            bytes_served: 0,
            msr_writes: Vec::new(),
        }
    }

    fn console(self) -> Vec<u8> {
        self.devices.console.into_sink().unwrap()
    }
}

impl IoHandler for TestDevices {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> std::io::Result<Claim> {
        if port != PATTERN_PORT {
            return self.devices.pio_read(port, data);
        }
        for byte in data {
            *byte = self.bytes_served as u8;
            self.bytes_served += 1;
        }
        Ok(Claim::Claimed)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> std::io::Result<Claim> {
        self.devices.pio_write(port, data)
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> std::io::Result<Claim> {
        for (gpa, byte) in (addr..).zip(data.iter_mut()) {
            *byte = mmio_byte(gpa);
        }
        Ok(Claim::Claimed)
    }

    fn mmio_write(&mut self, _addr: u64, _data: &[u8]) -> std::io::Result<Claim> {
        Ok(Claim::Claimed)
    }

    fn msr_read(&mut self, index: u32, value: &mut u64) -> std::io::Result<Claim> {
        if index != TEST_MSR {
            return Ok(Claim::Unclaimed);
        }
        *value = TEST_MSR_VALUE;
        Ok(Claim::Claimed)
    }

    fn msr_write(&mut self, index: u32, value: u64) -> std::io::Result<Claim> {
        self.msr_writes.push((index, value));
        Ok(if index == TEST_MSR {
            Claim::Claimed
        } else {
            Claim::Unclaimed
        })
    }
}

fn say_backend(test: &str) {
    println!("{test}: KVM backend {}", backend());
}

#[test]
fn rep_outsb_prints_its_message() {
    let Some(kvm) = kvm_or_skip("rep_outsb_prints_its_message") else {
        return;
    };
    say_backend("rep_outsb_prints_its_message");
    let (events, console, outcome) = run_default(&kvm, "outsb");
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let message = b"rep outsb: hello\n";
    assert_eq!(console, message);
    // The bytes, in order, whatever the batching; then HLT.
    let mut sent = Vec::new();
    for event in &events[..events.len() - 1] {
        match event {
            Event::Seen(Seen::Io {
                direction: IoDirection::Out,
                port: CONSOLE,
                size: 1,
                count,
                data,
            }) => {
                assert_eq!(data.len(), *count as usize);
                sent.extend_from_slice(data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(sent, message);
    assert_eq!(events.last(), Some(&Event::Seen(Seen::Hlt)));
    if backend() == "kvm_pvm" {
        assert_eq!(
            events.len(),
            message.len() + 1,
            "PVM: one exit per byte (measured)"
        );
    }
}

#[test]
fn rep_insb_of_8192_bytes_fills_every_byte() {
    let Some(kvm) = kvm_or_skip("rep_insb_of_8192_bytes_fills_every_byte") else {
        return;
    };
    say_backend("rep_insb_of_8192_bytes_fills_every_byte");
    // Unhandled port: every byte is the all-ones filler, 8192 * 0xff = 0x1fe000.
    let (events, console, outcome) = run_default(&kvm, "insb");
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(console, b"insb: 001FE000\n");
    let ins: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Seen(Seen::Io {
                    direction: IoDirection::In,
                    ..
                })
            )
        })
        .collect();
    let mut total = 0;
    for event in &ins {
        let Event::Seen(Seen::Io {
            port,
            size,
            count,
            data,
            ..
        }) = event
        else {
            unreachable!()
        };
        assert_eq!((*port, *size), (PATTERN_PORT, 1));
        assert!(data.iter().all(|&b| b == 0xFF));
        total += count;
    }
    assert_eq!(total, 8192);
    if backend() == "kvm_pvm" {
        assert_eq!(ins.len(), 8, "PVM batches rep insb by 1024 (measured)");
    }
    let mut expected = out(CONSOLE, "insb: ");
    expected.extend(ins.into_iter().cloned());
    expected.extend(out(CONSOLE, "001FE000\n"));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);

    // A port whose i-th byte is i & 0xff: the sum is 32 * (0 + ... + 255) = 0xff000.
    let mut machine = machine(&kvm, "insb");
    let mut devices = TestDevices::new();
    let (_, outcome) = run(&mut machine, &mut devices);
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(devices.bytes_served, 8192);
    assert_eq!(devices.console(), b"insb: 000FF000\n");
}

#[test]
fn in_from_an_unhandled_port_reads_all_ones_never_stale_bytes() {
    let Some(kvm) = kvm_or_skip("in_from_an_unhandled_port_reads_all_ones_never_stale_bytes")
    else {
        return;
    };
    let (events, console, outcome) = run_default(&kvm, "in_unhandled");
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(console, b"A FF FFFF FFFFFFFF\n");
    let input = |size: u8| {
        Event::Seen(Seen::Io {
            direction: IoDirection::In,
            port: 0x1234,
            size,
            count: 1,
            data: vec![0xFF; usize::from(size)],
        })
    };
    let mut expected = vec![Event::Seen(Seen::out(0x3F8, b'A')), input(1)];
    expected.extend(out(CONSOLE, " FF"));
    expected.push(input(2));
    expected.extend(out(CONSOLE, " FFFF"));
    expected.push(input(4));
    expected.extend(out(CONSOLE, " FFFFFFFF\n"));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
}

/// The value the guest assembles from the test devices' MMIO bytes at `gpa..gpa + len`.
fn assembled(gpa: u64, len: u64) -> u64 {
    (0..len).fold(0, |value, i| {
        value | u64::from(mmio_byte(gpa + i)) << (8 * i)
    })
}

#[test]
fn mmio_of_every_width_and_page_straddling_reads_assemble_correctly() {
    let Some(kvm) = kvm_or_skip("mmio_of_every_width_and_page_straddling_reads_assemble_correctly")
    else {
        return;
    };
    say_backend("mmio_of_every_width_and_page_straddling_reads_assemble_correctly");
    let mut machine = machine(&kvm, "mmio_widths");
    let mut devices = TestDevices::new();
    let (events, outcome) = run(&mut machine, &mut devices);
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let read = |addr: u64, len: u64| {
        Event::Seen(Seen::Mmio {
            addr,
            is_write: false,
            data: (addr..addr + len).map(mmio_byte).collect(),
        })
    };
    let write = |addr: u64, data: &[u8]| {
        Event::Seen(Seen::Mmio {
            addr,
            is_write: true,
            data: data.to_vec(),
        })
    };
    let mmio = vec![
        read(0x100000, 1),
        read(0x100010, 2),
        read(0x100020, 4),
        read(0x100030, 8),
        write(0x100040, &[0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF]),
        write(0x100050, &[0x44, 0x55, 0x66, 0x77]),
        write(0x100060, &[0x22, 0x33]),
        write(0x100070, &[0x11]),
        // A 4-byte read at 0x100ffe: 2 + 2 bytes; an 8-byte read at 0x100ffd: 3 + 5.
        read(0x100FFE, 2),
        read(0x101000, 2),
        read(0x100FFD, 3),
        read(0x101000, 5),
    ];
    assert_eq!(events[..mmio.len()], mmio[..]);
    // The guest prints what it read: each value assembled from its pieces, little-endian.
    let printed = format!(
        "{:02X} {:04X} {:08X} {:016X} {:08X} {:016X}\n",
        assembled(0x100000, 1),
        assembled(0x100010, 2),
        assembled(0x100020, 4),
        assembled(0x100030, 8),
        assembled(0x100FFE, 4),
        assembled(0x100FFD, 8),
    );
    let mut expected = mmio;
    expected.extend(out(CONSOLE, &printed));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
    assert_eq!(devices.console(), printed.as_bytes());

    // With nothing at those addresses, every read is the all-ones filler.
    let (_, console, outcome) = run_default(&kvm, "mmio_widths");
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(
        console,
        b"FF FFFF FFFFFFFF FFFFFFFFFFFFFFFF FFFFFFFF FFFFFFFFFFFFFFFF\n"
    );
}

#[test]
fn a_write_to_a_read_only_slot_is_an_mmio_exit_and_changes_nothing() {
    let Some(kvm) = kvm_or_skip("a_write_to_a_read_only_slot_is_an_mmio_exit_and_changes_nothing")
    else {
        return;
    };
    let mut machine = machine(&kvm, "readonly");
    let mut devices = Devices::new(Vec::new());
    let (events, outcome) = run(&mut machine, &mut devices);
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let mut expected = vec![Event::Seen(Seen::Mmio {
        addr: 0x20000,
        is_write: true,
        data: vec![0x5A],
    })];
    expected.extend(out(CONSOLE, "A5\n"));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
    assert_eq!(devices.console.into_sink().unwrap(), b"A5\n");
    let mut host = [0u8; 1];
    machine.vm().memory().read(0x20000, &mut host).unwrap();
    assert_eq!(host, [0xA5], "the host byte is unchanged");
}

#[test]
fn a_triple_fault_is_a_shutdown_exit_and_a_guest_fault() {
    let Some(kvm) = kvm_or_skip("a_triple_fault_is_a_shutdown_exit_and_a_guest_fault") else {
        return;
    };
    let (events, console, outcome) = run_default(&kvm, "triple_fault");
    assert_eq!(
        events,
        [Event::Seen(Seen::Other(
            rawkvm::bindings::KVM_EXIT_SHUTDOWN
        ))]
    );
    assert!(console.is_empty());
    match outcome {
        Err(
            error @ Error::GuestFault {
                vcpu: 0,
                fault: GuestFault::Shutdown,
            },
        ) => assert_eq!(error.kind(), rawkvm::error::ErrorKind::GuestFault),
        other => panic!("{other:?}"),
    }
}

#[test]
fn code_in_unbacked_memory_is_an_emulation_failure() {
    let Some(kvm) = kvm_or_skip("code_in_unbacked_memory_is_an_emulation_failure") else {
        return;
    };
    say_backend("code_in_unbacked_memory_is_an_emulation_failure");
    let mut machine = machine(&kvm, "emulation_failure");
    let (events, outcome) = run(&mut machine, &mut Devices::new(Vec::new()));
    assert_eq!(
        events,
        [Event::Seen(Seen::Other(
            rawkvm::bindings::KVM_EXIT_INTERNAL_ERROR
        ))]
    );
    match outcome {
        Err(Error::GuestFault {
            fault: GuestFault::InternalError { suberror: 1, data },
            ..
        }) => {
            assert!(data.len() <= 16);
            if backend() == "kvm_pvm" {
                assert!(
                    matches!(data.len(), 6 | 8),
                    "measured ndata 6 or 8: {data:x?}"
                );
            }
        }
        other => panic!("{other:?}"),
    }
    // A second KVM_RUN after the failure: guest_faults.rs.
}

fn user_space_msr_or_skip(kvm: &Kvm, test: &str) -> bool {
    let cap = rawkvm::bindings::KVM_CAP_X86_USER_SPACE_MSR;
    let present = kvm.check_extension(cap) > 0;
    if !present {
        common::skip(format_args!("{test}: KVM_CAP_X86_USER_SPACE_MSR absent"));
    }
    present
}

#[test]
fn msr_exits_are_answered_by_a_device_or_refused_with_gp() {
    let test = "msr_exits_are_answered_by_a_device_or_refused_with_gp";
    let Some(kvm) = kvm_or_skip(test) else {
        return;
    };
    if !user_space_msr_or_skip(&kvm, test) {
        return;
    }
    let unknown = rawkvm::bindings::KVM_MSR_EXIT_REASON_UNKNOWN;
    let mut machine = machine(&kvm, "msr");
    let mut devices = TestDevices::new();
    let (events, outcome) = run(&mut machine, &mut devices);
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let mut expected = vec![Event::Msr {
        write: false,
        index: TEST_MSR,
        reason: unknown,
        data: TEST_MSR_VALUE,
        error: false,
    }];
    expected.extend(out(CONSOLE, "1122334455667788\n"));
    expected.push(Event::Msr {
        write: true,
        index: TEST_MSR,
        reason: unknown,
        data: 0x0123_4567_89AB_CDEF,
        error: false,
    });
    expected.extend(out(CONSOLE, "ok\n"));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
    assert_eq!(devices.msr_writes, [(TEST_MSR, 0x0123_4567_89AB_CDEF)]);
    assert_eq!(devices.console(), b"1122334455667788\nok\n");

    // Nobody owns the MSR: msr.error = 1, and the guest's #GP handler runs.
    let (events, console, outcome) = run_default(&kvm, "msr");
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let mut expected = vec![Event::Msr {
        write: false,
        index: TEST_MSR,
        reason: unknown,
        data: 0,
        error: true,
    }];
    expected.extend(out(CONSOLE, "#GP\n"));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
    assert_eq!(console, b"#GP\n");
}

#[test]
fn an_interrupt_is_injected_when_the_window_opens() {
    let Some(kvm) = kvm_or_skip("an_interrupt_is_injected_when_the_window_opens") else {
        return;
    };
    let (events, console, outcome) = run_default(&kvm, "irq_window");
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let mut expected = vec![Event::IrqWindow {
        ready: true,
        if_flag: true,
    }];
    expected.extend(out(CONSOLE, "irq 20\n"));
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
    assert_eq!(console, b"irq 20\n");
}

#[test]
fn mutate_reports_its_counter_and_leaves_its_registers() {
    let Some(kvm) = kvm_or_skip("mutate_reports_its_counter_and_leaves_its_registers") else {
        return;
    };
    let mut machine = machine(&kvm, "mutate");
    let mut devices = Devices::new(Vec::new());
    let (events, outcome) = run(&mut machine, &mut devices);
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let mut expected = out(CONSOLE, "00000001\n");
    expected.push(Event::Seen(Seen::Hlt));
    assert_eq!(events, expected);
    let regs = machine.vcpus_mut()[0].regs().unwrap();
    assert_eq!(
        (
            regs.rax as u32,
            regs.rbx as u32,
            regs.rcx as u32,
            regs.rdx as u32
        ),
        (1, 0xB0B0_B0B0, 0xC1C1_C1C1, 0xD0D0_D0D0)
    );
    assert_eq!(
        (regs.rbp as u32, regs.rdi as u32, regs.rsp as u16),
        (0x0BAD_F00D, 0xD1D1_D1D1, 0x0E00)
    );
    let mut word = [0u8; 4];
    machine.vm().memory().read(0x8000, &mut word).unwrap();
    assert_eq!(u32::from_le_bytes(word), 0xC0FF_EE01);
}

#[test]
fn exits_no_embedded_guest_produces_are_skipped_loudly() {
    // Their payloads are covered by the decoder's table (src/exit/tests.rs) and the fuzz
    // corpus; what is missing is a guest that makes the kernel report them.
    common::skip(format_args!(
        "KVM_EXIT_HYPERCALL: no embedded guest produces it. A vmcall guest was tried on \
         kvm_pvm (kernel 6.18), with and without KVM_CAP_EXIT_HYPERCALL: the kernel emulated \
         the vmcall again and again and never exited (asm-guests/README.md, \"Tried and not \
         kept\"); not measured on other backends (this host: {})",
        backend()
    ));
    common::skip(format_args!(
        "KVM_EXIT_SYSTEM_EVENT: no embedded guest produces it, and none was tried: api.rst \
         has the guest request it by an architecture's own mechanism (PSCI on arm64, a \
         termination request from an SEV-ES guest on x86), which a real-mode guest does not \
         make; not measured on any backend (this host: {})",
        backend()
    ));
}
