//! The names of CPUID feature bits, as the Intel SDM (vol. 2A, "CPUID") and the AMD APM
//! (vol. 3, appendix E) give them, for the registers `rawkvm cpuid` decodes: leaf 1 ECX and
//! EDX, leaf 7 subleaf 0 EBX, ECX and EDX, and leaf 0x8000_0001 ECX and EDX. Bits not listed
//! are reserved (or too obscure to name) and print as `bitN`.

/// One register of one leaf whose bits are features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeatureRegister {
    /// The leaf (EAX input).
    pub function: u32,
    /// The subleaf (ECX input).
    pub index: u32,
    /// `"ecx"`, `"edx"`, ...
    pub register: &'static str,
    /// `(bit, name)`, by bit.
    pub bits: &'static [(u8, &'static str)],
}

/// Every register decoded, in the order `rawkvm cpuid` prints them.
pub const FEATURE_REGISTERS: &[FeatureRegister] = &[
    FeatureRegister {
        function: 1,
        index: 0,
        register: "ecx",
        bits: LEAF1_ECX,
    },
    FeatureRegister {
        function: 1,
        index: 0,
        register: "edx",
        bits: LEAF1_EDX,
    },
    FeatureRegister {
        function: 7,
        index: 0,
        register: "ebx",
        bits: LEAF7_EBX,
    },
    FeatureRegister {
        function: 7,
        index: 0,
        register: "ecx",
        bits: LEAF7_ECX,
    },
    FeatureRegister {
        function: 7,
        index: 0,
        register: "edx",
        bits: LEAF7_EDX,
    },
    FeatureRegister {
        function: 0x8000_0001,
        index: 0,
        register: "ecx",
        bits: EXT1_ECX,
    },
    FeatureRegister {
        function: 0x8000_0001,
        index: 0,
        register: "edx",
        bits: EXT1_EDX,
    },
];

const LEAF1_ECX: &[(u8, &str)] = &[
    (0, "SSE3"),
    (1, "PCLMULQDQ"),
    (2, "DTES64"),
    (3, "MONITOR"),
    (4, "DS_CPL"),
    (5, "VMX"),
    (6, "SMX"),
    (7, "EST"),
    (8, "TM2"),
    (9, "SSSE3"),
    (10, "CNXT_ID"),
    (11, "SDBG"),
    (12, "FMA"),
    (13, "CX16"),
    (14, "XTPR"),
    (15, "PDCM"),
    (17, "PCID"),
    (18, "DCA"),
    (19, "SSE4_1"),
    (20, "SSE4_2"),
    (21, "X2APIC"),
    (22, "MOVBE"),
    (23, "POPCNT"),
    (24, "TSC_DEADLINE"),
    (25, "AES"),
    (26, "XSAVE"),
    (27, "OSXSAVE"),
    (28, "AVX"),
    (29, "F16C"),
    (30, "RDRAND"),
    (31, "HYPERVISOR"),
];

const LEAF1_EDX: &[(u8, &str)] = &[
    (0, "FPU"),
    (1, "VME"),
    (2, "DE"),
    (3, "PSE"),
    (4, "TSC"),
    (5, "MSR"),
    (6, "PAE"),
    (7, "MCE"),
    (8, "CX8"),
    (9, "APIC"),
    (11, "SEP"),
    (12, "MTRR"),
    (13, "PGE"),
    (14, "MCA"),
    (15, "CMOV"),
    (16, "PAT"),
    (17, "PSE36"),
    (18, "PSN"),
    (19, "CLFSH"),
    (21, "DS"),
    (22, "ACPI"),
    (23, "MMX"),
    (24, "FXSR"),
    (25, "SSE"),
    (26, "SSE2"),
    (27, "SS"),
    (28, "HTT"),
    (29, "TM"),
    (30, "IA64"),
    (31, "PBE"),
];

const LEAF7_EBX: &[(u8, &str)] = &[
    (0, "FSGSBASE"),
    (1, "TSC_ADJUST"),
    (2, "SGX"),
    (3, "BMI1"),
    (4, "HLE"),
    (5, "AVX2"),
    (6, "FDP_EXCPTN_ONLY"),
    (7, "SMEP"),
    (8, "BMI2"),
    (9, "ERMS"),
    (10, "INVPCID"),
    (11, "RTM"),
    (12, "PQM"),
    (13, "ZERO_FCS_FDS"),
    (14, "MPX"),
    (15, "PQE"),
    (16, "AVX512F"),
    (17, "AVX512DQ"),
    (18, "RDSEED"),
    (19, "ADX"),
    (20, "SMAP"),
    (21, "AVX512_IFMA"),
    (23, "CLFLUSHOPT"),
    (24, "CLWB"),
    (25, "INTEL_PT"),
    (26, "AVX512PF"),
    (27, "AVX512ER"),
    (28, "AVX512CD"),
    (29, "SHA"),
    (30, "AVX512BW"),
    (31, "AVX512VL"),
];

