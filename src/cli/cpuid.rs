//! `rawkvm cpuid [--json] [--kvm-device PATH]`: the CPUID table KVM supports, decoded, and
//! what a guest actually gets.
//!
//! ```text
//! ioctl(kvm, KVM_GET_SUPPORTED_CPUID, ...)     the table (E2BIG: more room)
//! ioctl(kvm, KVM_CREATE_VM, 0); ioctl(vm, KVM_CREATE_VCPU, 0)
//! ioctl(vcpu, KVM_SET_CPUID2, &table)          the table rawkvm gives every vCPU
//! ioctl(vcpu, KVM_GET_CPUID2, ...)             what the vCPU has: the kernel may rewrite leaves
//! ```
//!
//! `--json` writes `{"device","backend","entries","vendor","brand","hypervisor","table":
//! [{"function","index","flags","eax","ebx","ecx","edx"}],"features":[{"function","index",
//! "register","value","names"}],"guest":{"entries","vendor","hypervisor","features":[...],
//! "changes":[{"function","index","register","set","got","gained","lost"}]}}`; `set` or `got`
//! is `null` for an entry only the other table has, `gained`/`lost` name the feature bits the
//! kernel added or dropped.

use rawkvm::arch::x86_64::cpuid::{
    CpuidChange, CpuidTable, REGISTER_NAMES, cpuid_string, default_table, diff, register_values,
};
use rawkvm::arch::x86_64::cpuid_names::{FEATURE_REGISTERS, FeatureRegister};
use rawkvm::exit::hardware::kvm_backend;
use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::kvm::Kvm;
use rawkvm::trace::json::{push_key, push_optional_dec, push_optional_string, push_string};
use std::fmt::Write as _;

use super::args::{Args, query_flags};
use super::print_out;
use super::status::CliError;

/// What `rawkvm cpuid` found: one description, printed as text or JSON.
struct Report {
    device: String,
    backend: &'static str,
    supported: CpuidTable,
    /// What rawkvm sets on every vCPU.
    set: CpuidTable,
    /// `KVM_GET_CPUID2` after setting it on a fresh vCPU.
    got: CpuidTable,
    changes: Vec<CpuidChange>,
}

/// `rawkvm cpuid`.
pub fn command(args: Args) -> Result<i32, CliError> {
    let (json, device) = query_flags("cpuid", args)?;
    let kvm = Kvm::open_path(&device)?;
    let supported = kvm.supported_cpuid()?;
    let set = default_table(&kvm, None)?;
    let vm = kvm.create_vm()?;
    let vcpu = vm.create_vcpu(0)?;
    vcpu.set_cpuid(&set)?;
    let got = vcpu.cpuid()?;
    let report = Report {
        device: device.display().to_string(),
        backend: kvm_backend().unwrap_or("unknown"),
        changes: diff(&set, &got),
        supported,
        set,
        got,
    };
    print_out(&if json {
        report.to_json()
    } else {
        report.to_text()
    })
}

/// The feature register's value in `table`, if the leaf is there.
fn feature_value(table: &CpuidTable, register: &FeatureRegister) -> Option<u32> {
    let entry = table.get(register.function, register.index)?;
    let at = REGISTER_NAMES
        .iter()
        .position(|r| *r == register.register)?;
    Some(register_values(entry)[at])
}

/// The feature register `change` is in, if it is one rawkvm decodes.
fn feature_register(change: &CpuidChange) -> Option<&'static FeatureRegister> {
    FEATURE_REGISTERS.iter().find(|r| {
        (r.function, r.index, r.register) == (change.function, change.index, change.register)
    })
}

/// The bits of `to` not in `from`, by name (empty for registers that are not feature sets).
fn bit_names(change: &CpuidChange, from: Option<u32>, to: Option<u32>) -> Vec<String> {
    match feature_register(change) {
        Some(register) => register.set_bits(to.unwrap_or(0) & !from.unwrap_or(0)),
        None => Vec::new(),
    }
}

fn string_or_dash(bytes: Option<[u8; 12]>) -> String {
    bytes.map_or_else(|| "-".to_string(), |b| cpuid_string(&b))
}

