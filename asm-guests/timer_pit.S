# rawkvm guest: timer_pit
# Programs PIT channel 0 (rate generator) and the PIC, counts N IRQ 0 ticks with `sti; hlt`, prints "ticks HHHH" and ends through the exit device; param = N | half << 15 | reload << 16 (N < 0x8000; reload 0: 1193, 1 kHz); with half = 1 it also prints "half HHHH" (N / 2) once N / 2 ticks are counted and writes N / 2 to port 0xF5 (the snapshot port of `rawkvm run --snapshot-on-port 0xF5 PATH`), then counts on.
# setup: irqchip=kernel param=100
#
# Exits, in order:
#   with half = 1: 10 × IO out port 0xe9 size 1 count 1 ("half HHHH\n"), IO out port 0xf5 size 1 count 1 (data N / 2 & 0xff)
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
        .equ HALF_FLAG, 0x80            # bit 15 of the parameter (in its second byte)
        .equ SNAPSHOT_PORT, 0xF5

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
        mov     bx, word ptr [PARAM]
        and     bx, 0x7FFF              # N
        test    byte ptr [PARAM + 1], HALF_FLAG
        jz      2f
        shr     bx, 1                   # N / 2
        cmp     word ptr [TICKS], bx
        jb      wait
        # Half way: once only (the flag is cleared in memory, so a resumed guest sees it too).
        and     byte ptr [PARAM + 1], 0xFF ^ HALF_FLAG
        mov     si, offset half_text
        call    print_str
        movzx   eax, bx
        mov     cx, 4
        call    print_hex
        PUTC    '\n'
        mov     ax, bx
        out     SNAPSHOT_PORT, al
        jmp     wait
2:      cmp     word ptr [TICKS], bx
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
half_text:
        .asciz  "half "

        .include "lib.inc"
