//! CPUID on the real `/dev/kvm`: `KVM_GET_SUPPORTED_CPUID`, `KVM_SET_CPUID2` on every vCPU of a
//! machine, what a guest's `cpuid` sees (the `cpuid_vendor` guest), the typed refusal of a set
//! after the first run, and `rawkvm cpuid --json`.
#![cfg(target_arch = "x86_64")]

mod common;

use common::json::{self, Json};
use common::{Recorder, Seen, assert_fails, backend, guest_machine, kvm_or_skip, process};
use rawkvm::arch::x86_64::cpuid::{CpuidTable, RAWKVM_SIGNATURE, default_table};
use rawkvm::devices::Devices;
use rawkvm::error::{CpuError, Error};

/// The vendor string of the host CPU, from `/proc/cpuinfo` (`vendor_id`).
fn host_vendor() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let line = cpuinfo
        .lines()
        .find(|line| line.starts_with("vendor_id"))
        .expect("vendor_id in /proc/cpuinfo");
    line.split(':').nth(1).unwrap().trim().to_string()
}

#[test]
fn the_supported_table_has_the_host_vendor() {
    let Some(kvm) = kvm_or_skip("the_supported_table_has_the_host_vendor") else {
        return;
    };
    let table = kvm.supported_cpuid().unwrap();
    eprintln!(
        "backend {}: {} supported entries",
        backend(),
        table.entries().len()
    );
    assert!(!table.entries().is_empty());
    assert_eq!(
        String::from_utf8_lossy(&table.vendor().unwrap()),
        host_vendor()
    );
    // KVM names itself in the hypervisor leaf; rawkvm's default table names rawkvm instead.
    assert_eq!(table.hypervisor_signature(), Some(*b"KVMKVMKVM\0\0\0"));
    let ours = default_table(&kvm, None).unwrap();
    assert_eq!(ours.hypervisor_signature(), Some(RAWKVM_SIGNATURE));
    assert_eq!(ours.entries().len(), table.entries().len());
    // Asked once: a second call copies the same answer.
    assert_eq!(kvm.supported_cpuid().unwrap(), table);
}

/// Runs `cpuid_vendor` with `vendor` and returns its exits and console bytes.
fn run_cpuid_vendor(kvm: &rawkvm::Kvm, vendor: Option<[u8; 12]>) -> (Vec<Seen>, Vec<u8>) {
    let mut machine = guest_machine(kvm, "cpuid_vendor", |config| {
        config.cpu.cpuid_vendor = vendor
    })
    .unwrap();
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    machine.run(&mut devices, &mut recorder).unwrap();
    (recorder.exits, devices.console.into_sink().unwrap())
}

#[test]
fn the_guest_sees_the_vendor_and_the_rawkvm_hypervisor_leaf() {
    let Some(kvm) = kvm_or_skip("the_guest_sees_the_vendor_and_the_rawkvm_hypervisor_leaf") else {
        return;
    };
    let (exits, console) = run_cpuid_vendor(&kvm, None);
    let expected = format!("{}\nrawkvmrawkvm\n", host_vendor());
    assert_eq!(String::from_utf8_lossy(&console), expected);
    let mut sequence: Vec<Seen> = expected.bytes().map(|b| Seen::out(0xE9, b)).collect();
    sequence.push(Seen::Hlt);
    assert_eq!(exits, sequence);

    let (_, console) = run_cpuid_vendor(&kvm, Some(*b"rawkvmCPU123"));
    assert_eq!(console, b"rawkvmCPU123\nrawkvmrawkvm\n");
}

