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
# got back (zero-extending loads, so a wrong answer cannot hide in a sign extension).

        .include "riscv64/common.inc"
_start:
        li      t0, HIGH_MMIO
        lbu     t1, 0x00(t0)
        lhu     t2, 0x10(t0)
        lwu     t3, 0x20(t0)
        ld      t4, 0x30(t0)
        sd      t4, 0x40(t0)
        sw      t3, 0x50(t0)
        sh      t2, 0x60(t0)
        sb      t1, 0x70(t0)
        li      t5, 0xFFEEDDCCBBAA9988
        sd      t5, 0x80(t0)
        POWER_OFF
