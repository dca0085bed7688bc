//! The trace's line around an exit's payload: `#12 vcpu0 KVM_EXIT_IO(2)`, the payload as
//! [`crate::exit::text`] writes it, then ` unclaimed` and ` run_ns=8211`.

use crate::devices::bus::Claim;
use crate::exit::Exit;
use crate::exit::text::{push_dec, push_hex, push_item, push_reason};

/// What the trace knows about one exit besides its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineHeader {
    /// Exit number in this run, from 1.
    pub seq: u64,
    /// vCPU id.
    pub vcpu: u32,
    /// Nanoseconds the `KVM_RUN` that produced it took.
    pub run_ns: u64,
    /// How the access was dispatched, for IO, MMIO and MSR exits.
    pub dispatch: Option<Claim>,
}

/// Appends `#seq vcpuN REASON(nr)`.
pub fn push_header_start(out: &mut Vec<u8>, header: &LineHeader, reason: u32) {
    out.push(b'#');
    push_dec(out, header.seq);
    out.extend_from_slice(b" vcpu");
    push_dec(out, u64::from(header.vcpu));
    out.push(b' ');
    push_reason(out, reason);
}

/// Appends ` unclaimed` (when no device took the access) and ` run_ns=N`, then a newline.
pub fn push_header_end(out: &mut Vec<u8>, header: &LineHeader) {
    if header.dispatch == Some(Claim::Unclaimed) {
        out.extend_from_slice(b" unclaimed");
    }
    out.extend_from_slice(b" run_ns=");
    push_dec(out, header.run_ns);
    out.push(b'\n');
}

/// Appends a whole trace line for `exit`.
pub fn push_line(out: &mut Vec<u8>, header: &LineHeader, exit: &Exit<'_>) {
    push_header_start(out, header, exit.reason());
    exit.visit(&mut |item| push_item(out, &item));
    push_header_end(out, header);
}

/// `    vcpu0 injected vector 0x20 with KVM_INTERRUPT\n`: the line after the exit at which
/// rawkvm injected an interrupt.
pub fn push_injection(out: &mut Vec<u8>, vcpu: u32, vector: u8) {
    out.extend_from_slice(b"    vcpu");
    push_dec(out, u64::from(vcpu));
    out.extend_from_slice(b" injected vector ");
    push_hex(out, u64::from(vector));
    out.extend_from_slice(b" with KVM_INTERRUPT\n");
}

/// `    KVM_IRQ_LINE gsi=3 level=1\n` or `    irqfd gsi=4 (eventfd write)\n`: a line a device
/// raised or lowered, outside any exit.
pub fn push_line_event(out: &mut Vec<u8>, event: crate::kvm::irq::LineEvent) {
    use crate::kvm::irq::LineEvent;
    match event {
        LineEvent::Level { gsi, level } => {
            out.extend_from_slice(b"    KVM_IRQ_LINE gsi=");
            push_dec(out, u64::from(gsi));
            out.extend_from_slice(if level { b" level=1\n" } else { b" level=0\n" });
        }
        LineEvent::Irqfd { gsi } => {
            out.extend_from_slice(b"    irqfd gsi=");
            push_dec(out, u64::from(gsi));
            out.extend_from_slice(b" (eventfd write, KVM_IRQFD)\n");
        }
    }
}
