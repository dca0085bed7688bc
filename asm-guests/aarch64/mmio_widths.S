# rawkvm guest: mmio_widths
# MMIO reads of 1, 2, 4 and 8 bytes above 1 MiB, then writes back what each read returned (8, 4, 2, 1 bytes) and one known 8-byte value, then powers off.
#
# Exits, in order:
#   MMIO read gpa 0x100000 len 1
#   MMIO read gpa 0x100010 len 2
#   MMIO read gpa 0x100020 len 4
#   MMIO read gpa 0x100030 len 8
#   MMIO write gpa 0x100040 len 8 data [ff ff ff ff ff ff ff ff] (the 8-byte value read)
#   MMIO write gpa 0x100050 len 4 data [ff ff ff ff] (the 4-byte value read)
#   MMIO write gpa 0x100060 len 2 data [ff ff] (the 2-byte value read)
#   MMIO write gpa 0x100070 len 1 data [ff] (the byte read)
#   MMIO write gpa 0x100080 len 8 data [88 99 aa bb cc dd ee ff] (0xFFEEDDCCBBAA9988)
#   SYSTEM_EVENT type 1 (SHUTDOWN) data [0]
# The write data are the all-ones filler the VMM answers unclaimed reads with: what the guest
# got back. Accesses are aligned: with the MMU off all memory is Device memory, where an
# unaligned access is an alignment fault, so there is no page-straddling case here.

        .include "aarch64/common.inc"
_start:
        MOV32   x0, HIGH_MMIO
        ldrb    w5, [x0, #0x00]
        ldrh    w6, [x0, #0x10]
        ldr     w7, [x0, #0x20]
        ldr     x8, [x0, #0x30]
        str     x8, [x0, #0x40]
        str     w7, [x0, #0x50]
        strh    w6, [x0, #0x60]
        strb    w5, [x0, #0x70]
        movz    x9, #0x9988
        movk    x9, #0xBBAA, lsl #16
        movk    x9, #0xDDCC, lsl #32
        movk    x9, #0xFFEE, lsl #48
        str     x9, [x0, #0x80]
        PSCI    PSCI_SYSTEM_OFF