impl Report {
    fn to_text(&self) -> String {
        let mut out = String::new();
        let table = &self.supported;
        // Writing into a String cannot fail.
        let _ = writeln!(
            out,
            "KVM_GET_SUPPORTED_CPUID on {} (backend {}): {} entries",
            self.device,
            self.backend,
            table.entries().len()
        );
        let _ = writeln!(out, "vendor      {}", string_or_dash(table.vendor()));
        let _ = writeln!(
            out,
            "brand       {}",
            table.brand().as_deref().unwrap_or("-")
        );
        let _ = writeln!(
            out,
            "hypervisor  {} (rawkvm sets {})",
            string_or_dash(table.hypervisor_signature()),
            string_or_dash(self.set.hypervisor_signature())
        );
        let _ = writeln!(
            out,
            "\n  {:<10} {:>7} {:>5}  {:<10} {:<10} {:<10} {:<10}",
            "leaf", "subleaf", "flags", "eax", "ebx", "ecx", "edx"
        );
        for e in table.entries() {
            let _ = writeln!(
                out,
                "  {:#010x} {:>7} {:>5}  {:#010x} {:#010x} {:#010x} {:#010x}",
                e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx
            );
        }
        let _ = writeln!(out, "\nfeatures (supported table):");
        for register in FEATURE_REGISTERS {
            let names = feature_value(table, register)
                .map_or_else(|| "-".to_string(), |v| register.set_bits(v).join(" "));
            let _ = writeln!(
                out,
                "  {:#x}.{} {}: {names}",
                register.function, register.index, register.register
            );
        }
        let _ = writeln!(
            out,
            "\nwhat the guest gets (KVM_GET_CPUID2 after KVM_SET_CPUID2 of {} entries on a fresh \
             vCPU: {} entries): {} registers differ",
            self.set.entries().len(),
            self.got.entries().len(),
            self.changes.len()
        );
        for change in &self.changes {
            let show =
                |v: Option<u32>| v.map_or_else(|| "absent".to_string(), |v| format!("{v:#010x}"));
            let _ = write!(
                out,
                "  {:#x}.{} {}: set {} got {}",
                change.function,
                change.index,
                change.register,
                show(change.set),
                show(change.got)
            );
            let gained = bit_names(change, change.set, change.got);
            let lost = bit_names(change, change.got, change.set);
            if !gained.is_empty() {
                let _ = write!(out, "  +{}", gained.join(" +"));
            }
            if !lost.is_empty() {
                let _ = write!(out, "  -{}", lost.join(" -"));
            }
            out.push('\n');
        }
        out
    }

    fn to_json(&self) -> String {
        let mut out = json_start(&self.device, self.backend);
        push_key(&mut out, "entries");
        push_dec(&mut out, self.supported.entries().len() as u64);
        push_strings(&mut out, &self.supported);
        push_key(&mut out, "brand");
        push_optional_string(&mut out, self.supported.brand().as_deref());
        push_key(&mut out, "table");
        push_list(&mut out, self.supported.entries(), |out, e| {
            out.extend_from_slice(b"{\"function\":");
            push_dec(out, u64::from(e.function));
            for (key, value) in [("index", e.index), ("flags", e.flags)]
                .into_iter()
                .chain(REGISTER_NAMES.into_iter().zip(register_values(e)))
            {
                push_key(out, key);
                push_dec(out, u64::from(value));
            }
            out.push(b'}');
        });
        push_features(&mut out, &self.supported);
        out.extend_from_slice(b",\"guest\":{\"entries\":");
        push_dec(&mut out, self.got.entries().len() as u64);
        push_strings(&mut out, &self.got);
        push_features(&mut out, &self.got);
        push_key(&mut out, "changes");
        push_list(&mut out, &self.changes, |out, change| {
            push_register_start(out, change.function, change.index, change.register);
            for (key, value) in [("set", change.set), ("got", change.got)] {
                push_key(out, key);
                push_optional_dec(out, value.map(u64::from));
            }
            push_key(out, "gained");
            push_names(out, &bit_names(change, change.set, change.got));
            push_key(out, "lost");
            push_names(out, &bit_names(change, change.got, change.set));
            out.push(b'}');
        });
        out.extend_from_slice(b"}}\n");
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// `,"vendor":..,"hypervisor":..` of `table`.
fn push_strings(out: &mut Vec<u8>, table: &CpuidTable) {
    push_key(out, "vendor");
    push_optional_string(out, table.vendor().map(|b| cpuid_string(&b)).as_deref());
    push_key(out, "hypervisor");
    push_optional_string(
        out,
        table
            .hypervisor_signature()
            .map(|b| cpuid_string(&b))
            .as_deref(),
    );
}

/// `,"features":[...]` of `table`.
fn push_features(out: &mut Vec<u8>, table: &CpuidTable) {
    push_key(out, "features");
    push_list(out, FEATURE_REGISTERS, |out, register| {
        push_register_start(out, register.function, register.index, register.register);
        let value = feature_value(table, register);
        push_key(out, "value");
        push_optional_dec(out, value.map(u64::from));
        push_key(out, "names");
        push_names(
            out,
            &value.map(|v| register.set_bits(v)).unwrap_or_default(),
        );
        out.push(b'}');
    });
}

/// `{"function":..,"index":..,"register":..` (without the closing brace).
fn push_register_start(out: &mut Vec<u8>, function: u32, index: u32, register: &str) {
    out.extend_from_slice(b"{\"function\":");
    push_dec(out, u64::from(function));
    push_key(out, "index");
    push_dec(out, u64::from(index));
    push_key(out, "register");
    push_string(out, register);
}

/// `{"device":..,"backend":..` (without the closing brace): how the reports of the commands
/// that query a device begin.
pub(super) fn json_start(device: &str, backend: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"device\":");
    push_string(&mut out, device);
    push_key(&mut out, "backend");
    push_string(&mut out, backend);
    out
}

fn push_names(out: &mut Vec<u8>, names: &[String]) {
    push_list(out, names, |out, name| push_string(out, name));
}
