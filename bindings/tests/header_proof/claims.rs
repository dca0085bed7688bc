//! What the Rust side claims for each architecture: its layouts and ioctls (from
//! `rawkvm_bindings::ARCHES`), and its constants, by table.

use rawkvm_bindings::{self as abi, IoctlInfo, StructLayout};

/// A constant as the Rust side defines it.
pub struct Constant {
    /// The table it is listed in (`EXIT_REASONS`), or `other`.
    pub table: &'static str,
    /// The kernel's name, `#define`d by the header.
    pub name: &'static str,
    /// Its value.
    pub value: i128,
    /// The Linux version that gave it this value, when an older header defines it differently
    /// (it is then compared only with headers at least that new).
    pub since: Option<&'static str>,
}

/// A value the header computes with a macro rather than `#define`s under a name of its own
/// (register ids such as `KVM_REG_ARM_CORE_REG(regs.pc)`).
pub struct Expression {
    /// The table it is listed in (`RISCV_REG_IDS`).
    pub table: &'static str,
    /// The Rust name.
    pub name: &'static str,
    /// The C expression that must equal it.
    pub c: &'static str,
    /// Its value.
    pub value: i128,
}

/// What one architecture's Rust definitions claim.
pub struct Claims {
    /// `target_arch` name, as in `ARCHES`.
    pub arch: &'static str,
    /// Every struct.
    pub layouts: &'static [StructLayout],
    /// Every ioctl, in the architecture's encoding.
    pub ioctls: &'static [IoctlInfo],
    /// Named constants.
    pub constants: Vec<Constant>,
    /// Values computed by C macros.
    pub expressions: Vec<Expression>,
}

impl Claims {
    /// Whether the constant table `table` (`EXIT_REASONS`) is among the claims.
    pub fn has_table(&self, table: &str) -> bool {
        self.constants.iter().any(|c| c.table == table)
            || self.expressions.iter().any(|x| x.table == table)
    }

    /// Whether the single constant `name` (`KVMIO`) is among the claims.
    pub fn has_constant(&self, name: &str) -> bool {
        self.constants.iter().any(|c| c.name == name)
    }
}

/// Rows of named tables, then single constants, each as a [`Constant`].
macro_rules! constants {
    (tables: [$($table:path),* $(,)?], single: [$($single:path),* $(,)?] $(,)?) => {{
        let mut constants = Vec::new();
        $(
            for &(value, name) in $table {
                constants.push(Constant { table: last_segment(stringify!($table)), name,
                    value: value as i128, since: None });
            }
        )*
        $(
            constants.push(Constant {
                table: "other",
                name: last_segment(stringify!($single)),
                value: $single as i128,
                since: None,
            });
        )*
        constants
    }};
}

/// `abi::aarch64::ARM_TARGETS` -> `ARM_TARGETS`.
fn last_segment(path: &'static str) -> &'static str {
    path.rsplit("::").next().unwrap_or(path).trim()
}

/// Adds a table of register ids to the claims, each row compared the way the header allows: a
/// row with an entry in `c` (`(name, C expression)`) with that expression (returned); any other
/// row as a constant the header `#define`s under the same `KVM_` name (pushed on `constants`).
/// A row with neither, or an expression naming no row, panics, so no row goes unchecked.
fn register_ids(
    constants: &mut Vec<Constant>,
    table_name: &'static str,
    table: &'static [(u64, &'static str)],
    c: &'static [(&'static str, &'static str)],
) -> Vec<Expression> {
    for &(name, _) in c {
        let rows = table.iter().filter(|row| row.1 == name).count();
        assert_eq!(
            rows, 1,
            "{name} has a C expression but {rows} rows in {table_name}"
        );
    }
    let mut expressions = Vec::new();
    for &(value, name) in table {
        match c.iter().find(|expression| expression.0 == name) {
            Some(&(_, c)) => expressions.push(Expression {
                table: table_name,
                name,
                c,
                value: value.into(),
            }),
            None => {
                assert!(
                    name.starts_with("KVM_"),
                    "{table_name} row {name} is neither a header name nor given a C expression"
                );
                constants.push(Constant {
                    table: table_name,
                    name,
                    value: value.into(),
                    since: None,
                });
            }
        }
    }
    expressions
}

/// The constants every architecture's `<linux/kvm.h>` defines.
fn common_constants() -> Vec<Constant> {
    constants! {
        tables: [
            abi::EXIT_REASONS, abi::CAPABILITIES, abi::INTERNAL_ERRORS, abi::SYSTEM_EVENTS,
            abi::MSR_EXIT_REASONS, abi::MEMORY_FLAGS, abi::GUEST_DEBUG_FLAGS, abi::STATS_FLAGS,
            abi::REG_ARCHES, abi::REG_SIZES, abi::MP_STATES, abi::IRQ_ROUTING_TYPES,
            abi::IRQFD_FLAGS, abi::IOEVENTFD_FLAGS,
        ],
        single: [
            abi::KVM_API_VERSION, abi::KVMIO, abi::SYNC_REGS_SIZE_BYTES, abi::KVM_EXIT_IO_IN,
            abi::KVM_EXIT_IO_OUT, abi::KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES,
            abi::KVM_MSR_EXIT_REASON_VALID_MASK, abi::KVM_NOTIFY_CONTEXT_INVALID,
            abi::KVM_MEMORY_EXIT_FLAG_PRIVATE, abi::KVM_EXIT_ARM_SEA_FLAG_GPA_VALID,
            abi::KVM_EXIT_HYPERV_SYNIC, abi::KVM_EXIT_HYPERV_HCALL, abi::KVM_EXIT_HYPERV_SYNDBG,
            abi::KVM_EXIT_XEN_HCALL, abi::KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
            abi::KVM_DIRTY_LOG_INITIALLY_SET, abi::KVM_REG_SIZE_SHIFT,
        ],
    }
}

