//! CPUID: what the guest's `cpuid` instruction returns, set by the host on every vCPU.
//!
//! ```text
//! ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &{ nent: 128, entries })  E2BIG: too little room; try
//!                                                               again with twice as much
//!     (asked once per open device, then kept)
//! leaf 0x4000_0000 ebx:ecx:edx = "rawkvmrawkvm"                 the hypervisor leaf names rawkvm
//! leaf 0 ebx:edx:ecx = --cpuid-vendor                           if given (12 bytes)
//! ioctl(vcpu, KVM_SET_CPUID2, &{ nent, entries })               before the first KVM_RUN
//! ioctl(vcpu, KVM_GET_CPUID2, &{ nent: room, entries })         what the vCPU has now
//! ```
//!
//! A vCPU that never got `KVM_SET_CPUID2` reads zeros from every leaf: no long mode (so a guest
//! writing `EFER.LME` gets #GP), no APIC timer modes. [`crate::machine::Machine`] therefore sets
//! a table on every vCPU: the supported one, with the hypervisor leaf's signature
//! [`RAWKVM_SIGNATURE`] instead of KVM's `KVMKVMKVM` (so a Linux guest does not enable KVM's
//! paravirtual features, which rawkvm does not set up), and the vendor string of
//! `--cpuid-vendor` if given.
//!
//! The kernel may adjust what it is given: on `kvm_pvm` leaves 1, 7 and 0xD come back with the
//! host's feature bits ORed in (`rawkvm cpuid` shows the difference, read with
//! `KVM_GET_CPUID2`). After the first `KVM_RUN` the kernel accepts `KVM_SET_CPUID2` only with
//! exactly the table it already has (`EINVAL` otherwise); [`Vcpu::set_cpuid`] checks that
//! first and returns [`CpuError::CpuidAfterRun`] without asking.

use rawkvm_bindings::{KVM_CPUID_FLAG_SIGNIFCANT_INDEX, kvm_cpuid_entry2, kvm_cpuid2};

use crate::error::{CpuError, Error};
use crate::kvm::Kvm;
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::{FlexArray, FlexError, FlexReadsWrites, Ioctl, system, vcpu};

/// The hypervisor leaf: `ebx:ecx:edx` name the hypervisor, `eax` is its highest leaf.
pub const HYPERVISOR_LEAF: u32 = 0x4000_0000;
/// What rawkvm puts in the hypervisor leaf (`ebx`, `ecx`, `edx`: "rawk", "vmra", "wkvm").
pub const RAWKVM_SIGNATURE: [u8; 12] = *b"rawkvmrawkvm";
/// The leaves of the processor brand string (`eax:ebx:ecx:edx` each, 48 bytes).
pub const BRAND_LEAVES: [u32; 3] = [0x8000_0002, 0x8000_0003, 0x8000_0004];

/// Room offered to the first `KVM_GET_SUPPORTED_CPUID`/`KVM_GET_CPUID2` (71 entries on the
/// project's hosts; the kernel's own limit, `KVM_MAX_CPUID_ENTRIES`, is 256).
const FIRST_ROOM: usize = 128;
/// Room beyond which rawkvm stops doubling.
const MAX_ROOM: usize = 4096;

/// A CPUID table: the entries of `KVM_SET_CPUID2`/`KVM_GET_CPUID2`, in the kernel's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CpuidTable {
    entries: Vec<kvm_cpuid_entry2>,
}

impl CpuidTable {
    /// A table of these entries.
    pub fn new(entries: Vec<kvm_cpuid_entry2>) -> CpuidTable {
        CpuidTable { entries }
    }

    /// The entries.
    pub fn entries(&self) -> &[kvm_cpuid_entry2] {
        &self.entries
    }

    /// The entry the guest's `cpuid` with `eax = function, ecx = index` reads: `index` counts
    /// only where the entry says it does (`KVM_CPUID_FLAG_SIGNIFCANT_INDEX`).
    pub fn get(&self, function: u32, index: u32) -> Option<&kvm_cpuid_entry2> {
        self.entries.iter().find(|e| matches(e, function, index))
    }

