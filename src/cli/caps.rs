//! `rawkvm caps [--json] [--kvm-device PATH]`: what this host's KVM offers.
//!
//! ```text
//! ioctl(kvm, KVM_GET_API_VERSION, 0)            12
//! ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)         bytes of each vCPU's kvm_run mapping
//! /sys/module/kvm_{intel,amd,pvm}               the backend module
//! ioctl(kvm, KVM_CHECK_EXTENSION, cap)          for every KVM_CAP_* the bindings know
//! ioctl(vm, KVM_CHECK_EXTENSION, cap)           the same on a VM fd (KVM_CAP_CHECK_EXTENSION_VM)
//! ioctl(vcpu, KVM_GET_TSC_KHZ, 0)               x86: a fresh vCPU's TSC rate (the host's)
//! ```
//!
//! `--json` writes `{"api_version","vcpu_mmap_size","backend","tsc_khz","capabilities":
//! [{"name","nr","value","vm_value"}]}`; `vm_value` is `null` when the VM fd cannot be asked,
//! `tsc_khz` when there is no such rate (another architecture, or the ioctl failed).

use std::fmt::Write as _;

use crate::cli::status::CliError;
use rawkvm::bindings as abi;
use rawkvm::exit::hardware::kvm_backend;
use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::kvm::{Kvm, Vm};
use rawkvm::trace::json::{push_key, push_optional_dec, push_string};

use super::args::{Args, query_flags};
use super::print_out;

/// One capability and what the kernel answered.
struct Answer {
    name: &'static str,
    nr: u32,
    value: i32,
    vm_value: Option<i32>,
}

/// `rawkvm caps`.
pub fn command(args: Args) -> Result<i32, CliError> {
    let (json, device) = query_flags("caps", args)?;
    let kvm = Kvm::open_path(&device)?;
    // A VM fd answers per VM; without KVM_CAP_CHECK_EXTENSION_VM it cannot be asked.
    let vm = (kvm.check_extension(abi::KVM_CAP_CHECK_EXTENSION_VM) > 0)
        .then(|| kvm.create_vm().ok())
        .flatten();
    let answers: Vec<Answer> = abi::CAPABILITIES
        .iter()
        .map(|&(nr, name)| Answer {
            name,
            nr,
            value: kvm.check_extension(nr),
            vm_value: vm.as_ref().map(|vm| vm.check_extension(nr)),
        })
        .collect();
    let backend = kvm_backend().unwrap_or("unknown");
    let tsc_khz = vm.as_ref().and_then(tsc_khz);
    let text = if json {
        to_json(&kvm, backend, tsc_khz, &answers)
    } else {
        to_text(&kvm, backend, tsc_khz, &answers)
    };
    print_out(&text)
}

/// `KVM_GET_TSC_KHZ` on a fresh vCPU of `vm` (x86), if it answers.
#[cfg(target_arch = "x86_64")]
fn tsc_khz(vm: &Vm) -> Option<u32> {
    vm.create_vcpu(0).and_then(|vcpu| vcpu.tsc_khz()).ok()
}

#[cfg(not(target_arch = "x86_64"))]
fn tsc_khz(_: &Vm) -> Option<u32> {
    None
}

fn to_text(kvm: &Kvm, backend: &str, tsc_khz: Option<u32>, answers: &[Answer]) -> String {
    let mut out = String::new();
    let size = kvm.vcpu_mmap_size();
    // Writing into a String cannot fail.
    let _ = writeln!(out, "KVM API version   {}", kvm.api_version());
    let _ = writeln!(
        out,
        "vCPU mmap size    {size} bytes ({} pages)",
        size.div_ceil(4096)
    );
    let _ = writeln!(out, "backend module    {backend}");
    let _ = writeln!(out, "device            {}", kvm.path().display());
    if let Some(khz) = tsc_khz {
        let _ = writeln!(
            out,
            "TSC rate          {khz} kHz (KVM_GET_TSC_KHZ on a fresh vCPU)"
        );
    }
    let present = answers.iter().filter(|a| a.value > 0).count();
    let _ = writeln!(
        out,
        "\n{present} of {} capabilities present (KVM_CHECK_EXTENSION on {}, and on a VM fd):",
        answers.len(),
        kvm.path().display()
    );
    let _ = writeln!(
        out,
        "  {:<40} {:>4} {:>10} {:>10}",
        "capability", "nr", "value", "vm"
    );
    for answer in answers {
        let vm = answer
            .vm_value
            .map_or_else(|| "-".to_string(), |v| v.to_string());
        let _ = writeln!(
            out,
            "  {:<40} {:>4} {:>10} {:>10}",
            answer.name, answer.nr, answer.value, vm
        );
    }
    out
}

fn push_int(out: &mut Vec<u8>, value: i32) {
    if value < 0 {
        out.push(b'-');
    }
    push_dec(out, u64::from(value.unsigned_abs()));
}

fn to_json(kvm: &Kvm, backend: &str, tsc_khz: Option<u32>, answers: &[Answer]) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"api_version\":");
    push_int(&mut out, kvm.api_version());
    push_key(&mut out, "vcpu_mmap_size");
    push_dec(&mut out, kvm.vcpu_mmap_size() as u64);
    push_key(&mut out, "backend");
    push_string(&mut out, backend);
    push_key(&mut out, "tsc_khz");
    push_optional_dec(&mut out, tsc_khz.map(u64::from));
    push_key(&mut out, "capabilities");
    push_list(&mut out, answers, |out, answer| {
        out.extend_from_slice(b"{\"name\":");
        push_string(out, answer.name);
        push_key(out, "nr");
        push_dec(out, u64::from(answer.nr));
        push_key(out, "value");
        push_int(out, answer.value);
        push_key(out, "vm_value");
        match answer.vm_value {
            Some(value) => push_int(out, value),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    });
    out.extend_from_slice(b"}\n");
    String::from_utf8_lossy(&out).into_owned()
}