#[test]
fn the_cli_vendor_flag_reaches_the_guest_and_checks_its_length() {
    if kvm_or_skip("the_cli_vendor_flag_reaches_the_guest_and_checks_its_length").is_none() {
        return;
    }
    let output = process::run(&["run", "cpuid_vendor", "--cpuid-vendor", "GenuineIntel"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(output.stdout, b"GenuineIntel\nrawkvmrawkvm\n");
    for (bad, len) in [("Intel", 5), ("GenuineIntel!", 13), ("", 0)] {
        let output = process::run(&["run", "cpuid_vendor", "--cpuid-vendor", bad]);
        assert_fails(&output, 2, &format!("is {len} bytes"));
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn a_vcpu_without_set_cpuid2_has_no_table_and_a_machine_sets_one() {
    let Some(kvm) = kvm_or_skip("a_vcpu_without_set_cpuid2_has_no_table_and_a_machine_sets_one")
    else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let bare = vm.create_vcpu(0).unwrap();
    assert_eq!(bare.cpuid().unwrap(), CpuidTable::default());
    let mut machine = guest_machine(&kvm, "hlt", |config| config.vcpus = 2).unwrap();
    for vcpu in machine.vcpus_mut() {
        let got = vcpu.cpuid().unwrap();
        assert_eq!(got.hypervisor_signature(), Some(RAWKVM_SIGNATURE));
        assert_eq!(
            got.vendor().map(Vec::from),
            Some(host_vendor().into_bytes())
        );
    }
}

#[test]
fn after_the_first_run_only_the_read_back_table_may_be_set() {
    let Some(kvm) = kvm_or_skip("after_the_first_run_only_the_read_back_table_may_be_set") else {
        return;
    };
    let mut machine = guest_machine(&kvm, "hlt", |_| {}).unwrap();
    let mut changed = default_table(&kvm, Some(*b"SomethingNew")).unwrap();
    // Before the run any table goes, as often as wanted.
    let vcpu = &machine.vcpus_mut()[0];
    assert!(!vcpu.has_run());
    vcpu.set_cpuid(&changed).unwrap();
    changed.set_vendor(*b"AnotherVendr");
    vcpu.set_cpuid(&changed).unwrap();
    machine
        .run(&mut Devices::new(Vec::new()), &mut Recorder::default())
        .unwrap();
    let vcpu = &machine.vcpus_mut()[0];
    assert!(vcpu.has_run());
    changed.set_vendor(*b"TooLateVendr");
    match vcpu.set_cpuid(&changed) {
        Err(Error::Cpu(CpuError::CpuidAfterRun { vcpu: 0 })) => {}
        other => panic!("expected CpuidAfterRun, got {other:?}"),
    }
    let message = vcpu.set_cpuid(&changed).unwrap_err().to_string();
    assert!(message.contains("KVM_GET_CPUID2"), "{message}");
    // The table as the kernel has it is accepted, and the guest keeps the vendor set last.
    let current = vcpu.cpuid().unwrap();
    assert_eq!(current.vendor(), Some(*b"AnotherVendr"));
    vcpu.set_cpuid(&current).unwrap();
}

/// The object under `key`, which must be there.
fn get<'a>(json: &'a Json, key: &str) -> &'a Json {
    json.get(key).unwrap_or_else(|| panic!("no {key:?}"))
}

#[test]
fn cpuid_json_describes_the_table_and_what_the_guest_gets() {
    let Some(kvm) = kvm_or_skip("cpuid_json_describes_the_table_and_what_the_guest_gets") else {
        return;
    };
    let output = process::run(&["cpuid", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8(output.stdout).unwrap();
    json::python_parses(&text);
    let report = json::parse(&text).unwrap();
    let supported = kvm.supported_cpuid().unwrap();
    let table = get(&report, "table").as_array().unwrap();
    assert_eq!(get(&report, "entries").as_u64(), Some(table.len() as u64));
    assert_eq!(table.len(), supported.entries().len());
    assert_eq!(get(&table[0], "function").as_u64(), Some(0));
    assert_eq!(
        get(&table[0], "ebx").as_u64(),
        Some(u64::from(supported.entries()[0].ebx))
    );
    assert_eq!(
        get(&report, "vendor").as_str(),
        Some(host_vendor().as_str())
    );
    assert_eq!(
        get(&report, "hypervisor").as_str(),
        Some("KVMKVMKVM\\0\\0\\0")
    );
    let features = get(&report, "features").as_array().unwrap();
    assert_eq!(features.len(), 7);
    let leaf1_edx = &features[1];
    assert_eq!(get(leaf1_edx, "register").as_str(), Some("edx"));
    let names: Vec<&str> = get(leaf1_edx, "names")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    // Every x86-64 CPU has these.
    for name in ["FPU", "TSC", "MSR", "PAE", "CX8", "SSE", "SSE2"] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }
    let guest = get(&report, "guest");
    assert_eq!(get(guest, "hypervisor").as_str(), Some("rawkvmrawkvm"));
    let changes = get(guest, "changes").as_array().unwrap();
    // An entry the kernel dropped ("got": null) must have been all zeros: kvm_pvm on an Intel
    // host drops the empty leaves 0x1D, 0x1E and 0x24 that way.
    let (dropped, rewritten): (Vec<&Json>, Vec<&Json>) = changes
        .iter()
        .partition(|c| get(c, "got").as_u64().is_none());
    for change in &dropped {
        assert_eq!(get(change, "set").as_u64(), Some(0), "{change:?}");
    }
    let leaves: Vec<u64> = rewritten
        .iter()
        .filter_map(|c| get(c, "function").as_u64())
        .collect();
    eprintln!(
        "backend {}: the kernel rewrote {} registers, leaves {leaves:x?}; dropped {} zero registers",
        backend(),
        rewritten.len(),
        dropped.len()
    );
    if backend() == "kvm_pvm" {
        // This backend ORs the host's feature bits into leaves 1 and 7 and resizes 0xD.
        assert!(leaves.contains(&1) && leaves.contains(&7), "{leaves:x?}");
        assert!(
            leaves.iter().all(|leaf| [1, 7, 0xd].contains(leaf)),
            "{leaves:x?}"
        );
        let gained_in_leaf1 = changes
            .iter()
            .filter(|c| get(c, "function").as_u64() == Some(1))
            .flat_map(|c| get(c, "gained").as_array().unwrap())
            .count();
        assert!(gained_in_leaf1 > 0);
    }
    for change in changes {
        let set = get(change, "set").as_u64();
        let got = get(change, "got").as_u64();
        assert_ne!(set, got, "a change that changes nothing");
    }
}
