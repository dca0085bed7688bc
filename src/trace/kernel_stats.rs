//! The kernel's own statistics for a VM or vCPU, read from the file `KVM_GET_STATS_FD` returns
//! (api.rst, "KVM_GET_STATS_FD"; needs `KVM_CAP_BINARY_STATS_FD`).
//!
//! ```text
//! fd = ioctl(vcpu, KVM_GET_STATS_FD, 0)
//! pread(fd, &header, 24, 0)                          struct kvm_stats_header
//! pread(fd, descs, num_desc * (16 + name_size), header.desc_offset)
//!                                                    struct kvm_stats_desc + char name[name_size]
//! pread(fd, data, ..., header.data_offset)           __u64 values; desc.offset is from here
//! ```
//!
//! The file is binary and comes from the kernel, so every count and offset in it is checked
//! (checked arithmetic, caps on `num_desc`, `name_size`, values per statistic and the data
//! block) before a buffer is sized from it.
//! The values are cumulative since the fd's VM or vCPU was created (or instantaneous, or
//! peaks, as each descriptor's type says).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rawkvm_bindings as abi;

/// The most descriptors rawkvm accepts (the kernel has about 60 per vCPU).
pub const MAX_DESCRIPTORS: u32 = 4096;
/// The longest name rawkvm accepts (the kernel's `KVM_STATS_NAME_SIZE` is 48).
pub const MAX_NAME_SIZE: u32 = 4096;
/// The most values one statistic may have (histograms have a few dozen buckets).
pub const MAX_VALUES: u16 = 1024;
/// The largest data block rawkvm reads: every value of [`MAX_DESCRIPTORS`] statistics of
/// [`MAX_VALUES`] values each (32 MiB; the kernel's is a few KiB).
pub const MAX_DATA: u64 = 8 * MAX_DESCRIPTORS as u64 * MAX_VALUES as u64;

/// The type of a statistic (`KVM_STATS_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatKind {
    /// A counter that only grows.
    Cumulative,
    /// A value that goes up and down.
    Instant,
    /// The highest value seen.
    Peak,
    /// A histogram with linear buckets.
    LinearHistogram,
    /// A histogram with power-of-two buckets.
    LogHistogram,
    /// A type this code does not know.
    Other(u32),
}

/// One statistic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// Its name, e.g. `exits`, `io_exits`, `halt_exits`.
    pub name: String,
    /// Its type.
    pub kind: StatKind,
    /// `KVM_STATS_UNIT_*` bits of its flags.
    pub unit: u32,
    /// Power of the base (`KVM_STATS_BASE_*`) to scale values by.
    pub exponent: i16,
    /// The value (one), or the buckets of a histogram.
    pub values: Vec<u64>,
}

impl Stat {
    /// The value of a counter (the sum of the buckets, for a histogram).
    pub fn total(&self) -> u64 {
        self.values
            .iter()
            .fold(0u64, |sum, &v| sum.saturating_add(v))
    }
}

/// What the kernel's statistics file held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelStats {
    /// The id string: `kvm-PID` for a VM, `kvm-PID/vcpu-N` for a vCPU.
    pub id: String,
    /// Every statistic, in the kernel's order.
    pub stats: Vec<Stat>,
}

/// Why a statistics file could not be read.
#[derive(Debug)]
pub enum StatsError {
    /// `pread` failed or came back short.
    Io(io::Error),
    /// The header or a descriptor held a value rawkvm refuses.
    Malformed(&'static str),
}

impl std::fmt::Display for StatsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatsError::Io(error) => write!(f, "cannot read the KVM statistics file: {error}"),
            StatsError::Malformed(what) => {
                write!(f, "the KVM statistics file is malformed: {what}")
            }
        }
    }
}

impl std::error::Error for StatsError {}

impl From<io::Error> for StatsError {
    fn from(error: io::Error) -> Self {
        StatsError::Io(error)
    }
}

