//! Nothing leaks (`docs/TEST-PLAN.md` §8 C 27, G4): thousands of VMs built, run and dropped, and
//! every error path driven a thousand times, leave the counts of open fds, mappings and
//! threads exactly where they were, and no KVM object (`anon_inode:kvm-vm`, `kvm-vcpu:N`)
//! behind.
//!
//! One test binary with one test, so no other test's fds, mappings or threads come and go
//! while it counts. It runs itself again with `MALLOC_ARENA_MAX=1`: glibc gives threads that
//! allocate at the same time malloc arenas of their own (a 64 MiB reservation each, two lines
//! in `/proc/self/maps`), created on demand up to 8 per core and never returned. They are
//! bounded, not leaks, but they would make the mapping count depend on thread timing.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{kvm_or_skip, region};
use nix::errno::Errno;
use rawkvm::Kvm;
use rawkvm::devices::Devices;
use rawkvm::error::{Error, ImageError, RegionProblem};
use rawkvm::machine::guests;
use rawkvm::machine::image::Image;
use rawkvm::machine::supervisor::{RunControl, StopCause};
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::{NoObserver, Outcome};

/// What the process holds: open fds, mapping lines, threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counts {
    fds: usize,
    maps: usize,
    threads: usize,
}

fn counts() -> Counts {
    let entries = |dir: &str| std::fs::read_dir(dir).unwrap().count();
    Counts {
        fds: entries("/proc/self/fd"),
        maps: std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .count(),
        threads: entries("/proc/self/task"),
    }
}

/// Every fd link and mapping that names a KVM VM or vCPU.
fn kvm_objects() -> Vec<String> {
    let is_kvm = |text: &str| text.contains("anon_inode:kvm-vm") || text.contains("kvm-vcpu");
    let mut found: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .map(|target| target.display().to_string())
        .filter(|target| is_kvm(target))
        .collect();
    found.extend(
        std::fs::read_to_string("/proc/self/maps")
            .unwrap()
            .lines()
            .filter(|line| is_kvm(line))
            .map(str::to_string),
    );
    found
}

fn embedded(name: &str) -> Image {
    let guest = guests::find(name).unwrap();
    Image::embedded(guest.name, guest.image)
}

fn config(vcpus: u32) -> MachineConfig {
    MachineConfig {
        mem_size: 64 << 10,
        vcpus,
        ..MachineConfig::default()
    }
}

/// Builds a 64 KiB machine running `guest` on `vcpus` vCPUs and runs them all on threads.
fn run_all(
    kvm: &Kvm,
    guest: &str,
    vcpus: u32,
    timeout: Option<Duration>,
    control: &RunControl,
) -> Result<(), Error> {
    let mut machine = Machine::new(kvm, &config(vcpus), &embedded(guest)).unwrap();
    let devices = Mutex::new(Devices::new(std::io::sink()));
    machine.run_all(&devices, &NoObserver, timeout, control)
}

/// One scenario: a name, how often, and one iteration (which checks its own result).
struct Case<'a> {
    name: &'static str,
    iterations: u32,
    run: Box<dyn Fn() + 'a>,
}

/// The variable that keeps glibc to one malloc arena (see the module docs).
const ARENA_MAX: &str = "MALLOC_ARENA_MAX";

