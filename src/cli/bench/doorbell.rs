//! `rawkvm bench doorbell`: N writes to each of two doorbells (port 0x512, GPA 0x100000; the
//! `doorbell` guest), as full exits and through `KVM_IOEVENTFD`, timed from the first
//! `KVM_RUN` to the HLT.
//!
//! ```text
//! doorbell writes=2N total_ns=T ns_per_write=X exit_ns_per_write=Y ratio=Y/X variant=ioeventfd
//! doorbell writes=2N total_ns=T ns_per_write=Y variant=exit
//! ```
//!
//! The `ioeventfd` variant runs both ways back to back on fresh machines and gives their ratio,
//! measured in one run. The eventfds must have counted every write (checked, or the line is
//! not printed).

use std::time::Instant;

use crate::cli::status::CliError;
use rawkvm::devices::Devices;
use rawkvm::kvm::Kvm;
use rawkvm::kvm::irq::{Bus, Doorbell, IoEventFd};
use rawkvm::machine::image::Image;
use rawkvm::run_loop::ExitCounter;

use super::workloads::machine;

/// The guest's two doorbells, any width.
const DOORBELLS: [Doorbell; 2] = [
    Doorbell {
        bus: Bus::Pio,
        addr: 0x512,
        len: 0,
        datamatch: None,
    },
    Doorbell {
        bus: Bus::Mmio,
        addr: 0x10_0000,
        len: 0,
        datamatch: None,
    },
];

/// One timed run of `doorbell` with `count` writes per doorbell: nanoseconds and exits.
fn timed(kvm: &Kvm, image: &Image, count: u64, ioeventfd: bool) -> Result<(u128, u64), CliError> {
    let mut machine = machine(kvm, image, count, false)?;
    let eventfds = if ioeventfd {
        DOORBELLS
            .iter()
            .map(|&doorbell| machine.vm().ioeventfd(doorbell))
            .collect::<Result<Vec<IoEventFd>, _>>()?
    } else {
        Vec::new()
    };
    let mut devices = Devices::new(std::io::sink());
    let mut exits = ExitCounter::default();
    let started = Instant::now();
    machine.run(&mut devices, &mut exits)?;
    let total_ns = started.elapsed().as_nanos();
    for eventfd in &eventfds {
        let caught = eventfd.take_count()?;
        if caught != count {
            return Err(CliError::Usage(format!(
                "bench doorbell: the eventfd of {:?} counted {caught} writes, not {count}",
                eventfd.doorbell()
            )));
        }
    }
    Ok((total_ns, exits.exits))
}

/// The result line for `variant` (`ioeventfd` or `exit`).
pub fn measure(kvm: &Kvm, variant: &str, count: u64, image: &Image) -> Result<String, CliError> {
    let writes = 2 * count;
    let per_write = |ns: u128| ns as f64 / writes as f64;
    let (exit_ns, _) = timed(kvm, image, count, false)?;
    if variant == "exit" {
        return Ok(format!(
            "doorbell writes={writes} total_ns={exit_ns} ns_per_write={:.1} variant=exit",
            per_write(exit_ns)
        ));
    }
    let (total_ns, exits) = timed(kvm, image, count, true)?;
    Ok(format!(
        "doorbell writes={writes} total_ns={total_ns} ns_per_write={:.1} \
         exit_ns_per_write={:.1} ratio={:.2} exits={exits} variant=ioeventfd",
        per_write(total_ns),
        per_write(exit_ns),
        exit_ns as f64 / total_ns.max(1) as f64
    ))
}