const HEADER_SIZE: usize = size_of::<abi::kvm_stats_header>();
const DESC_SIZE: usize = size_of::<abi::kvm_stats_desc>();

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let end = offset.checked_add(4)?;
    Some(u32::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let end = offset.checked_add(2)?;
    Some(u16::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let end = offset.checked_add(8)?;
    Some(u64::from_le_bytes(bytes.get(offset..end)?.try_into().ok()?))
}

/// A descriptor, before its values are read.
struct Descriptor {
    name: String,
    flags: u32,
    exponent: i16,
    count: u16,
    offset: u32,
}

impl KernelStats {
    /// Reads a statistics file (from `KVM_GET_STATS_FD`).
    pub fn read(file: &File) -> Result<KernelStats, StatsError> {
        KernelStats::read_with(|buf, offset| file.read_exact_at(buf, offset))
    }

    /// Reads through `read_at(buffer, offset)`, which must fill the buffer or fail: the
    /// parser, independent of where the bytes come from.
    pub fn read_with(
        mut read_at: impl FnMut(&mut [u8], u64) -> io::Result<()>,
    ) -> Result<KernelStats, StatsError> {
        use StatsError::Malformed;
        let mut header = [0u8; HEADER_SIZE];
        read_at(&mut header, 0)?;
        let field = |offset| u32_at(&header, offset).ok_or(Malformed("short header"));
        let (name_size, num_desc) = (field(4)?, field(8)?);
        let (id_offset, desc_offset, data_offset) = (field(12)?, field(16)?, field(20)?);
        if num_desc > MAX_DESCRIPTORS {
            return Err(Malformed("num_desc above 4096"));
        }
        if name_size == 0 || name_size > MAX_NAME_SIZE {
            return Err(Malformed("name_size is 0 or above 4096"));
        }
        let name_size = name_size as usize;
        let mut id = vec![0u8; name_size];
        read_at(&mut id, u64::from(id_offset))?;
        let stride = DESC_SIZE + name_size;
        let table_len = stride
            .checked_mul(num_desc as usize)
            .ok_or(Malformed("descriptor table size overflows"))?;
        let mut table = vec![0u8; table_len];
        read_at(&mut table, u64::from(desc_offset))?;
        let descriptors = table
            .chunks_exact(stride)
            .map(|entry| parse_descriptor(entry, name_size))
            .collect::<Result<Vec<_>, _>>()?;
        let data_len = descriptors
            .iter()
            .map(|d| u64::from(d.offset) + 8 * u64::from(d.count))
            .max()
            .unwrap_or(0);
        if data_len > MAX_DATA {
            return Err(Malformed("a value lies past 32 MiB of data"));
        }
        let data_len = usize::try_from(data_len).map_err(|_| Malformed("data too large"))?;
        let mut data = vec![0u8; data_len];
        read_at(&mut data, u64::from(data_offset))?;
        let stats = descriptors
            .into_iter()
            .map(|d| {
                let values = (0..usize::from(d.count))
                    .map(|i| u64_at(&data, d.offset as usize + 8 * i))
                    .collect::<Option<Vec<u64>>>()
                    .ok_or(Malformed("a value lies outside the data block"))?;
                Ok(Stat {
                    name: d.name,
                    kind: kind_of(d.flags),
                    unit: d.flags & abi::KVM_STATS_UNIT_MASK,
                    exponent: d.exponent,
                    values,
                })
            })
            .collect::<Result<Vec<_>, StatsError>>()?;
        Ok(KernelStats {
            id: c_string(&id),
            stats,
        })
    }

    /// The statistic called `name`, if the kernel has it.
    pub fn get(&self, name: &str) -> Option<&Stat> {
        self.stats.iter().find(|stat| stat.name == name)
    }

    /// Adds `other`'s values (another vCPU's) to the statistics of the same name: peaks keep
    /// the higher value, everything else (counters, histogram buckets) is summed. Statistics
    /// only `other` has are ignored; the vCPUs of one kernel all have the same ones.
    pub fn accumulate(&mut self, other: &KernelStats) {
        for theirs in &other.stats {
            let Some(ours) = self.stats.iter_mut().find(|s| s.name == theirs.name) else {
                continue;
            };
            let peak = ours.kind == StatKind::Peak;
            for (mine, &value) in ours.values.iter_mut().zip(&theirs.values) {
                *mine = if peak {
                    (*mine).max(value)
                } else {
                    mine.saturating_add(value)
                };
            }
        }
    }
}

fn parse_descriptor(entry: &[u8], name_size: usize) -> Result<Descriptor, StatsError> {
    let short = || StatsError::Malformed("short descriptor");
    let flags = u32_at(entry, 0).ok_or_else(short)?;
    let exponent = i16::from_le_bytes(u16_at(entry, 4).ok_or_else(short)?.to_le_bytes());
    let count = u16_at(entry, 6).ok_or_else(short)?;
    let offset = u32_at(entry, 8).ok_or_else(short)?;
    if count > MAX_VALUES {
        return Err(StatsError::Malformed(
            "a statistic has more than 1024 values",
        ));
    }
    let name = entry
        .get(DESC_SIZE..DESC_SIZE + name_size)
        .map(c_string)
        .ok_or(StatsError::Malformed("short descriptor name"))?;
    Ok(Descriptor {
        name,
        flags,
        exponent,
        count,
        offset,
    })
}

fn kind_of(flags: u32) -> StatKind {
    match flags & abi::KVM_STATS_TYPE_MASK {
        abi::KVM_STATS_TYPE_CUMULATIVE => StatKind::Cumulative,
        abi::KVM_STATS_TYPE_INSTANT => StatKind::Instant,
        abi::KVM_STATS_TYPE_PEAK => StatKind::Peak,
        abi::KVM_STATS_TYPE_LINEAR_HIST => StatKind::LinearHistogram,
        abi::KVM_STATS_TYPE_LOG_HIST => StatKind::LogHistogram,
        other => StatKind::Other(other),
    }
}

/// The bytes up to the first NUL, as text (lossily).
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statistics file: header, id, descriptors, data, laid out as the kernel does.
    fn file(name_size: u32, stats: &[(&str, u32, &[u64])]) -> Vec<u8> {
        let id_offset = HEADER_SIZE as u32;
        let desc_offset = id_offset + name_size;
        let stride = DESC_SIZE as u32 + name_size;
        let data_offset = desc_offset + stride * stats.len() as u32;
        let mut out = Vec::new();
        for v in [
            0,
            name_size,
            stats.len() as u32,
            id_offset,
            desc_offset,
            data_offset,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let mut id = b"kvm-1/vcpu-0".to_vec();
        id.resize(name_size as usize, 0);
        out.extend_from_slice(&id);
        let mut value_offset = 0u32;
        for (name, flags, values) in stats {
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&0i16.to_le_bytes());
            out.extend_from_slice(&(values.len() as u16).to_le_bytes());
            out.extend_from_slice(&value_offset.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            let mut bytes = name.as_bytes().to_vec();
            bytes.resize(name_size as usize, 0);
            out.extend_from_slice(&bytes);
            value_offset += 8 * values.len() as u32;
        }
        for (_, _, values) in stats {
            for v in *values {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn parse(bytes: &[u8]) -> Result<KernelStats, StatsError> {
        KernelStats::read_with(|buf, offset| {
            let start = usize::try_from(offset).unwrap();
            let end = start.checked_add(buf.len()).unwrap();
            let src = bytes
                .get(start..end)
                .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
            buf.copy_from_slice(src);
            Ok(())
        })
    }

    #[test]
    fn a_well_formed_file_parses() {
        let bytes = file(
            48,
            &[
                ("exits", abi::KVM_STATS_TYPE_CUMULATIVE, &[45]),
                ("io_exits", abi::KVM_STATS_TYPE_CUMULATIVE, &[44]),
                ("halt_wait_hist", abi::KVM_STATS_TYPE_LOG_HIST, &[1, 2, 3]),
            ],
        );
        let stats = parse(&bytes).unwrap();
        assert_eq!(stats.id, "kvm-1/vcpu-0");
        assert_eq!(stats.get("exits").unwrap().values, [45]);
        assert_eq!(stats.get("io_exits").unwrap().total(), 44);
        let hist = stats.get("halt_wait_hist").unwrap();
        assert_eq!((hist.kind, hist.total()), (StatKind::LogHistogram, 6));
        assert!(stats.get("nope").is_none());
    }

    #[test]
    fn vcpus_accumulate_by_name() {
        let mut sum = parse(&file(
            48,
            &[
                ("exits", abi::KVM_STATS_TYPE_CUMULATIVE, &[45]),
                ("halt_poll_max", abi::KVM_STATS_TYPE_PEAK, &[7]),
                ("halt_wait_hist", abi::KVM_STATS_TYPE_LOG_HIST, &[1, 2, 3]),
            ],
        ))
        .unwrap();
        let other = parse(&file(
            48,
            &[
                (
                    "halt_wait_hist",
                    abi::KVM_STATS_TYPE_LOG_HIST,
                    &[10, 20, 30],
                ),
                ("halt_poll_max", abi::KVM_STATS_TYPE_PEAK, &[5]),
                ("exits", abi::KVM_STATS_TYPE_CUMULATIVE, &[u64::MAX]),
                ("only_there", abi::KVM_STATS_TYPE_CUMULATIVE, &[1]),
            ],
        ))
        .unwrap();
        sum.accumulate(&other);
        assert_eq!(sum.get("exits").unwrap().values, [u64::MAX], "saturates");
        assert_eq!(
            sum.get("halt_poll_max").unwrap().values,
            [7],
            "a peak is a maximum"
        );
        assert_eq!(sum.get("halt_wait_hist").unwrap().values, [11, 22, 33]);
        assert!(sum.get("only_there").is_none());
        assert_eq!(sum.stats.len(), 3);
    }

    #[test]
    fn hostile_headers_are_refused_without_huge_allocations() {
        let good = file(48, &[("exits", 0, &[1])]);
        let with = |offset: usize, value: u32| {
            let mut bytes = good.clone();
            bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
            parse(&bytes)
        };
        assert!(matches!(with(8, u32::MAX), Err(StatsError::Malformed(_))));
        assert!(matches!(with(4, 0), Err(StatsError::Malformed(_))));
        assert!(matches!(with(4, u32::MAX), Err(StatsError::Malformed(_))));
        // Offsets past the end of the file: a short read, not a panic.
        assert!(matches!(with(16, u32::MAX), Err(StatsError::Io(_))));
        assert!(matches!(with(20, u32::MAX - 2), Err(StatsError::Io(_))));
        assert!(matches!(parse(&good[..10]), Err(StatsError::Io(_))));
        // A descriptor whose values lie past the data the file has.
        let mut bytes = good.clone();
        let desc = HEADER_SIZE + 48;
        bytes[desc + 8..desc + 12].copy_from_slice(&4096u32.to_le_bytes());
        assert!(matches!(parse(&bytes), Err(StatsError::Io(_))));
        // One far past any real data block: refused before a 4 GiB buffer is sized from it.
        let mut far = bytes.clone();
        far[desc + 8..desc + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            parse(&far),
            Err(StatsError::Malformed("a value lies past 32 MiB of data"))
        ));
        bytes[desc + 6..desc + 8].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(parse(&bytes), Err(StatsError::Malformed(_))));
    }
}
