//! `rawkvm abi [STRUCT|IOCTL...] [--json] [--arch ARCH]`: the KVM ABI as the bindings define
//! it, for any architecture in `rawkvm_bindings::ARCHES`: each struct's size, alignment and
//! members (offset, size, C type), pahole-style, and the ioctl table (fd level, direction,
//! argument size, number, request code, capability).
//!
//! ```text
//! struct kvm_run {                            /* size 2352, align 8 */
//!     __u8 request_interrupt_window;          /*     0     1 */
//!     ...
//!       __u16 io.port;                        /*    34     2 */
//! ```
//!
//! `--json` writes `{"arch":..,"structs":[{"name","size","align","since","fields":[{"name",
//! "offset","size","c_type","since"}]}],"ioctls":[{"name","level","nr","direction","size",
//! "request","capability"}]}`.

use std::fmt::Write as _;

use crate::cli::status::CliError;
use rawkvm::bindings::{self as abi, ArchAbi, FdLevel, IoctlDirection, IoctlInfo, StructLayout};
use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::trace::json::{push_key, push_optional_string, push_span_start, push_string};

use super::args::{Arg, Args};
use super::{print_out, unexpected};

/// `rawkvm abi`.
pub fn command(mut args: Args) -> Result<i32, CliError> {
    let mut names = Vec::new();
    let mut json = false;
    let mut arch_name = abi::HOST_ARCH.to_string();
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, None) if flag == "--json" => json = true,
            Arg::Flag(flag, inline) if flag == "--arch" => {
                arch_name = args.value(&flag, inline).map_err(CliError::Usage)?;
            }
            Arg::Positional(name) => names.push(name),
            other => return Err(unexpected("abi", other)),
        }
    }
    let arch = abi::arch_abi(&arch_name).ok_or_else(|| {
        let known: Vec<&str> = abi::ARCHES.iter().map(|a| a.name).collect();
        CliError::Usage(format!(
            "abi: unknown architecture {arch_name:?}; known: {}",
            known.join(", ")
        ))
    })?;
    let (structs, ioctls) = select(arch, &names)?;
    let text = if json {
        to_json(arch, &structs, &ioctls)
    } else {
        to_text(arch, &structs, &ioctls)
    };
    print_out(&text)
}

/// The structs and ioctls `names` pick (all of them when `names` is empty).
fn select<'a>(
    arch: &'a ArchAbi,
    names: &[String],
) -> Result<(Vec<&'a StructLayout>, Vec<&'a IoctlInfo>), CliError> {
    if names.is_empty() {
        return Ok((arch.structs.iter().collect(), arch.ioctls.iter().collect()));
    }
    for name in names {
        let known = arch.structs.iter().any(|s| s.name == name.as_str())
            || arch.ioctls.iter().any(|i| i.name == name.as_str());
        if !known {
            let structs: Vec<&str> = arch.structs.iter().map(|s| s.name).collect();
            return Err(CliError::Usage(format!(
                "abi: {} has no struct or ioctl {name:?}; structs: {}",
                arch.name,
                structs.join(", ")
            )));
        }
    }
    let wanted = |name: &str| names.iter().any(|n| n == name);
    Ok((
        arch.structs.iter().filter(|s| wanted(s.name)).collect(),
        arch.ioctls.iter().filter(|i| wanted(i.name)).collect(),
    ))
}

/// `system`, `vm`, `vcpu`, `system+vm`, ...
pub fn level_name(level: FdLevel) -> &'static str {
    match level {
        FdLevel::System => "system",
        FdLevel::Vm => "vm",
        FdLevel::Vcpu => "vcpu",
        FdLevel::SystemAndVm => "system+vm",
        FdLevel::SystemAndVcpu => "system+vcpu",
        FdLevel::VmAndVcpu => "vm+vcpu",
    }
}

