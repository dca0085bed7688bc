# rawkvm guest: irq_line
# Takes IRQ 3 and IRQ 4 from the in-kernel PIC with `sti; hlt`, reporting the running total of interrupts to port 0x510 after each, until it has N of each (param); prints both counts in hex and ends through the exit device.
# setup: irqchip=kernel param=100
#
# Exits, in order:
#   IO out port 0x510 size 2 count 1 (0: the PIC is initialised, the guest is ready)
#   2N × IO out port 0x510 size 2 count 1 (the total so far: 1, 2, ... 2N)
#   10 × IO out port 0xe9 size 1 count 1 ("HHHH HHHH\n": IRQ 3's count, IRQ 4's count)
#   IO out port 0xf4 size 1 count 1 (0)
# Something on the host must raise the lines (tests/irqchip.rs: GSI 3 with KVM_IRQ_LINE from
# a device thread, GSI 4 through an eventfd wired with KVM_IRQFD, each edge after the guest
# reported the previous one), or the guest sleeps in the kernel until the deadline.

        .include "common.inc"
        .include "pic.inc"

        .equ COUNT3, 0x5000             # word: IRQ 3 interrupts taken
        .equ COUNT4, 0x5002             # word: IRQ 4 interrupts taken

_start:
        mov     dword ptr [COUNT3], 0
        SET_IVT IRQ_BASE + 3, irq3
        SET_IVT IRQ_BASE + 4, irq4
        # Only IRQ 3 and IRQ 4 unmasked.
        PIC_INIT 0xE7, 0xFF
        # Report a total of 0: ready. An edge before the PIC is initialised is lost (ICW1
        # clears the requests), so the host waits for this.
        mov     dx, SPARE_PORT
        xor     ax, ax
        out     dx, ax
        sti
wait:
        hlt
        mov     ax, word ptr [COUNT3]
        cmp     ax, word ptr [PARAM]
        jb      wait
        mov     ax, word ptr [COUNT4]
        cmp     ax, word ptr [PARAM]
        jb      wait
        cli
        movzx   eax, word ptr [COUNT3]
        mov     cx, 4
        call    print_hex
        PUTC    ' '
        movzx   eax, word ptr [COUNT4]
        call    print_hex
        PUTC    '\n'
        xor     al, al
        out     EXIT_PORT, al
        HALT

# irq3, irq4: count, EOI, report the total (a 16-bit OUT: the host paces its edges by it).
irq3:
        inc     word ptr [COUNT3]
        jmp     taken
irq4:
        inc     word ptr [COUNT4]
taken:
        push    ax
        mov     al, PIC_EOI
        out     PIC_M_CMD, al
        mov     ax, word ptr [COUNT3]
        add     ax, word ptr [COUNT4]
        out     dx, ax
        pop     ax
        iret

        .include "lib.inc"
