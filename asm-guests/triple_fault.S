# rawkvm guest: triple_fault
# Enters 32-bit protected mode with a flat GDT and an empty IDT (limit 0), then executes `ud2`: #UD, #GP, #DF, triple fault.
#
# Exits, in order:
#   SHUTDOWN (KVM_EXIT_SHUTDOWN)

        .include "common.inc"
_start:
        # No interrupts from here on: only the exception below should happen.
        cli

        # Load the GDT (flat 4 GiB code and data) and an IDT with limit 0: no exception can
        # be delivered, so the first exception escalates to a triple fault.
        lgdt    [gdt_descriptor]
        lidt    [idt_descriptor]

        # Set CR0.PE (bit 0) and far-jump to reload CS with the 32-bit code selector.
        mov     eax, cr0
        or      al, 1
        mov     cr0, eax
        jmp     CODE_SEL:protected_mode

        .code32
protected_mode:
        # Now in 32-bit protected mode: load the flat data selector everywhere it matters.
        mov     ax, DATA_SEL
        mov     ds, ax
        mov     es, ax
        mov     ss, ax
        # Undefined instruction → #UD; the IDT is empty → #GP → #DF → shutdown.
        ud2

        # Selectors: byte offsets of the descriptors in the GDT below.
        .equ CODE_SEL, 0x08
        .equ DATA_SEL, 0x10

        # The GDT: 8-byte descriptors, 8-byte aligned.
        .p2align 3
gdt:
        .quad   0                       # 0x00: the mandatory null descriptor
        .quad   0x00CF9A000000FFFF      # 0x08: code, base 0, limit 4 GiB, 32-bit, ring 0
        .quad   0x00CF92000000FFFF      # 0x10: data, base 0, limit 4 GiB, writable
gdt_end:

# The operands of lgdt and lidt: a 16-bit limit (size - 1) and a 32-bit base.
gdt_descriptor:
        .word   gdt_end - gdt - 1       # limit
        .long   gdt                     # linear base address

idt_descriptor:
        .word   0                       # limit 0: not even vector 0 fits
        .long   0
