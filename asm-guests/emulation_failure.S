# rawkvm guest: emulation_failure
# Far-jumps to GPA 0x100000, just past the 1 MiB of RAM, where no memory slot backs the code: KVM cannot fetch the next instruction.
#
# Exits, in order:
#   INTERNAL_ERROR suberror 1 (KVM_INTERNAL_ERROR_EMULATION)

        .include "common.inc"
_start:
        # FFFF:0010 = GPA 0x100000. There is no RAM there, and KVM cannot run code from MMIO.
        jmp     HIGH_SEG:HIGH_OFF
