//! Which interrupt controller a machine has, and setting it up (`--irqchip`, setup key
//! `irqchip=`).
//!
//! ```text
//! kernel:  ioctl(vm, KVM_CREATE_IRQCHIP, 0)           before any vCPU
//!          ioctl(vm, KVM_CREATE_PIT2, &{ KVM_PIT_SPEAKER_DUMMY })
//!          ioctl(vm, KVM_SET_GSI_ROUTING, &default_routes())
//! user:    an 8259 pair in rawkvm (devices::pic); KVM_INTERRUPT at any exit that reports
//!          ready_for_interrupt_injection, request_interrupt_window only while one is pending
//! none:    nothing; `cli; hlt` ends the run with KVM_EXIT_HLT
//! ```
//!
//! The default is `none` unless the guest's setup asks for one: every guest and flat image
//! written to rawkvm's conventions ends with `hlt`, which with an in-kernel local APIC waits in
//! the kernel for an interrupt that never comes instead of ending the run.

use std::fmt;
use std::sync::Arc;

use crate::devices::pic::UserPic;
use crate::kvm::irq::{DEFAULT_GSIS, GsiRoute};

/// The interrupt controller of a machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IrqChip {
    /// None: no timer, no lines; `KVM_INTERRUPT` at an interrupt window (setup key `irq=`).
    #[default]
    None,
    /// rawkvm's own 8259 pair ([`crate::devices::pic`]), injecting with `KVM_INTERRUPT`.
    User,
    /// The kernel's PIC, IOAPIC, local APICs and PIT (`KVM_CREATE_IRQCHIP`, `KVM_CREATE_PIT2`).
    Kernel,
}

impl IrqChip {
    /// Parses `kernel`, `user` or `none`.
    pub fn parse(text: &str) -> Result<IrqChip, String> {
        match text {
            "kernel" => Ok(IrqChip::Kernel),
            "user" => Ok(IrqChip::User),
            "none" => Ok(IrqChip::None),
            other => Err(format!(
                "irqchip {other:?}: expected kernel (in-kernel PIC, IOAPIC, LAPIC and PIT), \
                 user (rawkvm's 8259 pair) or none"
            )),
        }
    }
}

impl fmt::Display for IrqChip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IrqChip::None => "none",
            IrqChip::User => "user",
            IrqChip::Kernel => "kernel",
        })
    }
}

/// The routing `KVM_CREATE_IRQCHIP` installs on x86, written out (the kernel's
/// `default_routing`, `arch/x86/kvm/irq_comm.c`): GSIs 0-15 to the IOAPIC pin of the same
/// number and to the PIC (master for 0-7, slave for 8-15, pin `gsi % 8`), GSIs 16-23 to the
/// IOAPIC only.
pub fn default_routes() -> Vec<GsiRoute> {
    use rawkvm_bindings::x86_64::{
        KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
    };
    let mut routes = Vec::with_capacity(40);
    for gsi in 0..DEFAULT_GSIS {
        routes.push(GsiRoute::Irqchip {
            gsi,
            chip: KVM_IRQCHIP_IOAPIC,
            pin: gsi,
        });
        if gsi < 16 {
            let chip = if gsi < 8 {
                KVM_IRQCHIP_PIC_MASTER
            } else {
                KVM_IRQCHIP_PIC_SLAVE
            };
            routes.push(GsiRoute::Irqchip {
                gsi,
                chip,
                pin: gsi % 8,
            });
        }
    }
    routes
}

/// Gives `vm` the in-kernel irqchip, the PIT and the default routing, before any vCPU.
#[cfg(target_arch = "x86_64")]
pub fn create_kernel_irqchip(vm: &crate::kvm::vm::Vm) -> Result<(), crate::error::Error> {
    vm.create_irqchip()?;
    vm.create_pit2(rawkvm_bindings::KVM_PIT_SPEAKER_DUMMY)?;
    vm.set_gsi_routing(&default_routes())
}

/// The user-space controller of a machine with [`IrqChip::User`].
pub fn create_user_pic() -> Arc<UserPic> {
    Arc::new(UserPic::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_routing_is_the_kernels() {
        let routes = default_routes();
        assert_eq!(routes.len(), 16 * 2 + 8);
        assert_eq!(
            routes[3],
            GsiRoute::Irqchip {
                gsi: 1,
                chip: 0,
                pin: 1
            }
        );
        assert_eq!(
            routes.iter().filter(|r| r.gsi() == 10).count(),
            2,
            "IOAPIC pin 10 and slave PIC pin 2"
        );
        assert_eq!(routes.last().map(GsiRoute::gsi), Some(23));
    }

    #[test]
    fn modes_parse_and_print() {
        for mode in [IrqChip::None, IrqChip::User, IrqChip::Kernel] {
            assert_eq!(IrqChip::parse(&mode.to_string()), Ok(mode));
        }
        assert!(
            IrqChip::parse("split")
                .unwrap_err()
                .contains("expected kernel")
        );
    }
}
