//! `rawkvm caps` on riscv64: the ISA extension registers of a fresh vCPU.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_ONE_REG, KVM_REG_RISCV_ISA_EXT | i)   for every index i the kernel has
//! ```

use std::fmt::Write as _;

use rawkvm::arch::riscv64::isa_extensions;
use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::kvm::Kvm;
use rawkvm::trace::json::{push_key, push_string};

use crate::cli::status::CliError;

/// Appends what `KVM_GET_ONE_REG` says of every ISA extension register of a fresh vCPU.
pub fn with_isa_extensions(kvm: &Kvm, json: bool, mut text: String) -> Result<String, CliError> {
    let vm = kvm.create_vm()?;
    let vcpu = vm.create_vcpu(0)?;
    let extensions = isa_extensions(&vcpu)?;
    let name_of = |index: u64, name: Option<&str>| {
        name.map_or_else(|| format!("#{index}"), |name| name.to_ascii_lowercase())
    };
    if json {
        let mut out = Vec::new();
        push_key(&mut out, "isa_extensions");
        push_list(&mut out, &extensions, |out, ext| {
            out.extend_from_slice(b"{\"index\":");
            push_dec(out, ext.index);
            push_key(out, "name");
            match ext.name {
                Some(name) => push_string(out, name),
                None => out.extend_from_slice(b"null"),
            }
            push_key(out, "value");
            push_dec(out, ext.value);
            out.push(b'}');
        });
        // Into the object, before its closing brace and newline.
        let end = text.trim_end().len() - 1;
        text.insert_str(end, &String::from_utf8_lossy(&out));
    } else {
        let has: Vec<String> = extensions
            .iter()
            .filter(|ext| ext.value != 0)
            .map(|ext| name_of(ext.index, ext.name))
            .collect();
        let lacks: Vec<String> = extensions
            .iter()
            .filter(|ext| ext.value == 0)
            .map(|ext| name_of(ext.index, ext.name))
            .collect();
        let _ = writeln!(
            &mut text,
            "\nriscv ISA extensions of a vCPU (KVM_GET_ONE_REG of KVM_REG_RISCV_ISA_EXT | i; \
             #i: an index newer than the 6.1 header):\n  has:   {}\n  lacks: {}",
            has.join(" "),
            if lacks.is_empty() {
                "-".to_owned()
            } else {
                lacks.join(" ")
            }
        );
    }
    Ok(text)
}
