//! `--stats`: per exit reason, how many exits and how long the `KVM_RUN` calls that produced
//! them and rawkvm's handling of them took; the busiest ports and MMIO addresses; and the
//! kernel's own counters (`KVM_GET_STATS_FD`) beside rawkvm's.
//!
//! The guest chooses the ports and addresses, so the tables of them are bounded: the first
//! [`DISTINCT`] of each get a count of their own, and exits at any other share one "others"
//! count. The tables have room for that many from the start: memory stays fixed however many
//! addresses a guest touches, and counting an exit allocates nothing.

use std::collections::HashMap;
use std::hash::Hash;
use std::io::{self, Write};

use rawkvm_bindings as abi;

use crate::exit::{Exit, IoDirection};
use crate::trace::kernel_stats::KernelStats;

/// Reasons with their own row: every `KVM_EXIT_*` the bindings know; others share the last.
const REASON_ROWS: usize = abi::EXIT_REASONS.len() + 1;
/// How many ports and MMIO addresses the table lists.
pub const TOP: usize = 5;
/// How many distinct ports, and how many distinct MMIO addresses, get a count of their own.
pub const DISTINCT: usize = 256;

/// Count and time for one exit reason.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReasonStats {
    /// Exits seen.
    pub count: u64,
    /// Nanoseconds spent in the `KVM_RUN` calls that returned them.
    pub run_ns: u64,
    /// Nanoseconds rawkvm spent decoding and handling them.
    pub handle_ns: u64,
}

impl ReasonStats {
    fn add(&mut self, run_ns: u64, handle_ns: u64) {
        self.count += 1;
        self.run_ns = self.run_ns.saturating_add(run_ns);
        self.handle_ns = self.handle_ns.saturating_add(handle_ns);
    }

    fn merge(&mut self, other: &ReasonStats) {
        self.count += other.count;
        self.run_ns = self.run_ns.saturating_add(other.run_ns);
        self.handle_ns = self.handle_ns.saturating_add(other.handle_ns);
    }
}

/// Exits per key (a port or an address, with the direction), for the first [`DISTINCT`] keys
/// seen; exits at later keys share `others`.
#[derive(Debug, Clone)]
struct Tally<K> {
    counts: HashMap<K, u64>,
    others: u64,
}

impl<K: Hash + Eq> Default for Tally<K> {
    /// Room for all [`DISTINCT`] keys from the start, so counting never grows the table
    /// during a run.
    fn default() -> Self {
        Tally {
            counts: HashMap::with_capacity(DISTINCT),
            others: 0,
        }
    }
}

impl<K: Hash + Eq> Tally<K> {
    /// Counts one exit at `key`. Inserts only while fewer than [`DISTINCT`] keys are known
    /// (into room made up front); after that an unknown key costs a lookup and an add.
    fn add(&mut self, key: K) {
        if let Some(count) = self.counts.get_mut(&key) {
            *count += 1;
        } else if self.counts.len() < DISTINCT {
            self.counts.insert(key, 1);
        } else {
            self.others += 1;
        }
    }
}

/// Exit statistics of one vCPU.
#[derive(Debug, Clone)]
pub struct Stats {
    reasons: [ReasonStats; REASON_ROWS],
    interrupted: ReasonStats,
    /// Vectors rawkvm injected with `KVM_INTERRUPT`.
    injected: u64,
    /// Lines raised or lowered by devices (`KVM_IRQ_LINE`, irqfd writes).
    line_events: u64,
    ports: Tally<(u16, bool)>,
    mmio: Tally<(u64, bool)>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            reasons: [ReasonStats::default(); REASON_ROWS],
            interrupted: ReasonStats::default(),
            injected: 0,
            line_events: 0,
            ports: Tally::default(),
            mmio: Tally::default(),
        }
    }
}

fn row(reason: u32) -> usize {
    usize::try_from(reason)
        .ok()
        .filter(|&r| r < REASON_ROWS - 1)
        .unwrap_or(REASON_ROWS - 1)
}

impl Stats {
    /// Counts one exit.
    pub fn record(&mut self, exit: &Exit<'_>, run_ns: u64, handle_ns: u64) {
        self.reasons[row(exit.reason())].add(run_ns, handle_ns);
        match exit {
            Exit::Io(io) => self.ports.add((io.port, io.direction == IoDirection::Out)),
            Exit::Mmio(mmio) => self.mmio.add((mmio.phys_addr, mmio.is_write)),
            _ => {}
        }
    }

    /// Counts a `KVM_RUN` that returned `EINTR`.
    pub fn record_interrupted(&mut self, run_ns: u64) {
        self.interrupted.add(run_ns, 0);
    }

