# rawkvm guest: irq_user
# Programs the 8259 pair (vectors 0x20-0x2F), enables interrupts and exits in a loop (OUT to port 0x510) until it has taken N interrupts, counting each IRQ line; then prints the 16 counts and the total in hex and halts; param = N | half << 15 (N < 0x8000); with half = 1 the handler of interrupt N / 2 writes N / 2 to port 0xF5 (the snapshot port) before its EOI, so a snapshot finds that line in service.
# setup: irqchip=user param=1000
#
# Exits, in order:
#   10 × IO out (ICW1-ICW4 and OCW1 to ports 0x20/0xa0 and 0x21/0xa1)
#   then, until N interrupts have been taken, IO out port 0x510 size 1 count 1 (the wait loop, IF = 1), each interrupt adding IO out port 0x20 (and 0xa0 for lines 8-15) size 1 count 1 (0x20, the EOI); with half = 1, interrupt N / 2 adds IO out port 0xf5 size 1 count 1 (data N / 2 & 0xff) before its EOI
#   16 × 5 IO out port 0xe9 size 1 count 1 ("HHHH " or "HHHH\n": line i's count)
#   9 × IO out port 0xe9 size 1 count 1 (the total, "HHHHHHHH\n")
#   HLT
# The VMM (`--irqchip user`) injects with KVM_INTERRUPT at whichever exit reports
# ready_for_interrupt_injection and if_flag: here the OUTs of the wait loop. Something on the
# host must raise the lines (UserPic::raise; tests/user_pic.rs raises 1,000 edges from a
# thread), or the guest waits forever. With N = 0 it prints sixteen zero counts at once.

        .include "common.inc"
        .include "pic.inc"

        .equ COUNTS, 0x5000             # 16 words: interrupts taken per IRQ line
        .equ TOTAL,  0x5040             # dword: all interrupts taken
        .equ STUB_LEN, 8                # bytes from one handler stub to the next
        .equ HALF_FLAG, 0x80            # bit 15 of the parameter (in its second byte)
        .equ SNAPSHOT_PORT, 0xF5

_start:
        # Zero the counters (outside the image, so they start as whatever RAM held: zeros,
        # but a restarted run must start from zero too).
        xor     eax, eax
        mov     di, COUNTS
        mov     cx, 0x22
        cld
        rep stosw
        # The IVT: vector 0x20 + i runs stub i.
        mov     bx, 0x20 * 4
        mov     si, offset stubs
        mov     cx, 16
1:      mov     word ptr [bx], si
        mov     word ptr [bx + 2], 0
        add     bx, 4
        add     si, STUB_LEN
        loop    1b
        # The 8259 pair: vectors 0x20-0x2F, every line unmasked.
        PIC_INIT 0x00, 0x00
        # The wait loop: interrupts on, one exit per turn, until TOTAL reaches N.
        mov     dx, SPARE_PORT
        sti
wait:
        out     dx, al
        mov     eax, dword ptr [PARAM]
        and     eax, 0x7FFF             # N
        cmp     dword ptr [TOTAL], eax
        jb      wait
        cli
        # The counts, line 0 first, then the total.
        mov     bx, COUNTS
        mov     dx, 16
print_counts:
        movzx   eax, word ptr [bx]
        mov     cx, 4
        call    print_hex
        mov     al, ' '
        cmp     dx, 1
        jne     2f
        mov     al, '\n'
2:      out     CONSOLE, al
        add     bx, 2
        dec     dx
        jnz     print_counts
        mov     eax, dword ptr [TOTAL]
        mov     cx, 8
        call    print_hex
        PUTC    '\n'
        HALT

# stubs: sixteen handlers STUB_LEN bytes apart, stub i for vector 0x20 + i: push BX, load
# the line number, go to `taken`.
        .balign STUB_LEN, 0x90
stubs:
        .irp line, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        push    bx
        mov     bx, \line
        jmp     taken
        .balign STUB_LEN, 0x90
        .endr

# taken: count the interrupt of line BX, pull the snapshot port if it is interrupt N / 2 and
# half = 1, EOI it (slave first for lines 8-15), return.
taken:
        push    ax
        shl     bx, 1
        inc     word ptr [COUNTS + bx]
        inc     dword ptr [TOTAL]
        test    byte ptr [PARAM + 1], HALF_FLAG
        jz      3f
        mov     ax, word ptr [PARAM]
        and     ax, 0x7FFF
        shr     ax, 1                   # N / 2
        cmp     word ptr [TOTAL], ax
        jne     3f
        # Half way, with this line still in service: once only (the flag is cleared in
        # memory, so a resumed guest sees it cleared too).
        and     byte ptr [PARAM + 1], 0xFF ^ HALF_FLAG
        out     SNAPSHOT_PORT, al
3:      mov     al, PIC_EOI
        cmp     bx, 16
        jb      1f
        out     PIC_S_CMD, al
1:      out     PIC_M_CMD, al
        pop     ax
        pop     bx
        iret

        .include "lib.inc"
