//! `rawkvm run --mode ...` and ELF images from the command line: statuses and messages of
//! exceptions in each mode, `--entry ADDR`, ELF32/ELF64 executables and what is wrong with bad
//! ones, `--mode paged` per backend, `--explain` naming the mode.
// The guests are x86 code.
#![cfg(target_arch = "x86_64")]

mod common;

use common::process::run;
use common::{ScratchDir, assert_fails, backend, kvm_present, status};

/// `mov al, 'E'; out 0xE9, al; hlt`: the same bytes in 32-bit and 64-bit code.
const PRINT_E: [u8; 5] = [0xB0, b'E', 0xE6, 0xE9, 0xF4];

/// A minimal static ELF executable: one `PT_LOAD` of `code` at `paddr` (memory size
/// `mem_size`), entered at `paddr`. `elf64` picks the class and machine.
fn elf(elf64: bool, code: &[u8], paddr: u64, mem_size: u64) -> Vec<u8> {
    let (header, phdr, offset) = if elf64 {
        (64, 56, 0x100)
    } else {
        (52, 32, 0x100)
    };
    let mut file = vec![0u8; offset];
    let mut put = |at: usize, value: u64, width: usize| {
        file[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
    };
    put(0, 0x464C_457F, 4);
    put(4, if elf64 { 2 } else { 1 }, 1); // class
    put(5, 1, 1); // little-endian
    put(6, 1, 1); // version
    put(0x10, 2, 2); // ET_EXEC
    put(0x12, if elf64 { 62 } else { 3 }, 2);
    put(0x14, 1, 4);
    if elf64 {
        put(0x18, paddr, 8); // e_entry
        put(0x20, header, 8); // e_phoff
        put(0x36, phdr, 2);
        put(0x38, 1, 2);
        let p = header as usize;
        put(p, 1, 4); // PT_LOAD
        put(p + 4, 5, 4); // R+X
        put(p + 0x08, offset as u64, 8);
        put(p + 0x10, paddr, 8);
        put(p + 0x18, paddr, 8);
        put(p + 0x20, code.len() as u64, 8);
        put(p + 0x28, mem_size, 8);
    } else {
        put(0x18, paddr, 4);
        put(0x1C, header, 4);
        put(0x2A, phdr, 2);
        put(0x2C, 1, 2);
        let p = header as usize;
        put(p, 1, 4);
        put(p + 0x04, offset as u64, 4);
        put(p + 0x08, paddr, 4);
        put(p + 0x0C, paddr, 4);
        put(p + 0x10, code.len() as u64, 4);
        put(p + 0x14, mem_size, 4);
        put(p + 0x18, 5, 4);
    }
    file.extend_from_slice(code);
    file
}

/// Writes `bytes` to a file in `dir` and returns its path as a string.
fn file(dir: &ScratchDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// The last line of stderr: the error.
fn last_error(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .last()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_user_mode_page_fault_exits_6_naming_vector_error_code_rip_and_cr2() {
    if !kvm_present("user_fault_cli") {
        return;
    }
    // With the kernel's irqchip too, where the stub's `hlt` would block in the kernel: the
    // stub ends the run through the exit device.
    for irqchip in ["none", "kernel"] {
        let output = run(&[
            "run",
            "user_fault",
            "--irqchip",
            irqchip,
            "--timeout",
            "20s",
        ]);
        assert_eq!(
            output.status.code(),
            Some(status::GUEST_FAULT),
            "--irqchip {irqchip}: {output:?}"
        );
        assert_eq!(
            last_error(&output),
            "rawkvm: error: vCPU 0: CPU exception #PF (page fault, vector 14) at CPL 3, RIP \
             0x0000000000001005, error code 0x6 (not present, write, user), CR2 \
             0x0000000040000000",
            "--irqchip {irqchip}"
        );
    }
}

#[test]
fn several_vcpus_faulting_at_cpl3_each_report_intact() {
    if !kvm_present("user_fault_smp") {
        return;
    }
    // Four vCPUs fault at about the same instant, each on its own TSS and exception stack:
    // whichever the run reports first, its report is whole.
    let output = run(&["run", "user_fault", "--vcpus", "4"]);
    assert_eq!(
        output.status.code(),
        Some(status::GUEST_FAULT),
        "{output:?}"
    );
    let error = last_error(&output);
    let (vcpu, rest) = error
        .strip_prefix("rawkvm: error: vCPU ")
        .and_then(|rest| rest.split_once(": "))
        .unwrap_or_else(|| panic!("{error}"));
    assert!(matches!(vcpu, "0" | "1" | "2" | "3"), "{error}");
    assert_eq!(
        rest,
        "CPU exception #PF (page fault, vector 14) at CPL 3, RIP 0x0000000000001005, error \
         code 0x6 (not present, write, user), CR2 0x0000000040000000"
    );
}

#[test]
fn exceptions_in_each_mode_end_the_run_as_that_mode_reports_them() {
    if !kvm_present("mode_exceptions") {
        return;
    }
    let dir = ScratchDir::new("mode-exceptions");
    // (image, mode, the error)
    let cases: [(&[u8], &str, &str); 6] = [
        // `out` at CPL 3: #GP with error code 0, on PVM even with IOPL 3, here with IOPL 0.
        (
            &[0xE6, 0xE9],
            "user",
            "CPU exception #GP (general protection, vector 13) at CPL 3, RIP 0x0000000000001000, \
             error code 0x0",
        ),
        // `int3` at CPL 3: its gate has DPL 3, so #BP, RIP after the int3 (a trap).
        (
            &[0xCC],
            "user",
            "CPU exception #BP (breakpoint, vector 3) at CPL 3, RIP 0x0000000000001001",
        ),
        // `hlt` at CPL 3 is privileged.
        (
            &[0xF4],
            "user",
            "CPU exception #GP (general protection, vector 13) at CPL 3, RIP 0x0000000000001000, \
             error code 0x0",
        ),
        // `ud2` at CPL 0 in long mode reaches the stub too.
        (
            &[0x0F, 0x0B],
            "long",
            "CPU exception #UD (invalid opcode, vector 6) at CPL 0, RIP 0x0000000000001000",
        ),
        // A CPL 0 fault of the stack itself: `mov rsp, 0x40000000; push rax`. The gates use
        // IST1, so the stub runs on its own stack and reports it.
        (
            &[0x48, 0xC7, 0xC4, 0x00, 0x00, 0x00, 0x40, 0x50],
            "long",
            "CPU exception #PF (page fault, vector 14) at CPL 0, RIP 0x0000000000001007, \
             error code 0x2 (not present, write, supervisor), CR2 0x000000003ffffff8",
        ),
        // Protected mode has no IDT: a triple fault.
        (
            &[0x0F, 0x0B],
            "protected",
            "guest triple-faulted (KVM_EXIT_SHUTDOWN)",
        ),
    ];
    for (index, (code, mode, error)) in cases.iter().enumerate() {
        let image = file(&dir, &format!("case{index}"), code);
        let output = run(&["run", "--image", &image, "--mode", mode]);
        assert_eq!(
            output.status.code(),
            Some(status::GUEST_FAULT),
            "{mode}: {output:?}"
        );
        assert_eq!(
            last_error(&output),
            format!("rawkvm: error: vCPU 0: {error}")
        );
    }
    eprintln!(
        "backend {}: every exception reached rawkvm's stub",
        backend()
    );
}

#[test]
fn entry_takes_an_address_outside_real_mode() {
    if !kvm_present("entry_address") {
        return;
    }
    let dir = ScratchDir::new("entry-address");
    // ud2, then the print at 0x1002.
    let image = file(&dir, "image", &[[0x0F, 0x0B].as_slice(), &PRINT_E].concat());
    let output = run(&[
        "run", "--image", &image, "--mode", "long", "--entry", "0x1002",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"E");
    let output = run(&[
        "run", "--image", &image, "--mode", "long", "--entry", "0:1002",
    ]);
    assert_fails(&output, status::USAGE, "is not a hex address");
    let output = run(&["run", "--image", &image, "--entry", "0x1002"]);
    assert_fails(&output, status::USAGE, "is not SEG:OFF");
}

#[test]
fn elf32_and_elf64_images_pick_their_mode_and_entry() {
    if !kvm_present("elf_images") {
        return;
    }
    let dir = ScratchDir::new("elf-images");
    // Loaded at 0x2000 with a .bss: the load address (0x1000) plays no part.
    for (elf64, mode) in [(false, "protected"), (true, "long")] {
        let image = file(&dir, mode, &elf(elf64, &PRINT_E, 0x2000, 0x800));
        let output = run(&["run", "--image", &image, "--explain"]);
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_eq!(output.stdout, b"E");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with(&format!("mode {mode}: ")), "{stderr}");
        assert!(stderr.contains("rip = 0x2000"), "{stderr}");
    }
    let elf64 = file(&dir, "elf64", &elf(true, &PRINT_E, 0x2000, 5));
    let output = run(&["run", "--image", &elf64, "--mode", "protected"]);
    assert_fails(
        &output,
        status::IMAGE,
        "is not a loadable ELF executable: an ELF64 executable cannot run in --mode protected",
    );
}

#[test]
fn bad_elf_files_exit_4_naming_what_is_wrong() {
    let dir = ScratchDir::new("bad-elf");
    let good = elf(true, &PRINT_E, 0x2000, 5);
    let with = |at: usize, byte: u8| {
        let mut bytes = good.clone();
        bytes[at] = byte;
        bytes
    };
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "class",
            with(4, 7),
            "class 7 in e_ident is neither ELFCLASS32 (1) nor ELFCLASS64 (2)",
        ),
        (
            "machine",
            with(0x12, 40),
            "machine 40 is not x86: an ELF64 guest needs e_machine EM_X86_64 (62)",
        ),
        (
            "outside",
            elf(true, &PRINT_E, 0xF_FFF0, 0x100),
            "segment 0xffff0..0x1000f0 is outside guest RAM [0, 0x100000)",
        ),
        (
            "truncated",
            good[..0x102].to_vec(),
            "truncated: the segment needs 261 bytes but the file has 258",
        ),
        (
            "system",
            elf(true, &PRINT_E, 0x8_F000, 0x2000),
            "segment 0x8f000..0x91000 overlaps 0x90000..0xa0000, which rawkvm reserves for the \
             system area of the CPU modes",
        ),
    ];
    for (name, bytes, needle) in cases {
        let image = file(&dir, name, &bytes);
        // Image errors come before KVM is opened: the same on a host without KVM.
        let output = run(&["run", "--image", &image]);
        assert_fails(&output, status::IMAGE, needle);
    }
    // Two segments overlapping: the second program header copies the first, 2 bytes higher.
    let mut overlap = good.clone();
    overlap[0x38] = 2; // e_phnum
    let first: Vec<u8> = overlap[0x40..0x78].to_vec();
    overlap[0x78..0xB0].copy_from_slice(&first);
    overlap[0x78 + 0x18] = 0x02; // p_paddr 0x2002
    let image = file(&dir, "overlap", &overlap);
    let output = run(&["run", "--image", &image]);
    assert_fails(
        &output,
        status::IMAGE,
        "segments overlap: 0x2000..0x2005 and 0x2002..0x2007",
    );
}

#[test]
fn paged_mode_is_refused_on_pvm_and_runs_elsewhere() {
    if !kvm_present("paged_mode") {
        return;
    }
    let output = run(&["run", "protected_hello", "--mode", "paged"]);
    if backend() == "kvm_pvm" {
        assert_fails(
            &output,
            status::KVM_UNAVAILABLE,
            "--mode paged is not supported by this host's KVM backend kvm_pvm: PVM runs guest \
             paging only in long mode",
        );
        eprintln!("backend kvm_pvm: --mode paged refused, as HOST-NOTES measured");
    } else {
        assert_eq!(output.status.code(), Some(0), "{output:?}");
        assert_eq!(output.stdout, b"Hello from protected mode!\n");
        eprintln!("backend {}: --mode paged ran with 32-bit paging", backend());
    }
}

#[test]
fn modes_are_checked_before_kvm_is_asked() {
    let output = run(&["run", "long_hello", "--mem", "512K"]);
    assert_fails(
        &output,
        status::USAGE,
        "RAM size 512 KiB is too small for --mode long: its tables live at 0x90000..0xa0000, \
         so RAM must be at least 640 KiB (0xa0000); raise --mem",
    );
    let output = run(&["run", "hello", "--mode", "virtual86"]);
    assert_fails(
        &output,
        status::USAGE,
        "--mode virtual86: unknown CPU mode \"virtual86\"; the modes are real, protected, \
         paged, long, user",
    );
    // A flat image reaching into the system area.
    let dir = ScratchDir::new("mode-overlap");
    let image = file(&dir, "big", &vec![0x90; 0x9_0000]);
    let output = run(&["run", "--image", &image, "--mode", "long"]);
    assert_fails(
        &output,
        status::IMAGE,
        "overlaps 0x90000..0xa0000, which rawkvm reserves",
    );
}

#[test]
fn explain_names_the_mode_and_the_registers_it_set() {
    if !kvm_present("explain_mode") {
        return;
    }
    let output = run(&["run", "long_hello", "--explain"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        "mode long: 64-bit long mode, CPL 0, RAM identity-mapped (4-level tables)"
    );
    for expected in [
        "  KVM_SET_SREGS cr0        = 0x80010033 (PE MP ET NE WP PG): protected mode with paging; \
         WP: CPL 0 honours read-only pages",
        "  KVM_SET_SREGS cr3        = 0x92000: the PML4 of the identity map",
        "  KVM_SET_SREGS efer       = 0x500 (LME LMA): LME: long mode enabled; LMA: active (as the \
         CPU sets it once CR0.PG is on)",
        "  KVM_SET_REGS  rip = 0x1000, rsp = 0x100000, rflags = 0x2 (IF clear), rsi = vCPU index",
    ] {
        assert!(lines.contains(&expected), "{expected:?} in {stderr}");
    }
}

#[test]
fn the_user_mode_compute_guest_runs_a_billion_iterations() {
    if !kvm_present("compute_billion") {
        return;
    }
    // 1 + 2 + ... + 10^9 = 500000000500000000. At CPL 3 the loop runs natively on every
    // backend (seconds at most); no time is asserted.
    let output = run(&["run", "compute"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"06F05B59F17F6500\n");
}

#[test]
fn deadlines_the_flight_recorder_and_stats_work_at_cpl3() {
    if !kvm_present("user_mode_tools") {
        return;
    }
    // `jmp $` at CPL 3 runs natively and never exits: the deadline's kick must still stop it.
    let dir = ScratchDir::new("user-tools");
    let spin = file(&dir, "spin", &[0xEB, 0xFE]);
    let output = run(&[
        "run",
        "--image",
        &spin,
        "--mode",
        "user",
        "--timeout",
        "200ms",
    ]);
    assert_eq!(output.status.code(), Some(status::TIMEOUT), "{output:?}");
    assert_eq!(
        last_error(&output),
        "rawkvm: error: guest did not halt within 200 ms (vCPU 0 stopped at RIP 0x1000)"
    );
    // The fault's flight recorder holds the stub's write to the exit device.
    let output = run(&["run", "user_fault"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        "rawkvm: flight recorder: the last 1 of 1 exits before the fault:"
    );
    assert!(
        lines[1].starts_with(
            "  #1 vcpu0 KVM_EXIT_IO(2) direction=out size=1 port=0xf4 count=1 data_offset=0x1000 \
             data=45 \"E\" run_ns="
        ),
        "{stderr}"
    );
    // --stats counts the exit device's write (the console's bytes too, where the kernel cannot
    // coalesce them).
    let output = run(&["run", "user_hello", "--stats"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"Hello from user mode!\n");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("0xd0000008 write 1"), "{stderr}");
}

#[test]
fn the_identity_map_covers_large_pages_and_a_partial_end_and_guards_the_system_area() {
    if !kvm_present("identity_map") {
        return;
    }
    let dir = ScratchDir::new("identity-map");
    // 5 MiB of RAM: code at 3 MiB (a 2 MiB page), the stack at the top (the 4 KiB pages of
    // the partial last chunk): `push rax; pop rax`, then the print.
    let code = [[0x50, 0x58].as_slice(), &PRINT_E].concat();
    let image = file(&dir, "high", &elf(true, &code, 0x30_0000, 0x10));
    let output = run(&["run", "--image", &image, "--mem", "5M", "--mode", "long"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"E");
    // At CPL 3 the system area's pages are supervisor-only: `mov al, [0x90000]` is a
    // protection-violation #PF (error code 0x5: present, read, user).
    let peek = file(&dir, "peek", &[0x8A, 0x04, 0x25, 0x00, 0x00, 0x09, 0x00]);
    let output = run(&["run", "--image", &peek, "--mode", "user"]);
    assert_eq!(
        output.status.code(),
        Some(status::GUEST_FAULT),
        "{output:?}"
    );
    assert_eq!(
        last_error(&output),
        "rawkvm: error: vCPU 0: CPU exception #PF (page fault, vector 14) at CPL 3, RIP \
         0x0000000000001000, error code 0x5 (protection violation, read, user), CR2 \
         0x0000000000090000"
    );
}