/// `_IO`, `_IOR`, `_IOW`, `_IOWR`.
pub fn direction_name(direction: IoctlDirection) -> &'static str {
    match direction {
        IoctlDirection::None => "_IO",
        IoctlDirection::Read => "_IOR",
        IoctlDirection::Write => "_IOW",
        IoctlDirection::ReadWrite => "_IOWR",
    }
}

fn to_text(arch: &ArchAbi, structs: &[&StructLayout], ioctls: &[&IoctlInfo]) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(out, "/* {} */", arch.name);
    for layout in structs {
        let members: Vec<String> = layout
            .fields
            .iter()
            .map(|field| {
                let indent = 4 + 2 * field.name.matches('.').count();
                // C puts an array's bounds after the name: `__u64 spsr[5]`, not `__u64[5] spsr`.
                let (base, bounds) = field
                    .c_type
                    .split_at(field.c_type.find('[').unwrap_or(field.c_type.len()));
                format!("{:indent$}{base} {}{bounds};", "", field.name)
            })
            .collect();
        let head = format!("struct {} {{", layout.name);
        let width = members
            .iter()
            .map(String::len)
            .chain([head.len()])
            .max()
            .unwrap_or(0)
            + 1;
        let since = layout
            .since
            .map(|v| format!(", since Linux {v}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{head:<width$}/* size {}, align {}{since} */",
            layout.size, layout.align
        );
        for (field, member) in layout.fields.iter().zip(&members) {
            let since = field
                .since
                .map(|v| format!(" since {v}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{member:<width$}/* {:>5} {:>5}{since} */",
                field.offset, field.size
            );
        }
        let _ = writeln!(out, "}};");
    }
    if !ioctls.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<32} {:<12} {:<5} {:>5} {:>4} {:>10}  capability",
            "ioctl", "fd level", "dir", "size", "nr", "request"
        );
        for ioctl in ioctls {
            let _ = writeln!(
                out,
                "{:<32} {:<12} {:<5} {:>5} {:>#4x} {:>#10x}  {}",
                ioctl.name,
                level_name(ioctl.level),
                direction_name(ioctl.direction),
                ioctl.size,
                ioctl.nr,
                ioctl.request,
                ioctl.capability.unwrap_or("-")
            );
        }
    }
    out
}

fn to_json(arch: &ArchAbi, structs: &[&StructLayout], ioctls: &[&IoctlInfo]) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"arch\":");
    push_string(&mut out, arch.name);
    push_key(&mut out, "structs");
    push_list(&mut out, structs, |out, layout| {
        out.extend_from_slice(b"{\"name\":");
        push_string(out, layout.name);
        push_key(out, "size");
        push_dec(out, layout.size as u64);
        push_key(out, "align");
        push_dec(out, layout.align as u64);
        push_key(out, "since");
        push_optional_string(out, layout.since);
        push_key(out, "fields");
        push_list(out, layout.fields, |out, field| {
            push_span_start(out, field.name, field.offset as u64, field.size as u64);
            push_key(out, "c_type");
            push_string(out, field.c_type);
            push_key(out, "since");
            push_optional_string(out, field.since);
            out.push(b'}');
        });
        out.push(b'}');
    });
    push_key(&mut out, "ioctls");
    push_list(&mut out, ioctls, |out, ioctl| {
        out.extend_from_slice(b"{\"name\":");
        push_string(out, ioctl.name);
        push_key(out, "level");
        push_string(out, level_name(ioctl.level));
        push_key(out, "nr");
        push_dec(out, u64::from(ioctl.nr));
        push_key(out, "direction");
        push_string(out, direction_name(ioctl.direction));
        push_key(out, "size");
        push_dec(out, ioctl.size as u64);
        push_key(out, "request");
        // `ioctl_num_type` is `c_ulong` with glibc but `c_int` with musl: widen either way.
        #[allow(clippy::unnecessary_cast)]
        let request = ioctl.request as u64;
        push_dec(out, request);
        push_key(out, "capability");
        push_optional_string(out, ioctl.capability);
        out.push(b'}');
    });
    out.extend_from_slice(b"}\n");
    String::from_utf8_lossy(&out).into_owned()
}
