# rawkvm guest: timer_pit
# Programs PIT channel 0 (rate generator) and the PIC, counts N IRQ 0 ticks with `sti; hlt`, prints "ticks HHHH" and ends through the exit device; param = N | reload << 16 (reload 0: 1193, 1 kHz).
# setup: irqchip=kernel param=100
#
# Exits, in order:
#   11 × IO out port 0xe9 size 1 count 1 ("ticks HHHH\n", HHHH = N in hex)
#   IO out port 0xf4 size 1 count 1 (0: the exit device ends the run with status 0)
# With `--irqchip kernel` the PIC (ports 0x20/0x21/0xa0/0xa1), the PIT (0x40/0x43) and every
# `hlt` are handled in the kernel: no KVM_EXIT_HLT, no exit per tick. The PIT counts at
# 1.193182 MHz: reload 1193 is 1000.15 Hz, 11932 is 99.998 Hz; the kernel clamps periods
# under 200 µs (kvm.min_timer_period_us), so reloads below 239 tick slower than asked.

        .include "common.inc"
        .include "pic.inc"

        .equ TICKS, 0x5000              # word: IRQ 0 interrupts taken
        .equ PIT_CH0, 0x40
        .equ PIT_MODE, 0x43
        .equ DEFAULT_RELOAD, 1193       # 1.193182 MHz / 1193 = 1000.15 Hz

_start:
        mov     word ptr [TICKS], 0
        SET_IVT IRQ_BASE, tick
        # The PIC: vectors 0x20-0x2F, only IRQ 0 (the PIT) unmasked.
        PIC_INIT 0xFE, 0xFF
        # PIT channel 0, low byte then high byte, mode 2 (rate generator), binary.
        mov     al, 0x34
        out     PIT_MODE, al
        mov     ax, word ptr [PARAM + 2]
        test    ax, ax
        jnz     1f
        mov     ax, DEFAULT_RELOAD
1:      out     PIT_CH0, al
        mov     al, ah
        out     PIT_CH0, al
        # Wait for N ticks: each `hlt` sleeps in the kernel until the next interrupt.
        sti
wait:
        hlt
        mov     ax, word ptr [TICKS]
        cmp     ax, word ptr [PARAM]
        jb      wait
        cli
        mov     si, offset ticks_text
        call    print_str
        movzx   eax, word ptr [TICKS]
        mov     cx, 4
        call    print_hex
        PUTC    '\n'
        # The exit device: code 0, success.
        xor     al, al
        out     EXIT_PORT, al
        HALT

# tick: IRQ 0. Count it and tell the PIC it is done (EOI), then return.
tick:
        inc     word ptr [TICKS]
        push    ax
        mov     al, PIC_EOI
        out     PIC_M_CMD, al
        pop     ax
        iret

ticks_text:
        .asciz  "ticks "

        .include "lib.inc"
