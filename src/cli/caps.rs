//! `rawkvm caps [--json] [--kvm-device PATH]`: what this host's KVM offers.
//!
//! ```text
//! ioctl(kvm, KVM_GET_API_VERSION, 0)            12
//! ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)         bytes of each vCPU's kvm_run mapping
//! /sys/module/kvm_{intel,amd,pvm}               the backend module
//! ioctl(kvm, KVM_CHECK_EXTENSION, cap)          for every KVM_CAP_* the bindings know
//! ioctl(vm, KVM_CHECK_EXTENSION, cap)           the same on a VM fd (KVM_CAP_CHECK_EXTENSION_VM)
//! ```
//!
//! `--json` writes `{"api_version","vcpu_mmap_size","backend","capabilities":[{"name","nr",
//! "value","vm_value"}]}`; `vm_value` is `null` when the VM fd cannot be asked.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::cli::status::CliError;
use rawkvm::bindings as abi;
use rawkvm::exit::hardware::kvm_backend;
use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::trace::json::{push_key, push_string};

use super::args::{Arg, Args};
use super::{print_out, unexpected};

/// One capability and what the kernel answered.
struct Answer {
    name: &'static str,
    nr: u32,
    value: i32,
    vm_value: Option<i32>,
}

/// `rawkvm caps`.
pub fn command(mut args: Args) -> Result<i32, CliError> {
    let mut json = false;
    let mut device = PathBuf::from(DEFAULT_DEVICE);
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, None) if flag == "--json" => json = true,
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                device = PathBuf::from(args.value(&flag, inline).map_err(CliError::Usage)?);
            }
            other => return Err(unexpected("caps", other)),
        }
    }
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
    let text = if json {
        to_json(&kvm, backend, &answers)
    } else {
        to_text(&kvm, backend, &answers)
    };
    print_out(&text)
}

fn to_text(kvm: &Kvm, backend: &str, answers: &[Answer]) -> String {
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

fn to_json(kvm: &Kvm, backend: &str, answers: &[Answer]) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"api_version\":");
    push_int(&mut out, kvm.api_version());
    push_key(&mut out, "vcpu_mmap_size");
    push_dec(&mut out, kvm.vcpu_mmap_size() as u64);
    push_key(&mut out, "backend");
    push_string(&mut out, backend);
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
