//! Errors of interrupt set-up and delivery: the ordering rules of the in-kernel irqchip
//! (api.rst, "KVM_CREATE_IRQCHIP", "KVM_CREATE_PIT2", "KVM_IRQ_LINE", "KVM_INTERRUPT"), caught
//! before the kernel is asked where rawkvm can know, and the kernel's own refusals explained by
//! name where it cannot.

use std::fmt;

use nix::errno::Errno;

use super::ErrnoDisplay;

/// What went wrong setting up or raising an interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IrqError {
    /// `KVM_CREATE_IRQCHIP` after a vCPU was created (the kernel says `EINVAL`): the local
    /// APICs are made with the vCPUs, so the chip must come first.
    IrqchipAfterVcpu {
        /// vCPUs the VM already has.
        vcpus: u32,
    },
    /// `KVM_CREATE_IRQCHIP` a second time (the kernel says `EEXIST`).
    IrqchipExists,
    /// `KVM_CREATE_PIT2` without an in-kernel irqchip (the kernel says `ENOENT`): the PIT
    /// raises GSI 0 of the irqchip.
    PitWithoutIrqchip,
    /// `KVM_CREATE_PIT2` a second time (the kernel says `EEXIST`).
    PitExists,
    /// `KVM_IRQ_LINE`, `KVM_IRQFD` or `KVM_SET_GSI_ROUTING` without an in-kernel irqchip (the
    /// kernel says `ENXIO` for `KVM_IRQ_LINE`).
    NoIrqchip {
        /// The ioctl that was not made.
        ioctl: &'static str,
    },
    /// `KVM_INTERRUPT` on a VM with an in-kernel irqchip (the kernel says `ENXIO`): the
    /// in-kernel PIC and LAPIC inject; raise a line instead.
    InterruptWithIrqchip {
        /// The vector that was not injected.
        vector: u8,
    },
    /// A GSI past the routing table (`KVM_CAP_IRQ_ROUTING` entries; 24 IOAPIC pins by default).
    GsiOutOfRange {
        /// The GSI asked for.
        gsi: u32,
        /// GSIs are below this.
        limit: u32,
    },
    /// An ioeventfd of a width KVM does not take (1, 2, 4, 8, or 0 for any width).
    DoorbellWidth {
        /// The width asked for.
        len: u32,
    },
    /// An ioeventfd of length 0 with a datamatch: any width has no value to match.
    DoorbellAnyWidthMatch,
    /// `eventfd(2)` failed.
    Eventfd(Errno),
    /// The kernel refused an interrupt ioctl that rawkvm's own checks let through.
    Kernel {
        /// The ioctl.
        ioctl: &'static str,
        /// Why.
        errno: Errno,
    },
}

/// What the kernel's errno means for an interrupt ioctl, by the ordering rules of api.rst.
fn explain(ioctl: &str, errno: Errno) -> Option<&'static str> {
    Some(match (ioctl, errno) {
        ("KVM_CREATE_IRQCHIP", Errno::EINVAL) => {
            "the VM already has a vCPU; create the irqchip before the first KVM_CREATE_VCPU"
        }
        ("KVM_CREATE_IRQCHIP" | "KVM_CREATE_PIT2", Errno::EEXIST) => "the VM already has one",
        ("KVM_CREATE_PIT2", Errno::ENOENT) => {
            "the VM has no in-kernel irqchip; KVM_CREATE_IRQCHIP first"
        }
        ("KVM_IRQ_LINE" | "KVM_SET_GSI_ROUTING" | "KVM_IRQFD", Errno::ENXIO) => {
            "the VM has no in-kernel irqchip; KVM_CREATE_IRQCHIP first"
        }
        ("KVM_INTERRUPT", Errno::ENXIO) => {
            "the VM has an in-kernel irqchip, which injects by itself; raise a line with \
             KVM_IRQ_LINE instead"
        }
        ("KVM_INTERRUPT", Errno::EEXIST) => "an interrupt is already pending injection",
        ("KVM_IRQFD", Errno::EBUSY) => "that eventfd already raises a GSI of this VM",
        ("KVM_IOEVENTFD", Errno::EEXIST) => "that address (and datamatch) already has one",
        ("KVM_IOEVENTFD", Errno::ENOSPC) => "the VM's I/O bus has no room for more devices",
        (_, Errno::EINVAL) => "the kernel refused an argument (GSI, width, flags)",
        _ => return None,
    })
}