    /// The numbers for `KVM_EXIT_*` number `reason`; reasons the bindings do not know share
    /// one row.
    pub fn reason(&self, reason: u32) -> ReasonStats {
        self.reasons[row(reason)]
    }

    /// All exits together.
    pub fn total(&self) -> ReasonStats {
        let mut total = ReasonStats::default();
        for reason in &self.reasons {
            total.merge(reason);
        }
        total
    }

    /// Counts a vector rawkvm injected with `KVM_INTERRUPT`.
    pub fn record_injection(&mut self) {
        self.injected += 1;
    }

    /// Counts a line a device raised or lowered.
    pub fn record_line_event(&mut self) {
        self.line_events += 1;
    }

    /// Lines devices raised or lowered (`KVM_IRQ_LINE`, irqfd writes).
    pub fn line_events(&self) -> u64 {
        self.line_events
    }

    /// Vectors rawkvm injected with `KVM_INTERRUPT`.
    pub fn injected(&self) -> u64 {
        self.injected
    }

    /// `KVM_RUN` calls interrupted by a signal (`EINTR`, no exit).
    pub fn interrupted(&self) -> ReasonStats {
        self.interrupted
    }

    /// The `n` ports with the most exits: `(port, is_out, exits)`, busiest first. Only the
    /// first [`DISTINCT`] ports seen are counted one by one (see [`Stats::other_ports`]).
    pub fn top_ports(&self, n: usize) -> Vec<(u16, bool, u64)> {
        top(&self.ports.counts, n)
            .into_iter()
            .map(|((port, out), count)| (port, out, count))
            .collect()
    }

    /// The `n` MMIO addresses with the most exits: `(gpa, is_write, exits)`. Only the first
    /// [`DISTINCT`] addresses seen are counted one by one (see [`Stats::other_mmio`]).
    pub fn top_mmio(&self, n: usize) -> Vec<(u64, bool, u64)> {
        top(&self.mmio.counts, n)
            .into_iter()
            .map(|((gpa, write), count)| (gpa, write, count))
            .collect()
    }

    /// Port exits at ports (with their direction) beyond the first [`DISTINCT`] seen.
    pub fn other_ports(&self) -> u64 {
        self.ports.others
    }

    /// MMIO exits at addresses (with their direction) beyond the first [`DISTINCT`] seen.
    pub fn other_mmio(&self) -> u64 {
        self.mmio.others
    }

    /// How many distinct ports and MMIO addresses (with their direction) have a count of their
    /// own: at most [`DISTINCT`] each.
    pub fn distinct(&self) -> (usize, usize) {
        (self.ports.counts.len(), self.mmio.counts.len())
    }

    /// Writes the table of the exits of `vcpus` vCPUs (ids 0 up), with the kernel's counters
    /// of the same vCPUs beside rawkvm's when they were read.
    pub fn write_table(
        &self,
        out: &mut dyn Write,
        vcpus: usize,
        kernel: Option<&KernelCounters>,
    ) -> io::Result<()> {
        let total = self.total();
        match vcpus {
            1 => write!(out, "rawkvm stats, vCPU 0")?,
            n => write!(out, "rawkvm stats, vCPUs 0-{}", n.saturating_sub(1))?,
        }
        writeln!(out, ": {} exits", total.count)?;
        writeln!(
            out,
            "  {:<28} {:>9} {:>13} {:>10} {:>13} {:>10}",
            "reason", "count", "KVM_RUN total", "mean", "rawkvm total", "mean"
        )?;
        let rows = abi::EXIT_REASONS
            .iter()
            .map(|&(nr, name)| (format!("{name}({nr})"), self.reason(nr)))
            .chain([("unknown".to_string(), self.reasons[REASON_ROWS - 1])])
            .chain([("EINTR (no exit)".to_string(), self.interrupted)])
            .filter(|(_, stats)| stats.count > 0)
            .chain([("all exits".to_string(), total)]);
        for (name, stats) in rows {
            writeln!(
                out,
                "  {name:<28} {:>9} {:>13} {:>10} {:>13} {:>10}",
                stats.count,
                duration(stats.run_ns),
                duration(mean(stats.run_ns, stats.count)),
                duration(stats.handle_ns),
                duration(mean(stats.handle_ns, stats.count)),
            )?;
        }
        let ports: Vec<String> = self
            .top_ports(TOP)
            .into_iter()
            .map(|(port, is_out, n)| format!("{port:#x} {} {n}", if is_out { "out" } else { "in" }))
            .collect();
        writeln!(
            out,
            "  top ports: {}{}",
            list_or_none(&ports),
            others_note(self.ports.others, "ports")
        )?;
        let mmio: Vec<String> = self
            .top_mmio(TOP)
            .into_iter()
            .map(|(gpa, write, n)| format!("{gpa:#x} {} {n}", if write { "write" } else { "read" }))
            .collect();
        writeln!(
            out,
            "  top MMIO addresses: {}{}",
            list_or_none(&mmio),
            others_note(self.mmio.others, "addresses")
        )?;
        match kernel {
            Some(kernel) => kernel.write_beside(out, self),
            None => writeln!(
                out,
                "  kernel counters: not available (KVM_CAP_BINARY_STATS_FD)"
            ),
        }
    }
}