    fn get_mut(&mut self, function: u32, index: u32) -> Option<&mut kvm_cpuid_entry2> {
        self.entries
            .iter_mut()
            .find(|e| matches(e, function, index))
    }

    /// The vendor string of leaf 0 (`ebx:edx:ecx`: "AuthenticAMD", "GenuineIntel").
    pub fn vendor(&self) -> Option<[u8; 12]> {
        self.get(0, 0).map(|e| bytes12(e.ebx, e.edx, e.ecx))
    }

    /// Replaces the vendor string of leaf 0 (which is added if absent).
    pub fn set_vendor(&mut self, vendor: [u8; 12]) {
        let [ebx, edx, ecx] = words12(vendor);
        let entry = self.entry_or_insert(0);
        (entry.ebx, entry.edx, entry.ecx) = (ebx, edx, ecx);
    }

    /// The hypervisor leaf's signature (`ebx:ecx:edx`: "KVMKVMKVM\0\0\0", "rawkvmrawkvm").
    pub fn hypervisor_signature(&self) -> Option<[u8; 12]> {
        self.get(HYPERVISOR_LEAF, 0)
            .map(|e| bytes12(e.ebx, e.ecx, e.edx))
    }

    /// Replaces the hypervisor leaf's signature, adding the leaf (as its own highest leaf) if
    /// the table has none.
    pub fn set_hypervisor_signature(&mut self, signature: [u8; 12]) {
        let [ebx, ecx, edx] = words12(signature);
        let entry = self.entry_or_insert(HYPERVISOR_LEAF);
        if entry.eax == 0 {
            entry.eax = HYPERVISOR_LEAF;
        }
        (entry.ebx, entry.ecx, entry.edx) = (ebx, ecx, edx);
    }

