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

use rawkvm::bindings::{self as abi, ArchAbi, FdLevel, IoctlDirection, IoctlInfo, StructLayout};
use rawkvm::error::{Error, status};
use rawkvm::trace::json::{push_key, push_string};
use rawkvm::trace::text::push_dec;

use super::args::{Arg, Args};
use super::{print_out, unexpected};

/// `rawkvm abi`.
pub fn command(mut args: Args) -> Result<i32, Error> {
    let mut names = Vec::new();
    let mut json = false;
    let mut arch_name = abi::HOST_ARCH.to_string();
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, None) if flag == "--json" => json = true,
            Arg::Flag(flag, inline) if flag == "--arch" => {
                arch_name = args.value(&flag, inline).map_err(Error::Usage)?;
            }
            Arg::Positional(name) => names.push(name),
            other => return Err(unexpected("abi", other)),
        }
    }
    let arch = abi::arch_abi(&arch_name).ok_or_else(|| {
        let known: Vec<&str> = abi::ARCHES.iter().map(|a| a.name).collect();
        Error::Usage(format!(
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
    print_out(&text)?;
    Ok(status::HALTED)
}

/// The structs and ioctls `names` pick (all of them when `names` is empty).
fn select<'a>(
    arch: &'a ArchAbi,
    names: &[String],
) -> Result<(Vec<&'a StructLayout>, Vec<&'a IoctlInfo>), Error> {
    if names.is_empty() {
        return Ok((arch.structs.iter().collect(), arch.ioctls.iter().collect()));
    }
    for name in names {
        let known = arch.structs.iter().any(|s| s.name == name.as_str())
            || arch.ioctls.iter().any(|i| i.name == name.as_str());
        if !known {
            let structs: Vec<&str> = arch.structs.iter().map(|s| s.name).collect();
            return Err(Error::Usage(format!(
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
        let since = layout
            .since
            .map(|v| format!(", since Linux {v}"))
            .unwrap_or_default();
        let head = format!("struct {} {{", layout.name);
        let _ = writeln!(
            out,
            "\n{head:<52}/* size {}, align {}{since} */",
            layout.size, layout.align
        );
        for field in layout.fields {
            let depth = field.name.matches('.').count();
            let member = format!(
                "{:indent$}{} {};",
                "",
                field.c_type,
                field.name,
                indent = 4 + 2 * depth
            );
            let since = field.since.map(|v| format!(" since {v}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "{member:<52}/* {:>5} {:>5}{since} */",
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

fn push_since(out: &mut Vec<u8>, since: Option<&str>) {
    push_key(out, "since");
    match since {
        Some(version) => push_string(out, version),
        None => out.extend_from_slice(b"null"),
    }
}

fn to_json(arch: &ArchAbi, structs: &[&StructLayout], ioctls: &[&IoctlInfo]) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"arch\":");
    push_string(&mut out, arch.name);
    push_key(&mut out, "structs");
    out.push(b'[');
    for (i, layout) in structs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_string(&mut out, layout.name);
        push_key(&mut out, "size");
        push_dec(&mut out, layout.size as u64);
        push_key(&mut out, "align");
        push_dec(&mut out, layout.align as u64);
        push_since(&mut out, layout.since);
        push_key(&mut out, "fields");
        out.push(b'[');
        for (j, field) in layout.fields.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            push_string(&mut out, field.name);
            push_key(&mut out, "offset");
            push_dec(&mut out, field.offset as u64);
            push_key(&mut out, "size");
            push_dec(&mut out, field.size as u64);
            push_key(&mut out, "c_type");
            push_string(&mut out, field.c_type);
            push_since(&mut out, field.since);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    push_key(&mut out, "ioctls");
    out.push(b'[');
    for (i, ioctl) in ioctls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        push_string(&mut out, ioctl.name);
        push_key(&mut out, "level");
        push_string(&mut out, level_name(ioctl.level));
        push_key(&mut out, "nr");
        push_dec(&mut out, u64::from(ioctl.nr));
        push_key(&mut out, "direction");
        push_string(&mut out, direction_name(ioctl.direction));
        push_key(&mut out, "size");
        push_dec(&mut out, ioctl.size as u64);
        push_key(&mut out, "request");
        push_dec(&mut out, ioctl.request as u64);
        push_key(&mut out, "capability");
        match ioctl.capability {
            Some(cap) => push_string(&mut out, cap),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}\n");
    String::from_utf8_lossy(&out).into_owned()
}
