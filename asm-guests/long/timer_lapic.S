# rawkvm guest: timer_lapic
# Programs the in-kernel local APIC timer (periodic, vector 0x40, divide 1, 1,000,000 counts: 1 kHz at the 1 GHz APIC bus), counts N ticks with `sti; hlt`, prints "ticks " and N as 16 hex digits, ends through the exit device; param = N.
# setup: mode=long irqchip=kernel param=100
#
# Exits, in order:
#   23 × IO out port 0xe9 size 1 count 1 ("ticks 0000000000000064\n" for N = 100)
#   IO out port 0xf4 size 1 count 1 (0: the exit device ends the run with status 0)
# The LAPIC page (0xFEE00000, mapped uncached and supervisor-only by rawkvm's page tables),
# every LAPIC access, EOI and `hlt` are handled in the kernel: no exit per tick, no
# KVM_EXIT_HLT. rawkvm's IDT has only the 32 exception gates (limit 0x1FF, the TSSes follow
# it), so the guest builds its own IDT at 0x10000: a copy of those 32 gates (a fault still
# reaches rawkvm's stub) plus an interrupt gate for vector 0x40, and loads it with `lidt`.
# KVM's LAPIC counts at 1 GHz (APIC_BUS_CYCLE_NS = 1); on PVM one count measured 1.001 ns.

        .include "common64.inc"

        .equ IDT_BASE, 0x10000          # past the largest image (0x1000 + 0xF000)
        .equ VECTOR, 0x40               # the timer's vector
        .equ IDT_LIMIT, (VECTOR + 1) * 16 - 1
        .equ TICKS, 0x10800             # dword: timer interrupts taken
        .equ LAPIC, 0xFEE00000          # IA32_APIC_BASE after reset
        .equ LAPIC_TPR, 0x80            # task priority: 0 lets every vector in
        .equ LAPIC_EOI, 0xB0            # end of interrupt: write 0
        .equ LAPIC_SVR, 0xF0            # spurious vector; bit 8 enables the APIC
        .equ LAPIC_LVT_TIMER, 0x320     # vector, bit 16 mask, bit 17 periodic
        .equ LAPIC_INITIAL, 0x380       # initial count: writing it starts the timer
        .equ LAPIC_DIVIDE, 0x3E0        # 0xB: divide by 1
        .equ PERIODIC, 1 << 17
        .equ MASKED, 1 << 16
        .equ COUNTS_1KHZ, 1000000       # 1 ms at 1 ns per count

_start:
        mov     dword ptr [TICKS], 0
        # The IDT: rawkvm's 32 exception gates, then the timer's gate at VECTOR.
        sidt    [rip + rawkvm_idtr]
        mov     rsi, [rip + rawkvm_idtr + 2]
        mov     edi, IDT_BASE
        mov     ecx, 32 * 2             # 32 gates of 16 bytes
        cld
        rep     movsq
        mov     ecx, (VECTOR - 32) * 2  # vectors 32..VECTOR-1: not present
        xor     eax, eax
        rep     stosq
        lea     rax, [rip + tick]       # below 4 GiB: offset 63:32 is 0
        mov     edx, eax
        and     edx, 0xFFFF0000
        or      edx, 0x8E00             # present, DPL 0, 64-bit interrupt gate, IST 0
        mov     ecx, cs
        shl     ecx, 16
        mov     cx, ax                  # selector << 16 | offset 15:0
        mov     dword ptr [rdi], ecx
        mov     dword ptr [rdi + 4], edx
        mov     qword ptr [rdi + 8], 0
        lidt    [rip + own_idtr]
        # The LAPIC: enabled, every priority accepted, the timer periodic at 1 kHz.
        mov     edi, LAPIC
        mov     dword ptr [rdi + LAPIC_SVR], 0x1FF
        mov     dword ptr [rdi + LAPIC_TPR], 0
        mov     dword ptr [rdi + LAPIC_DIVIDE], 0xB
        mov     dword ptr [rdi + LAPIC_LVT_TIMER], PERIODIC | VECTOR
        mov     dword ptr [rdi + LAPIC_INITIAL], COUNTS_1KHZ
        # Wait for N ticks: `sti; hlt` is atomic (the STI shadow), so no tick is missed
        # between the check and the sleep, which the kernel does without an exit.
wait:
        mov     eax, dword ptr [TICKS]
        cmp     eax, dword ptr [PARAM]
        jae     done
        sti
        hlt
        cli
        jmp     wait
done:
        # Stop the timer (masked, count 0) before printing.
        mov     dword ptr [rdi + LAPIC_LVT_TIMER], MASKED | PERIODIC | VECTOR
        mov     dword ptr [rdi + LAPIC_INITIAL], 0
        lea     rsi, [rip + ticks_text]
        call    print_str
        mov     eax, dword ptr [TICKS]
        call    print_hex64
        PUTC    '\n'
        # The exit device: code 0, success.
        xor     eax, eax
        out     EXIT_PORT, al
        HALT

# tick: the timer's vector. Count it, EOI the LAPIC, return with `iretq`.
tick:
        push    rdi
        inc     dword ptr [TICKS]
        mov     edi, LAPIC
        mov     dword ptr [rdi + LAPIC_EOI], 0
        pop     rdi
        iretq

ticks_text:
        .asciz  "ticks "

        .balign 8
rawkvm_idtr:                            # what `sidt` stored: limit, base
        .word   0
        .quad   0
        .balign 8
own_idtr:
        .word   IDT_LIMIT
        .quad   IDT_BASE

        .set    LIB64_PORT_CONSOLE, 1
        .include "lib64.inc"