    /// The processor brand string of leaves 0x8000_0002..=4, trimmed, if they are there and
    /// not blank.
    pub fn brand(&self) -> Option<String> {
        let mut bytes = Vec::with_capacity(48);
        for leaf in BRAND_LEAVES {
            let e = self.get(leaf, 0)?;
            for word in [e.eax, e.ebx, e.ecx, e.edx] {
                bytes.extend_from_slice(&word.to_le_bytes());
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        let brand = text.trim_matches(|c: char| c == '\0' || c == ' ');
        (!brand.is_empty()).then(|| brand.to_string())
    }

    fn entry_or_insert(&mut self, function: u32) -> &mut kvm_cpuid_entry2 {
        if self.get(function, 0).is_none() {
            self.entries.push(kvm_cpuid_entry2 {
                function,
                ..Default::default()
            });
        }
        // Present now.
        let found = self.get_mut(function, 0);
        found.unwrap_or_else(|| unreachable!("leaf {function:#x} was just added"))
    }

    /// Whether `other` holds the same entries, in the same order, as the kernel compares them
    /// after a run (function, index, flags and the four registers; padding aside).
    pub fn same_as(&self, other: &CpuidTable) -> bool {
        let key = |e: &kvm_cpuid_entry2| (e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx);
        self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| key(a) == key(b))
    }
}

fn matches(entry: &kvm_cpuid_entry2, function: u32, index: u32) -> bool {
    entry.function == function
        && (entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX == 0 || entry.index == index)
}

/// Three registers' bytes in order, as CPUID strings are laid out.
fn bytes12(a: u32, b: u32, c: u32) -> [u8; 12] {
    let mut out = [0; 12];
    for (chunk, word) in out.chunks_exact_mut(4).zip([a, b, c]) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    out
}

fn words12(bytes: [u8; 12]) -> [u32; 3] {
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    [word(0), word(4), word(8)]
}

/// A 12-byte CPUID string as text (NULs shown as `\0`).
pub fn cpuid_string(bytes: &[u8; 12]) -> String {
    bytes.escape_ascii().to_string().replace("\\x00", "\\0")
}

/// Parses `--cpuid-vendor STR`: exactly 12 bytes.
pub fn parse_vendor(text: &str) -> Result<[u8; 12], String> {
    <[u8; 12]>::try_from(text.as_bytes()).map_err(|_| {
        format!(
            "the CPUID vendor string is exactly 12 bytes (as \"GenuineIntel\", \"AuthenticAMD\"); \
             {text:?} is {} bytes",
            text.len()
        )
    })
}

/// The table rawkvm gives every vCPU: the supported one, the hypervisor leaf naming rawkvm,
/// and `vendor` in leaf 0 if given.
pub fn default_table(kvm: &Kvm, vendor: Option<[u8; 12]>) -> Result<CpuidTable, Error> {
    let mut table = kvm.supported_cpuid()?;
    table.set_hypervisor_signature(RAWKVM_SIGNATURE);
    if let Some(vendor) = vendor {
        table.set_vendor(vendor);
    }
    Ok(table)
}

/// `ioctl(fd, GET, &{ nent: room })`, doubling the room from `room` while the kernel says
/// `E2BIG`.
fn get_growing(
    fd: std::os::fd::BorrowedFd<'_>,
    ioctl: &Ioctl<FlexReadsWrites<kvm_cpuid2>>,
    mut room: usize,
) -> Result<Vec<kvm_cpuid_entry2>, Error> {
    loop {
        let mut buf = FlexArray::<kvm_cpuid2>::with_capacity(room);
        match ioctl.call(fd, &mut buf) {
            Ok(_) => return Ok(buf.entries().to_vec()),
            Err(FlexError::Kernel(nix::errno::Errno::E2BIG)) if room < MAX_ROOM => room *= 2,
            Err(FlexError::Kernel(nix::errno::Errno::E2BIG)) => {
                return Err(CpuError::CpuidTooLarge {
                    ioctl: ioctl.name,
                    entries: room,
                }
                .into());
            }
            Err(error) => return Err(flex_error(ioctl.name, error)),
        }
    }
}

/// A flexible-array ioctl's failure as an [`Error`].
pub(crate) fn flex_error(ioctl: &'static str, error: FlexError) -> Error {
    match error {
        FlexError::Kernel(errno) => Error::Ioctl { ioctl, errno },
        // The tables here are built with their counts; a count above the room is a bug.
        FlexError::CountTooLarge { .. } => Error::Ioctl {
            ioctl,
            errno: nix::errno::Errno::E2BIG,
        },
    }
}

impl Kvm {
    /// `ioctl(kvm, KVM_GET_SUPPORTED_CPUID, ...)`: every leaf KVM can give a guest, with the
    /// host's values where KVM passes them through. Asked once; later calls copy the answer.
    pub fn supported_cpuid(&self) -> Result<CpuidTable, Error> {
        if let Some(entries) = self.supported_cpuid.get() {
            return Ok(CpuidTable::new(entries.clone()));
        }
        let entries = get_growing(self.fd(), &system::GET_SUPPORTED_CPUID, FIRST_ROOM)?;
        // Another thread may have asked meanwhile; both answers are the kernel's.
        let _ = self.supported_cpuid.set(entries.clone());
        Ok(CpuidTable::new(entries))
    }
}

impl Vcpu {
    /// `ioctl(vcpu, KVM_SET_CPUID2, &table)`: what the guest's `cpuid` returns (the kernel
    /// may adjust some leaves: read them back with [`Vcpu::cpuid`]).
    ///
    /// After this vCPU's first `KVM_RUN` only the table it already has is accepted: anything
    /// else is [`CpuError::CpuidAfterRun`], found with `KVM_GET_CPUID2` before asking.
    pub fn set_cpuid(&self, table: &CpuidTable) -> Result<(), Error> {
        if self.has_run() && !self.cpuid()?.same_as(table) {
            return Err(CpuError::CpuidAfterRun { vcpu: self.id() }.into());
        }
        let buf = FlexArray::from_entries(kvm_cpuid2::default(), table.entries());
        vcpu::SET_CPUID2
            .call(self.fd(), &buf)
            .map(drop)
            .map_err(|error| flex_error(vcpu::SET_CPUID2.name, error))
    }

