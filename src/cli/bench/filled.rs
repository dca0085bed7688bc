//! A guest whose RAM is partly full, for `bench snapshot` and `bench fork`: the `hlt` guest in
//! RAM of any size with PERCENT of its pages holding data, as a booted guest's would, so that
//! a snapshot has pages to save and a cold start has pages to load.
//!
//! Pages are filled in clusters of 16 (64 KiB), spread evenly from page 16 on (pages 0 to 15
//! hold the parameter block and the image): cluster `c` is filled when `c * PERCENT / 100`
//! steps up from `c - 1`: the even clusters at 50 %, all of them at 100 %. Every word is a
//! SplitMix64 value of its own index, forced odd, so no filled page is zero and no two are
//! alike. Neighbouring filled clusters make one run.

use rawkvm::kvm::Kvm;
use rawkvm::machine::image::Image;
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::snapshot::PageRun;
use rawkvm::units::{Size, parse_size, parse_u64};

use super::embedded;
use crate::cli::args::parse_flag;
use crate::cli::status::CliError;

/// The x86 page, the grain of snapshot runs (the benchmarks are x86-only).
pub const PAGE: u64 = 4096;
const WORDS_PER_PAGE: usize = (PAGE / 8) as usize;
/// Pages per cluster.
const CLUSTER: u64 = 16;

/// `--mem SIZE`: what `MachineConfig::validate` accepts (a multiple of the page, 4 GiB at
/// most), checked here so the message names the flag before anything is built.
pub fn parse_mem(command: &str, flag: &str, text: &str) -> Result<u64, CliError> {
    let size = parse_flag(flag, text, parse_size).map_err(CliError::Usage)?;
    let limit = rawkvm::machine::MAX_MEM_SIZE;
    if size < 2 * PAGE || size % PAGE != 0 || size > limit {
        return Err(CliError::Usage(format!(
            "{command}: {flag} {text}: RAM must be a multiple of 4 KiB, from 8 KiB (the image \
             is at 0x1000) to {}",
            Size(limit)
        )));
    }
    Ok(size)
}

/// `--fill PERCENT`: 0 to 100.
pub fn parse_fill(command: &str, flag: &str, text: &str) -> Result<u64, CliError> {
    let percent = parse_flag(flag, text, parse_u64).map_err(CliError::Usage)?;
    if percent > 100 {
        return Err(CliError::Usage(format!(
            "{command}: {flag} {text}: the share of the guest's pages to fill, in percent: 0 \
             to 100"
        )));
    }
    Ok(percent)
}

/// The `hlt` guest in `mem_size` bytes of RAM and the data its filled pages hold.
#[derive(Debug)]
pub struct FilledGuest {
    /// The machine's configuration (RAM size; everything else the default).
    pub config: MachineConfig,
    /// The `hlt` guest.
    pub image: Image,
    /// The filled pages, in runs by ascending page.
    pub runs: Vec<PageRun>,
}

impl FilledGuest {
    /// The guest of `mem_size` bytes with `percent` of its pages filled.
    pub fn new(mem_size: u64, percent: u64) -> Result<FilledGuest, CliError> {
        let guest = embedded("hlt")?;
        let config = MachineConfig {
            mem_size,
            ..MachineConfig::default()
        };
        let pages = mem_size / PAGE;
        let filled = |cluster: u64| cluster * percent / 100 > (cluster - 1) * percent / 100;
        let mut runs: Vec<PageRun> = Vec::new();
        for cluster in (1..pages.div_ceil(CLUSTER)).filter(|&c| filled(c)) {
            let first = cluster * CLUSTER;
            let end = (first + CLUSTER).min(pages);
            let words = (first * WORDS_PER_PAGE as u64..end * WORDS_PER_PAGE as u64).map(word);
            match runs.last_mut() {
                Some(run)
                    if run.first_page + (run.words.len() / WORDS_PER_PAGE) as u64 == first =>
                {
                    run.words.extend(words)
                }
                _ => runs.push(PageRun {
                    first_page: first,
                    words: words.collect(),
                }),
            }
        }
        Ok(FilledGuest {
            config,
            image: Image::embedded(guest.name, guest.image),
            runs,
        })
    }

    /// Bytes of the filled pages.
    pub fn filled_bytes(&self) -> u64 {
        self.runs.iter().map(|run| run.words.len() as u64 * 8).sum()
    }

    /// A cold start of the guest: `Machine::new`, then the filled pages written in (one bulk
    /// copy per run), as a loader of an image holding the same data would.
    pub fn cold_start(&self, kvm: &Kvm) -> Result<Machine, CliError> {
        let machine = Machine::new(kvm, &self.config, &self.image)?;
        let memory = machine.vm().memory();
        for run in &self.runs {
            memory.write_words(run.first_page * PAGE, &run.words)?;
        }
        Ok(machine)
    }
}

/// SplitMix64 of `index`, forced odd (never zero).
fn word(index: u64) -> u64 {
    let mut z = index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(guest: &FilledGuest) -> Vec<(u64, u64)> {
        guest
            .runs
            .iter()
            .map(|run| (run.first_page, run.words.len() as u64 / 512))
            .collect()
    }

    #[test]
    fn clusters_are_spread_evenly_and_merge_into_runs() {
        // 1 MiB: 256 pages, 16 clusters, cluster 0 never filled.
        assert_eq!(pages(&FilledGuest::new(1 << 20, 0).unwrap()), []);
        assert_eq!(pages(&FilledGuest::new(1 << 20, 100).unwrap()), [(16, 240)]);
        // At 50 % the even clusters: 2 * 50 / 100 steps up from 1 * 50 / 100.
        let half = FilledGuest::new(1 << 20, 50).unwrap();
        assert_eq!(
            pages(&half),
            (2..16).step_by(2).map(|c| (c * 16, 16)).collect::<Vec<_>>()
        );
        assert_eq!(half.filled_bytes(), 7 * 16 * 4096);
        assert!(
            half.runs
                .iter()
                .all(|run| run.words.iter().all(|&w| w != 0))
        );
        // A size that is not a whole number of clusters: the last run stops at the end.
        assert_eq!(pages(&FilledGuest::new(20 * 4096, 100).unwrap()), [(16, 4)]);
    }

    #[test]
    fn sizes_and_percentages_are_checked() {
        assert_eq!(parse_mem("b", "--mem", "64M").unwrap(), 64 << 20);
        assert_eq!(parse_mem("b", "--mem", "4G").unwrap(), 4 << 30);
        for bad in ["4K", "5000", "8G", "x"] {
            assert!(matches!(
                parse_mem("b", "--mem", bad),
                Err(CliError::Usage(_))
            ));
        }
        assert_eq!(parse_fill("b", "--fill", "100").unwrap(), 100);
        assert!(matches!(
            parse_fill("b", "--fill", "101"),
            Err(CliError::Usage(_))
        ));
    }
}
