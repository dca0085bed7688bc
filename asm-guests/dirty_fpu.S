# rawkvm guest: dirty_fpu
# Prints MMX register MM0 (the mantissa of x87 ST0) as 16 hex digits and a newline, then loads it with 0x0BADC0DEFEEDFACE and halts: a machine restarted without its FPU state prints the value the previous run left instead of zeros.
#
# Exits, in order:
#   17 × IO out port 0xe9 size 1 count 1 ("0000000000000000\n" on a fresh vCPU; "0BADC0DEFEEDFACE\n" if MM0 was kept from an earlier run)
#   HLT
# CR0.EM and CR0.TS are cleared and CR0.MP set first, as `mmio_widths` does, so MMX instructions run.

        .include "common.inc"
_start:
        mov     eax, cr0
        and     eax, ~0x0C                      # EM (bit 2) and TS (bit 3) off
        or      eax, 0x02                       # MP on
        mov     cr0, eax
        movq    [seen], mm0
        mov     si, offset seen
        call    print_hex64
        PUTC    '\n'
        movq    mm0, [marker]
        HALT

        .include "lib.inc"

        .data
        .p2align 3
marker:
        .quad   0x0BADC0DEFEEDFACE
seen:
        .quad   0