#[test]
fn nothing_leaks_on_success_or_on_any_error_path() {
    if std::env::var_os(ARENA_MAX).is_none() {
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "nothing_leaks_on_success_or_on_any_error_path"])
            .args(["--nocapture", "--test-threads=1"])
            .env(ARENA_MAX, "1")
            .status()
            .unwrap();
        assert!(status.success(), "the leak test failed: {status}");
        return;
    }
    let Some(kvm) = kvm_or_skip("nothing_leaks_on_success_or_on_any_error_path") else {
        return;
    };
    let kvm = &kvm;
    let too_large_file =
        std::env::temp_dir().join(format!("rawkvm-leaks-{}.bin", std::process::id()));
    std::fs::write(&too_large_file, vec![0x90u8; 0xF001]).unwrap();
    let too_large_file = too_large_file.as_path();
    let max_vcpus = kvm.create_vm().unwrap().max_vcpus().unwrap();

    let cases: Vec<Case> = vec![
        Case {
            name: "create VM (64 KiB, 1 vCPU), run hlt, drop",
            iterations: 5000,
            run: Box::new(|| {
                let mut machine = Machine::new(kvm, &config(1), &embedded("hlt")).unwrap();
                let mut devices = Devices::new(std::io::sink());
                assert_eq!(
                    machine.run(&mut devices, &mut NoObserver).unwrap(),
                    Outcome::Halted
                );
            }),
        },
        Case {
            name: "image too big (file read, and embedded)",
            iterations: 1000,
            run: Box::new(|| {
                let image = Image::from_file(too_large_file, 0xF000).unwrap();
                assert!(matches!(
                    image.check_fits(0x1000, 64 << 10, &[]),
                    Err(ImageError::TooLarge { size: 0xF001, .. })
                ));
                assert!(matches!(
                    Machine::new(kvm, &config(1), &image),
                    Err(Error::Image(ImageError::TooLarge { .. }))
                ));
            }),
        },
        Case {
            name: "overlapping memory slot",
            iterations: 1000,
            run: Box::new(|| {
                let mut vm = kvm.create_vm().unwrap();
                vm.add_memory_region(region(0, 0, 2 << 20)).unwrap();
                assert!(matches!(
                    vm.add_memory_region(region(1, 1 << 20, 2 << 20)),
                    Err(Error::InvalidRegion {
                        reason: RegionProblem::Overlaps { .. },
                        ..
                    })
                ));
            }),
        },
        Case {
            name: "256 TiB of RAM cannot be reserved",
            iterations: 1000,
            run: Box::new(|| {
                let mut vm = kvm.create_vm().unwrap();
                assert!(matches!(
                    vm.add_memory_region(region(0, 0, 256 << 40)),
                    Err(Error::MapMemory {
                        errno: Errno::ENOMEM,
                        ..
                    })
                ));
            }),
        },
        Case {
            name: "invalid sregs (CR0.PG without CR0.PE)",
            iterations: 1000,
            run: Box::new(|| {
                let vm = kvm.create_vm().unwrap();
                let vcpu = vm.create_vcpu(0).unwrap();
                let mut sregs = vcpu.sregs().unwrap();
                sregs.cr0 = (sregs.cr0 | 1 << 31) & !1;
                assert!(matches!(
                    vcpu.set_sregs(&sregs),
                    Err(Error::RegistersRejected { .. })
                ));
            }),
        },
        Case {
            name: "duplicate vCPU id",
            iterations: 1000,
            run: Box::new(|| {
                let vm = kvm.create_vm().unwrap();
                let _vcpu = vm.create_vcpu(0).unwrap();
                assert!(matches!(
                    vm.create_vcpu(0),
                    Err(Error::CreateVcpu {
                        errno: Errno::EEXIST,
                        ..
                    })
                ));
            }),
        },
        Case {
            name: "timeout (spin, 1 ms)",
            iterations: 1000,
            run: Box::new(|| {
                let timeout = Some(Duration::from_millis(1));
                let result = run_all(kvm, "spin", 1, timeout, &RunControl::new());
                assert!(matches!(result, Err(Error::Timeout { .. })), "{result:?}");
            }),
        },
        Case {
            name: "stop requested (a signal), 2 vCPUs",
            iterations: 500,
            run: Box::new(|| {
                let control = RunControl::new();
                control.request_stop(StopCause::Signal(libc::SIGINT));
                let result = run_all(kvm, "spin", 2, None, &control);
                assert!(
                    matches!(result, Err(Error::Interrupted { .. })),
                    "{result:?}"
                );
            }),
        },
        Case {
            name: "guest fault stops the others (smp_fault, 4 vCPUs)",
            iterations: 200,
            run: Box::new(|| {
                let result = run_all(kvm, "smp_fault", 4, None, &RunControl::new());
                assert!(
                    matches!(result, Err(Error::GuestFault { .. })),
                    "{result:?}"
                );
            }),
        },
        Case {
            name: "not a KVM device (/dev/null)",
            iterations: 1000,
            run: Box::new(|| {
                assert!(matches!(
                    Kvm::open_path("/dev/null"),
                    Err(Error::NotKvm { .. })
                ));
            }),
        },
        Case {
            name: "KVM_CAP_MAX_VCPUS + 1 vCPUs: rollback of the vCPUs already made",
            iterations: 3,
            run: Box::new(|| {
                assert!(matches!(
                    Machine::new(kvm, &config(max_vcpus + 1), &embedded("smp")),
                    Err(Error::CreateVcpu {
                        errno: Errno::EINVAL,
                        ..
                    })
                ));
            }),
        },
    ];

    // Warm up: the first run of each case may set up things that stay for the process's life
    // (the kick signal's handler, thread-local storage, the allocator's arenas).
    for case in &cases {
        (case.run)();
    }
    let before = counts();
    let maps_before = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert_eq!(
        kvm_objects(),
        Vec::<String>::new(),
        "KVM objects before the test"
    );
    let started = Instant::now();
    for case in &cases {
        let case_started = Instant::now();
        for _ in 0..case.iterations {
            (case.run)();
        }
        let after = counts();
        println!(
            "{:>5} × {}: {:?}, counts {:?}",
            case.iterations,
            case.name,
            case_started.elapsed(),
            after
        );
        if after != before {
            let now = std::fs::read_to_string("/proc/self/maps").unwrap();
            let new: Vec<&str> = now.lines().filter(|l| !maps_before.contains(l)).collect();
            panic!(
                "after {} × {}: counts {after:?}, before {before:?}; new mappings:\n{}",
                case.iterations,
                case.name,
                new.join("\n")
            );
        }
        assert_eq!(
            kvm_objects(),
            Vec::<String>::new(),
            "KVM objects left after {}",
            case.name
        );
    }
    println!(
        "backend {}: counts before {before:?}, after {:?}, in {:?}",
        common::backend(),
        counts(),
        started.elapsed()
    );
    let _ = std::fs::remove_file(too_large_file);
    assert!(Path::new("/proc/self/fd").exists());
}