    /// `ioctl(vcpu, KVM_GET_CPUID2, ...)`: the table this vCPU has (empty before any set).
    pub fn cpuid(&self) -> Result<CpuidTable, Error> {
        get_growing(self.fd(), &vcpu::GET_CPUID2, FIRST_ROOM).map(CpuidTable::new)
    }
}

/// One register of one entry that differs between the table set and the table read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuidChange {
    /// The leaf.
    pub function: u32,
    /// The subleaf.
    pub index: u32,
    /// `"eax"`, `"ebx"`, `"ecx"` or `"edx"`.
    pub register: &'static str,
    /// The value set, or `None` if the entry was not in the table set.
    pub set: Option<u32>,
    /// The value read back, or `None` if the kernel dropped the entry.
    pub got: Option<u32>,
}

/// The names of an entry's four output registers, in [`register_values`] order.
pub const REGISTER_NAMES: [&str; 4] = ["eax", "ebx", "ecx", "edx"];

/// An entry's four output registers: `eax`, `ebx`, `ecx`, `edx`.
pub fn register_values(entry: &kvm_cpuid_entry2) -> [u32; 4] {
    [entry.eax, entry.ebx, entry.ecx, entry.edx]
}

/// Every register that differs between `set` and `got`, entries matched by leaf and subleaf,
/// in the order of `set` (then entries only `got` has).
pub fn diff(set: &CpuidTable, got: &CpuidTable) -> Vec<CpuidChange> {
    let find = |table: &CpuidTable, e: &kvm_cpuid_entry2| {
        table
            .entries
            .iter()
            .find(|o| (o.function, o.index) == (e.function, e.index))
            .map(register_values)
    };
    let mut changes = Vec::new();
    let mut compare = |entry: &kvm_cpuid_entry2, set: Option<[u32; 4]>, got: Option<[u32; 4]>| {
        for (i, register) in REGISTER_NAMES.into_iter().enumerate() {
            let (set, got) = (set.map(|v| v[i]), got.map(|v| v[i]));
            if set != got {
                changes.push(CpuidChange {
                    function: entry.function,
                    index: entry.index,
                    register,
                    set,
                    got,
                });
            }
        }
    };
    for entry in &set.entries {
        compare(entry, Some(register_values(entry)), find(got, entry));
    }
    for entry in got.entries.iter().filter(|e| find(set, e).is_none()) {
        compare(entry, None, Some(register_values(entry)));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(function: u32, eax: u32, ebx: u32, ecx: u32, edx: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            eax,
            ebx,
            ecx,
            edx,
            ..Default::default()
        }
    }

    /// Starting with room for 1 entry, both GETs meet `E2BIG` and grow to the same table.
    #[test]
    #[cfg_attr(miri, ignore = "opens /dev/kvm")]
    fn the_room_grows_on_e2big() {
        if !std::path::Path::new(crate::kvm::DEFAULT_DEVICE).exists() {
            eprintln!("SKIPPED: /dev/kvm unavailable (the_room_grows_on_e2big)");
            return;
        }
        let kvm = Kvm::open().unwrap();
        let supported = kvm.supported_cpuid().unwrap();
        assert!(supported.entries().len() > 1);
        let grown = get_growing(kvm.fd(), &system::GET_SUPPORTED_CPUID, 1).unwrap();
        assert_eq!(grown, supported.entries());
        let vm = kvm.create_vm().unwrap();
        let vcpu = vm.create_vcpu(0).unwrap();
        vcpu.set_cpuid(&supported).unwrap();
        let read_back = get_growing(vcpu.fd(), &vcpu::GET_CPUID2, 1).unwrap();
        assert_eq!(read_back, vcpu.cpuid().unwrap().entries());
        // The kernel keeps every entry it was given, or drops one whose registers are all
        // zero (kvm_pvm on an Intel host drops leaves 0x1D, 0x1E and 0x24 that way).
        let kept = |e: &kvm_cpuid_entry2| {
            read_back
                .iter()
                .any(|r| (r.function, r.index) == (e.function, e.index))
        };
        for entry in supported.entries() {
            assert!(
                kept(entry) || register_values(entry) == [0; 4],
                "leaf {:#x}.{} dropped though not all zero",
                entry.function,
                entry.index
            );
        }
        assert!(read_back.iter().all(|r| {
            supported
                .entries()
                .iter()
                .any(|e| (e.function, e.index) == (r.function, r.index))
        }));
    }

    #[test]
    fn vendor_and_signature_round_trip() {
        // "AuthenticAMD" as the hardware returns it.
        let mut table = CpuidTable::new(vec![leaf(0, 0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65)]);
        assert_eq!(table.vendor(), Some(*b"AuthenticAMD"));
        table.set_vendor(*b"GenuineIntel");
        assert_eq!(table.vendor(), Some(*b"GenuineIntel"));
        assert_eq!(table.get(0, 0).unwrap().ebx, u32::from_le_bytes(*b"Genu"));
        assert_eq!(table.hypervisor_signature(), None);
        table.set_hypervisor_signature(RAWKVM_SIGNATURE);
        assert_eq!(table.hypervisor_signature(), Some(*b"rawkvmrawkvm"));
        assert_eq!(table.get(HYPERVISOR_LEAF, 0).unwrap().eax, HYPERVISOR_LEAF);
        assert_eq!(cpuid_string(b"KVMKVMKVM\0\0\0"), "KVMKVMKVM\\0\\0\\0");
    }

    #[test]
    fn the_vendor_must_be_12_bytes() {
        assert_eq!(parse_vendor("GenuineIntel"), Ok(*b"GenuineIntel"));
        let error = parse_vendor("short").unwrap_err();
        assert!(error.contains("is 5 bytes"), "{error}");
        assert!(
            parse_vendor("thirteen byte")
                .unwrap_err()
                .contains("13 bytes")
        );
    }

    #[test]
    fn subleaves_count_only_when_significant() {
        let mut seven = leaf(7, 0, 1, 0, 0);
        seven.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        let mut seven_one = seven;
        (seven_one.index, seven_one.ebx) = (1, 2);
        let table = CpuidTable::new(vec![leaf(1, 5, 0, 0, 0), seven, seven_one]);
        assert_eq!(table.get(1, 9).unwrap().eax, 5);
        assert_eq!(table.get(7, 1).unwrap().ebx, 2);
        assert!(table.get(7, 2).is_none());
    }

    #[test]
    fn the_diff_names_each_changed_register() {
        let set = CpuidTable::new(vec![leaf(1, 1, 2, 3, 4), leaf(2, 0, 0, 0, 0)]);
        let got = CpuidTable::new(vec![leaf(1, 1, 2, 0xff, 4), leaf(3, 9, 0, 0, 0)]);
        let changes = diff(&set, &got);
        let summary: Vec<_> = changes
            .iter()
            .map(|c| (c.function, c.register, c.set, c.got))
            .collect();
        assert_eq!(
            summary,
            [
                (1, "ecx", Some(3), Some(0xff)),
                (2, "eax", Some(0), None),
                (2, "ebx", Some(0), None),
                (2, "ecx", Some(0), None),
                (2, "edx", Some(0), None),
                (3, "eax", None, Some(9)),
                (3, "ebx", None, Some(0)),
                (3, "ecx", None, Some(0)),
                (3, "edx", None, Some(0)),
            ]
        );
        assert!(diff(&set, &set).is_empty());
        assert!(set.same_as(&set.clone()) && !set.same_as(&got));
    }
}