impl IrqError {
    /// The kernel's refusal of `ioctl` with `errno`, mapped to the ordering rule it stands for
    /// when there is one.
    pub fn from_kernel(ioctl: &'static str, errno: Errno) -> IrqError {
        match (ioctl, errno) {
            ("KVM_CREATE_IRQCHIP", Errno::EEXIST) => IrqError::IrqchipExists,
            ("KVM_CREATE_PIT2", Errno::EEXIST) => IrqError::PitExists,
            ("KVM_CREATE_PIT2", Errno::ENOENT) => IrqError::PitWithoutIrqchip,
            _ => IrqError::Kernel { ioctl, errno },
        }
    }

    /// The errno the kernel gives (or would give) for this error, if it is an ordering rule.
    pub fn errno(&self) -> Option<Errno> {
        Some(match self {
            IrqError::IrqchipAfterVcpu { .. } => Errno::EINVAL,
            IrqError::IrqchipExists | IrqError::PitExists => Errno::EEXIST,
            IrqError::PitWithoutIrqchip => Errno::ENOENT,
            IrqError::NoIrqchip { .. } | IrqError::InterruptWithIrqchip { .. } => Errno::ENXIO,
            IrqError::Eventfd(errno) | IrqError::Kernel { errno, .. } => *errno,
            _ => return None,
        })
    }
}

impl fmt::Display for IrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IrqError::IrqchipAfterVcpu { vcpus } => write!(
                f,
                "KVM_CREATE_IRQCHIP after {vcpus} vCPU(s) were created: the kernel would say \
                 EINVAL; create the irqchip before the first vCPU"
            ),
            IrqError::IrqchipExists => f.write_str(
                "KVM_CREATE_IRQCHIP twice: the kernel would say EEXIST; the VM already has an \
                 in-kernel irqchip",
            ),
            IrqError::PitWithoutIrqchip => f.write_str(
                "KVM_CREATE_PIT2 without an in-kernel irqchip: the kernel would say ENOENT; \
                 KVM_CREATE_IRQCHIP first (the PIT raises its GSI 0)",
            ),
            IrqError::PitExists => f.write_str(
                "KVM_CREATE_PIT2 twice: the kernel would say EEXIST; the VM already has a PIT",
            ),
            IrqError::NoIrqchip { ioctl } => write!(
                f,
                "{ioctl} without an in-kernel irqchip: the kernel would say ENXIO; run with \
                 --irqchip kernel (KVM_CREATE_IRQCHIP), or inject with KVM_INTERRUPT"
            ),
            IrqError::InterruptWithIrqchip { vector } => write!(
                f,
                "KVM_INTERRUPT (vector {vector:#x}) on a VM with an in-kernel irqchip: the \
                 kernel would say ENXIO; raise a line with KVM_IRQ_LINE instead"
            ),
            IrqError::GsiOutOfRange { gsi, limit } => write!(
                f,
                "GSI {gsi} is past the routing table (GSIs 0..{limit}); KVM_IRQ_LINE would \
                 do nothing"
            ),
            IrqError::DoorbellWidth { len } => write!(
                f,
                "an ioeventfd of {len} bytes: KVM takes 1, 2, 4 or 8, or 0 for a write of any \
                 width"
            ),
            IrqError::DoorbellAnyWidthMatch => f.write_str(
                "an ioeventfd of any width (length 0) cannot match data; give a width with \
                 the datamatch",
            ),
            IrqError::Eventfd(errno) => write!(f, "eventfd failed: {}", ErrnoDisplay(*errno)),
            IrqError::Kernel { ioctl, errno } => {
                write!(f, "{ioctl} failed: {}", ErrnoDisplay(*errno))?;
                match explain(ioctl, *errno) {
                    Some(meaning) => write!(f, " ({meaning})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for IrqError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_refusals_are_explained_by_name() {
        let refused = IrqError::from_kernel("KVM_IRQ_LINE", Errno::ENXIO);
        assert_eq!(
            refused.to_string(),
            "KVM_IRQ_LINE failed: ENXIO (No such device or address) (the VM has no in-kernel \
             irqchip; KVM_CREATE_IRQCHIP first)"
        );
        assert_eq!(
            IrqError::from_kernel("KVM_CREATE_PIT2", Errno::ENOENT),
            IrqError::PitWithoutIrqchip
        );
        assert_eq!(
            IrqError::from_kernel("KVM_CREATE_IRQCHIP", Errno::EEXIST).errno(),
            Some(Errno::EEXIST)
        );
    }
}