fn top<K: Copy + Ord>(map: &HashMap<K, u64>, n: usize) -> Vec<(K, u64)> {
    let mut entries: Vec<(K, u64)> = map.iter().map(|(&k, &v)| (k, v)).collect();
    entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    entries.truncate(n);
    entries
}

/// The vCPU counters of interrupts and halts the kernel handles without an exit.
const IN_KERNEL: &[&str] = &[
    "irq_injections",
    "nmi_injections",
    "halt_wakeup",
    "halt_successful_poll",
    "halt_wait_ns",
];

/// `; 1234 exits at other ports (not counted one by one past the first 256)`, or nothing.
fn others_note(others: u64, what: &str) -> String {
    if others == 0 {
        String::new()
    } else {
        format!(
            "; {others} exits at other {what} (not counted one by one past the first {DISTINCT})"
        )
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

fn mean(total: u64, count: u64) -> u64 {
    total.checked_div(count).unwrap_or(0)
}

/// `812 ns`, `8.21 us`, `372.1 us`, `1.53 ms`, `2.004 s`.
pub fn duration(ns: u64) -> String {
    let ns_f = ns as f64;
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..100_000 => format!("{:.2} us", ns_f / 1e3),
        100_000..1_000_000 => format!("{:.1} us", ns_f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns_f / 1e6),
        _ => format!("{:.3} s", ns_f / 1e9),
    }
}

/// The kernel's statistics files of the vCPU and its VM, read at the end of a run.
#[derive(Debug, Clone, Default)]
pub struct KernelCounters {
    /// The vCPU's statistics, if they could be read.
    pub vcpu: Option<KernelStats>,
    /// The VM's statistics, if they could be read.
    pub vm: Option<KernelStats>,
}

/// Kernel vCPU counters with an exit reason of rawkvm's that counts the same thing; `None`
/// compares with all exits.
const SIDE_BY_SIDE: &[(&str, Option<u32>)] = &[
    ("exits", None),
    ("io_exits", Some(abi::KVM_EXIT_IO)),
    ("mmio_exits", Some(abi::KVM_EXIT_MMIO)),
    ("halt_exits", Some(abi::KVM_EXIT_HLT)),
    ("irq_window_exits", Some(abi::KVM_EXIT_IRQ_WINDOW_OPEN)),
    ("signal_exits", Some(abi::KVM_EXIT_INTR)),
    ("hypercalls", Some(abi::KVM_EXIT_HYPERCALL)),
];

impl KernelCounters {
    /// Writes the comparison rows, then every other non-zero kernel counter.
    pub fn write_beside(&self, out: &mut dyn Write, ours: &Stats) -> io::Result<()> {
        let Some(vcpu) = &self.vcpu else {
            return writeln!(
                out,
                "  kernel counters: the vCPU statistics could not be read"
            );
        };
        writeln!(
            out,
            "  kernel counters ({}, KVM_GET_STATS_FD)  {:>10} {:>10}",
            vcpu.id, "kernel", "rawkvm"
        )?;
        for &(name, reason) in SIDE_BY_SIDE {
            let Some(stat) = vcpu.get(name) else { continue };
            let mine = match reason {
                None => ours.total().count,
                Some(abi::KVM_EXIT_INTR) => {
                    ours.reason(abi::KVM_EXIT_INTR).count + ours.interrupted().count
                }
                Some(reason) => ours.reason(reason).count,
            };
            writeln!(out, "    {name:<38} {:>10} {mine:>10}", stat.total())?;
        }
        // What the kernel did about interrupts without an exit to user space (with an
        // in-kernel irqchip: every injection, every `hlt`), beside what rawkvm injected.
        let in_kernel: Vec<String> = IN_KERNEL
            .iter()
            .filter_map(|&name| vcpu.get(name).map(|s| format!("{name}={}", s.total())))
            .collect();
        writeln!(
            out,
            "  interrupts: rawkvm injected {} (KVM_INTERRUPT), devices set {} lines \
             (KVM_IRQ_LINE, irqfd); the kernel: {}",
            ours.injected(),
            ours.line_events(),
            list_or_none(&in_kernel)
        )?;
        for (label, stats) in [("vCPU", Some(vcpu)), ("VM", self.vm.as_ref())] {
            let Some(stats) = stats else { continue };
            let others: Vec<String> = stats
                .stats
                .iter()
                .filter(|s| !SIDE_BY_SIDE.iter().any(|(name, _)| *name == s.name))
                .filter(|s| !IN_KERNEL.contains(&s.name.as_str()))
                .filter(|s| s.total() != 0)
                .map(|s| format!("{}={}", s.name, s.total()))
                .collect();
            writeln!(
                out,
                "  other non-zero kernel counters ({label} {}): {}",
                stats.id,
                list_or_none(&others)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_a_unit() {
        assert_eq!(duration(812), "812 ns");
        assert_eq!(duration(8_210), "8.21 us");
        assert_eq!(duration(372_100), "372.1 us");
        assert_eq!(duration(1_530_000), "1.53 ms");
        assert_eq!(duration(2_004_000_000), "2.004 s");
    }

    #[test]
    fn rows_and_tops() {
        let mut stats = Stats::default();
        assert_eq!(row(2), 2);
        assert_eq!(row(41), 41);
        assert_eq!(row(42), REASON_ROWS - 1);
        assert_eq!(row(u32::MAX), REASON_ROWS - 1);
        stats.record(&Exit::Hlt, 100, 10);
        stats.record(&Exit::Unknown(1000), 50, 5);
        stats.record_interrupted(7);
        assert_eq!(
            stats.reason(abi::KVM_EXIT_HLT),
            ReasonStats {
                count: 1,
                run_ns: 100,
                handle_ns: 10
            }
        );
        assert_eq!(stats.reason(1000).count, 1);
        assert_eq!(stats.total().count, 2);
        assert_eq!(stats.interrupted().count, 1);
        stats.ports.counts.insert((0x3F8, true), 3);
        stats.ports.counts.insert((0x3FD, false), 5);
        stats.ports.counts.insert((0xE9, true), 3);
        assert_eq!(
            stats.top_ports(2),
            [(0x3FD, false, 5), (0xE9, true, 3)],
            "busiest first, ties by port"
        );
        let mut table = Vec::new();
        stats.write_table(&mut table, 1, None).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.starts_with("rawkvm stats, vCPU 0: 2 exits\n"),
            "{table}"
        );
        assert!(table.contains("KVM_EXIT_HLT(5)"), "{table}");
        assert!(table.contains("\n  unknown "), "{table}");
        assert!(table.contains("0x3fd in 5"), "{table}");
        assert!(!table.contains("other ports"), "{table}");
    }

    /// A guest that touches 100,000 addresses (and every port, more than once) gets
    /// [`DISTINCT`] of each counted one by one and the rest in one count; totals stay exact.
    #[test]
    fn distinct_ports_and_addresses_are_capped() {
        // Miri interprets every hash: fewer addresses there, still far past the cap.
        let exits: u32 = if cfg!(miri) { 2_000 } else { 100_000 };
        let mut stats = Stats::default();
        let mut data = [0u8; 4];
        for i in 0..exits {
            let mmio = Exit::Mmio(crate::exit::Mmio {
                phys_addr: 0x1000_0000 + 8 * u64::from(i),
                is_write: true,
                data: &mut data,
            });
            stats.record(&mmio, 1, 1);
            let io = Exit::Io(crate::exit::Io {
                direction: IoDirection::Out,
                port: (i % 0x1_0000) as u16,
                size: 1,
                count: 1,
                data_offset: 4096,
                data: &mut [0],
            });
            stats.record(&io, 1, 1);
        }
        assert_eq!(stats.distinct(), (DISTINCT, DISTINCT));
        let exits = u64::from(exits);
        assert_eq!(stats.other_mmio(), exits - DISTINCT as u64);
        // Ports 0..256 come round twice (at i and i + 0x10000), both times counted as theirs.
        let repeated = if exits > 0x1_0000 { DISTINCT as u64 } else { 0 };
        assert_eq!(stats.other_ports(), exits - DISTINCT as u64 - repeated);
        assert_eq!(stats.reason(abi::KVM_EXIT_MMIO).count, exits);
        assert_eq!(stats.total().count, 2 * exits);
        assert_eq!(stats.top_mmio(1), [(0x1000_0000, true, 1)]);
        let mut table = Vec::new();
        stats.write_table(&mut table, 4, None).unwrap();
        let table = String::from_utf8(table).unwrap();
        let heading = format!("rawkvm stats, vCPUs 0-3: {} exits\n", 2 * exits);
        assert!(table.starts_with(&heading), "{table}");
        let note = format!(
            "; {} exits at other addresses (not counted one by one past the first 256)",
            exits - DISTINCT as u64
        );
        assert!(table.contains(&note), "{table}");
    }
}
