//! `rawkvm msrs [--json] [--kvm-device PATH]`: every MSR KVM handles, by name where rawkvm
//! knows it, with its value on a fresh vCPU; the feature MSRs; and the architectural MSRs the
//! index list leaves out (EFER, APIC_BASE, FS_BASE, ...: KVM handles them too).
//!
//! ```text
//! ioctl(kvm, KVM_GET_MSR_INDEX_LIST, ...)           the MSRs (E2BIG first, for the count)
//! ioctl(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST, ...)   the feature MSRs
//! ioctl(kvm, KVM_GET_MSRS, ...)                     the feature MSRs' values
//! ioctl(vm, KVM_CREATE_VCPU, 0); ioctl(vcpu, KVM_SET_CPUID2, ...)   a vCPU as rawkvm runs one
//! ioctl(vcpu, KVM_GET_MSRS, &{ every index })       one call for the whole list
//! ioctl(vcpu, KVM_GET_MSRS, &{ one index })         each named MSR not in the list
//! ```
//!
//! `--json` writes `{"device","backend","msrs":[{"index","name","value"}],"feature_msrs":
//! [...],"other_msrs":[...]}`; `name` is `null` when rawkvm does not know the MSR, and in
//! `other_msrs` `value` is `null` when the kernel refused to read it.

use std::fmt::Write as _;

use rawkvm::arch::x86_64::cpuid::default_table;
use rawkvm::arch::x86_64::msr::Msr;
use rawkvm::arch::x86_64::msr_names::{MSR_NAMES, msr_name};
use rawkvm::error::{CpuError, Error};
use rawkvm::exit::hardware::kvm_backend;
use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::kvm::{Kvm, Vcpu};
use rawkvm::trace::json::{push_key, push_optional_dec, push_optional_string};

use super::args::{Args, query_flags};
use super::cpuid::json_start;
use super::print_out;
use super::status::CliError;

/// One MSR as listed: its index and, if it could be read, its value.
struct Row {
    index: u32,
    value: Option<u64>,
}

/// What `rawkvm msrs` found.
struct Report {
    device: String,
    backend: &'static str,
    msrs: Vec<Row>,
    feature_msrs: Vec<Row>,
    other_msrs: Vec<Row>,
}

/// `rawkvm msrs`.
pub fn command(args: Args) -> Result<i32, CliError> {
    let (json, device) = query_flags("msrs", args)?;
    let kvm = Kvm::open_path(&device)?;
    let list = kvm.msr_index_list()?;
    let features = kvm.feature_msr_index_list()?;
    let feature_values = kvm.feature_msrs(&features)?;
    let vm = kvm.create_vm()?;
    let vcpu = vm.create_vcpu(0)?;
    vcpu.set_cpuid(&default_table(&kvm, None)?)?;
    let values = vcpu.msrs(&list)?;
    let others: Vec<u32> = MSR_NAMES
        .iter()
        .map(|&(index, _)| index)
        .filter(|index| !list.contains(index) && !features.contains(index))
        .collect();
    let report = Report {
        device: device.display().to_string(),
        backend: kvm_backend().unwrap_or("unknown"),
        msrs: rows(values),
        feature_msrs: rows(feature_values),
        other_msrs: others
            .into_iter()
            .map(|index| read_one(&vcpu, index))
            .collect::<Result<_, _>>()?,
    };
    print_out(&if json {
        report.to_json()
    } else {
        report.to_text()
    })
}

fn rows(msrs: Vec<Msr>) -> Vec<Row> {
    msrs.into_iter()
        .map(|msr| Row {
            index: msr.index,
            value: Some(msr.value),
        })
        .collect()
}

/// One MSR's value, or `None` if the kernel refused it.
fn read_one(vcpu: &Vcpu, index: u32) -> Result<Row, Error> {
    match vcpu.msrs(&[index]) {
        Ok(msrs) => Ok(Row {
            index,
            value: msrs.first().map(|msr| msr.value),
        }),
        Err(Error::Cpu(CpuError::MsrRefused { .. })) => Ok(Row { index, value: None }),
        Err(other) => Err(other),
    }
}

impl Report {
    fn to_text(&self) -> String {
        let mut out = String::new();
        let sections = [
            (
                &self.msrs,
                "KVM_GET_MSR_INDEX_LIST",
                "MSRs, values on a fresh vCPU (KVM_GET_MSRS)",
            ),
            (
                &self.feature_msrs,
                "KVM_GET_MSR_FEATURE_INDEX_LIST",
                "feature MSRs, values from KVM_GET_MSRS on the system fd",
            ),
            (
                &self.other_msrs,
                "not in the index list",
                "named MSRs, read one by one on the vCPU",
            ),
        ];
        // Writing into a String cannot fail.
        let _ = writeln!(out, "device {} (backend {})", self.device, self.backend);
        for (rows, source, what) in sections {
            let _ = writeln!(out, "\n{source}: {} {what}", rows.len());
            for row in rows {
                let value = row
                    .value
                    .map_or_else(|| "refused".to_string(), |v| format!("{v:#x}"));
                let name = msr_name(row.index).unwrap_or("-");
                let _ = writeln!(out, "  {:#010x}  {name:<28} {value}", row.index);
            }
        }
        out
    }

    fn to_json(&self) -> String {
        let mut out = json_start(&self.device, self.backend);
        for (key, rows) in [
            ("msrs", &self.msrs),
            ("feature_msrs", &self.feature_msrs),
            ("other_msrs", &self.other_msrs),
        ] {
            push_key(&mut out, key);
            push_list(&mut out, rows, |out, row| {
                out.extend_from_slice(b"{\"index\":");
                push_dec(out, u64::from(row.index));
                push_key(out, "name");
                push_optional_string(out, msr_name(row.index));
                push_key(out, "value");
                push_optional_dec(out, row.value);
                out.push(b'}');
            });
        }
        out.extend_from_slice(b"}\n");
        String::from_utf8_lossy(&out).into_owned()
    }
}