/// The claims for the architecture `arch` (a name in `ARCHES`).
pub fn claims_for(arch: &str) -> Claims {
    let described = abi::arch_abi(arch).unwrap_or_else(|| panic!("{arch} is not in ARCHES"));
    let mut constants = common_constants();
    let mut expressions = Vec::new();
    match arch {
        "x86_64" => {
            use abi::x86_64 as x86;
            constants.extend(constants! {
                tables: [
                    x86::X86_GUEST_DEBUG_FLAGS, x86::X86_VCPU_EVENT_FLAGS, x86::X86_SYNC_REGS,
                    x86::X86_RUN_FLAGS, x86::CPUID_FLAGS, x86::MSR_FILTER_RANGE_FLAGS,
                    x86::MSR_FILTER_FLAGS, x86::VCPU_MMAP_PAGE_OFFSETS, x86::PIT_CONFIG_FLAGS,
                    x86::X86_IRQCHIPS, x86::X86_IRQCHIP_SIZES, x86::PIT_FLAGS,
                    x86::CLOCK_FLAGS,
                ],
                single: [
                    x86::KVM_NR_INTERRUPTS, x86::KVM_SYNC_X86_VALID_FIELDS,
                    x86::KVM_MSR_FILTER_MAX_RANGES, x86::KVM_MSR_FILTER_MAX_BITMAP_SIZE,
                    x86::KVM_MAX_XCRS, x86::KVM_APIC_REG_SIZE,
                ],
            });
        }
        "aarch64" => {
            use abi::aarch64 as arm;
            constants.extend(constants! {
                tables: [
                    arm::ARM_TARGETS, arm::ARM_VCPU_FEATURES, arm::ARM64_REG_FIELDS,
                    arm::ARM64_PSTATE_BITS, arm::ARM64_GUEST_DEBUG_FLAGS,
                    arm::ARM64_DEVICE_IRQ_LEVELS, arm::VCPU_MMAP_PAGE_OFFSETS,
                ],
                single: [
                    arm::KVM_NR_SPSR, arm::KVM_ARM_MAX_DBG_REGS,
                    arm::KVM_VM_TYPE_ARM_IPA_SIZE_MASK, arm::KVM_DEBUG_ARCH_HSR_HIGH_VALID,
                ],
            });
            expressions = register_ids(
                &mut constants,
                "ARM64_REG_IDS",
                arm::ARM64_REG_IDS,
                arm::ARM64_REG_ID_EXPRESSIONS,
            );
        }
        "riscv64" => {
            use abi::riscv64 as rv;
            constants.extend(constants! {
                tables: [
                    rv::RISCV_REG_FIELDS, rv::RISCV_MODES, rv::RISCV_INTERRUPT_LEVELS,
                    rv::RISCV_TIMER_STATES, rv::RISCV_ISA_EXTS, rv::VCPU_MMAP_PAGE_OFFSETS,
                ],
                single: [],
            });
            expressions = register_ids(
                &mut constants,
                "RISCV_REG_IDS",
                rv::RISCV_REG_IDS,
                rv::RISCV_REG_ID_EXPRESSIONS,
            );
        }
        "s390x" => {
            use abi::s390x as s390;
            constants.extend(constants! {
                tables: [s390::S390_SYNC_REGS, s390::S390_REG_IDS, s390::S390_RESET_FLAGS],
                single: [s390::KVM_VM_S390_UCONTROL, s390::KVM_S390_SIE_PAGE_OFFSET],
            });
        }
        "powerpc64" => {
            use abi::powerpc64 as ppc;
            constants.extend(constants! {
                tables: [ppc::PPC_INTERRUPT_LEVELS, ppc::PPC_REG_IDS],
                single: [ppc::KVM_VM_PPC_HV, ppc::KVM_VM_PPC_PR],
            });
        }
        other => panic!("no constant tables listed for {other}"),
    }
    // Values that changed after Linux 6.1: `<linux/kvm.h>` defaults KVM_DIRTY_LOG_PAGE_OFFSET
    // to 0 until the architecture supports the dirty ring (arm64 from 6.2; riscv later, so the
    // newest version is given: an older header is then reported unchecked, never mismatched).
    let changed: &[(&str, &str)] = match arch {
        "aarch64" => &[("KVM_DIRTY_LOG_PAGE_OFFSET", "6.2")],
        "riscv64" => &[("KVM_DIRTY_LOG_PAGE_OFFSET", "6.18")],
        _ => &[],
    };
    for &(name, version) in changed {
        let constant = constants
            .iter_mut()
            .find(|constant| constant.name == name)
            .unwrap_or_else(|| panic!("{name} has a `since` but is in no {arch} table"));
        constant.since = Some(version);
    }
    Claims {
        arch: described.name,
        layouts: described.structs,
        ioctls: described.ioctls,
        constants,
        expressions,
    }
}