const LEAF7_ECX: &[(u8, &str)] = &[
    (0, "PREFETCHWT1"),
    (1, "AVX512_VBMI"),
    (2, "UMIP"),
    (3, "PKU"),
    (4, "OSPKE"),
    (5, "WAITPKG"),
    (6, "AVX512_VBMI2"),
    (7, "CET_SS"),
    (8, "GFNI"),
    (9, "VAES"),
    (10, "VPCLMULQDQ"),
    (11, "AVX512_VNNI"),
    (12, "AVX512_BITALG"),
    (13, "TME_EN"),
    (14, "AVX512_VPOPCNTDQ"),
    (16, "LA57"),
    (22, "RDPID"),
    (23, "KL"),
    (24, "BUS_LOCK_DETECT"),
    (25, "CLDEMOTE"),
    (27, "MOVDIRI"),
    (28, "MOVDIR64B"),
    (29, "ENQCMD"),
    (30, "SGX_LC"),
    (31, "PKS"),
];

const LEAF7_EDX: &[(u8, &str)] = &[
    (1, "SGX_KEYS"),
    (2, "AVX512_4VNNIW"),
    (3, "AVX512_4FMAPS"),
    (4, "FSRM"),
    (5, "UINTR"),
    (8, "AVX512_VP2INTERSECT"),
    (9, "SRBDS_CTRL"),
    (10, "MD_CLEAR"),
    (11, "RTM_ALWAYS_ABORT"),
    (13, "TSX_FORCE_ABORT"),
    (14, "SERIALIZE"),
    (15, "HYBRID"),
    (16, "TSXLDTRK"),
    (18, "PCONFIG"),
    (19, "ARCH_LBR"),
    (20, "CET_IBT"),
    (22, "AMX_BF16"),
    (23, "AVX512_FP16"),
    (24, "AMX_TILE"),
    (25, "AMX_INT8"),
    (26, "SPEC_CTRL"),
    (27, "STIBP"),
    (28, "FLUSH_L1D"),
    (29, "ARCH_CAPABILITIES"),
    (30, "CORE_CAPABILITIES"),
    (31, "SSBD"),
];

const EXT1_ECX: &[(u8, &str)] = &[
    (0, "LAHF_LM"),
    (1, "CMP_LEGACY"),
    (2, "SVM"),
    (3, "EXTAPIC"),
    (4, "CR8_LEGACY"),
    (5, "ABM"),
    (6, "SSE4A"),
    (7, "MISALIGNSSE"),
    (8, "3DNOWPREFETCH"),
    (9, "OSVW"),
    (10, "IBS"),
    (11, "XOP"),
    (12, "SKINIT"),
    (13, "WDT"),
    (15, "LWP"),
    (16, "FMA4"),
    (17, "TCE"),
    (19, "NODEID_MSR"),
    (21, "TBM"),
    (22, "TOPOEXT"),
    (23, "PERFCTR_CORE"),
    (24, "PERFCTR_NB"),
    (26, "BPEXT"),
    (27, "PTSC"),
    (28, "PERFCTR_LLC"),
    (29, "MWAITX"),
];

/// AMD repeats many leaf-1 EDX bits here; they are named as there.
const EXT1_EDX: &[(u8, &str)] = &[
    (0, "FPU"),
    (1, "VME"),
    (2, "DE"),
    (3, "PSE"),
    (4, "TSC"),
    (5, "MSR"),
    (6, "PAE"),
    (7, "MCE"),
    (8, "CX8"),
    (9, "APIC"),
    (11, "SYSCALL"),
    (12, "MTRR"),
    (13, "PGE"),
    (14, "MCA"),
    (15, "CMOV"),
    (16, "PAT"),
    (17, "PSE36"),
    (19, "MP"),
    (20, "NX"),
    (22, "MMXEXT"),
    (23, "MMX"),
    (24, "FXSR"),
    (25, "FXSR_OPT"),
    (26, "PDPE1GB"),
    (27, "RDTSCP"),
    (29, "LM"),
    (30, "3DNOWEXT"),
    (31, "3DNOW"),
];

impl FeatureRegister {
    /// The name of every set bit of `value`, `bitN` for unnamed ones, from bit 0 up.
    pub fn set_bits(&self, value: u32) -> Vec<String> {
        (0..32u8)
            .filter(|bit| value & (1 << bit) != 0)
            .map(|bit| match self.bits.iter().find(|(b, _)| *b == bit) {
                Some((_, name)) => (*name).to_string(),
                None => format!("bit{bit}"),
            })
            .collect()
    }

    /// The bit called `name`, if this register has one.
    pub fn bit(&self, name: &str) -> Option<u8> {
        self.bits.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_sorted_unique_and_below_32() {
        for register in FEATURE_REGISTERS {
            assert!(register.bits.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(register.bits.iter().all(|(bit, _)| *bit < 32));
        }
    }

    #[test]
    fn well_known_bits() {
        let edx1 = &FEATURE_REGISTERS[1];
        assert_eq!(edx1.bit("SSE2"), Some(26));
        assert_eq!(FEATURE_REGISTERS[2].bit("AVX2"), Some(5));
        assert_eq!(FEATURE_REGISTERS[6].bit("LM"), Some(29));
        assert_eq!(
            edx1.set_bits(1 << 26 | 1 << 20 | 1),
            ["FPU", "bit20", "SSE2"]
        );
    }
}
