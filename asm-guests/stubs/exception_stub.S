# exception_stub.S: the CPL 0 exception handler rawkvm puts at GPA 0x91000 in --mode long and
# --mode user (the IDT's 32 gates point at _start + 16 * vector). It is not a guest: it is what
# turns any exception of the program into the end of the run with status 6 and a message
# naming the vector, error code, RIP and CR2.
#
# An exception pushes (64-bit frame, on the TSS's IST1 stack, whatever the CPL): SS, RSP, RFLAGS, CS,
# RIP, and for some vectors an error code. Each entry pushes a zero error code where the CPU
# pushes none, then its vector, and jumps to `report`, which loads
#   RAX = 0x5245_5045_5843_5045 ("EPCXEPER", the report's mark)   RBX = vector
#   RCX = error code   RDX = RIP   RDI = CS (its low 2 bits: the CPL that faulted)
#   RBP = RSP at the fault   RSI = CR2 (the faulting address of a #PF)
# and ends the run at `halt` (offset 0x280): first a write of AL to the exit device's port 0xF4
# (with an in-kernel irqchip `hlt` would block in the kernel and never reach the host), then
# `cli; hlt` for a host whose devices do not decode that port. The host sees the exit device's
# KVM_EXIT_IO (or KVM_EXIT_HLT) with RIP inside `halt` and RAX holding the mark, reads the
# registers (KVM_GET_REGS) and reports the exception; it never resumes the vCPU. Nothing here
# returns (`iretq` is never needed).

        .intel_syntax noprefix
        .code64

        .equ REPORT_MARK, 0x5245504558435045

        .section .text.start, "ax"
        .globl  _start
_start:

# ENTRY vector, pushes_error: one 16-byte slot of the table.
.macro ENTRY vector, pushes_error
        .balign 16
        .if \pushes_error == 0
        push    0
        .endif
        push    \vector
        jmp     report
.endm

        # The vectors whose exceptions push an error code: #DF 8, #TS 10, #NP 11, #SS 12,
        # #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
        ENTRY 0, 0
        ENTRY 1, 0
        ENTRY 2, 0
        ENTRY 3, 0
        ENTRY 4, 0
        ENTRY 5, 0
        ENTRY 6, 0
        ENTRY 7, 0
        ENTRY 8, 1
        ENTRY 9, 0
        ENTRY 10, 1
        ENTRY 11, 1
        ENTRY 12, 1
        ENTRY 13, 1
        ENTRY 14, 1
        ENTRY 15, 0
        ENTRY 16, 0
        ENTRY 17, 1
        ENTRY 18, 0
        ENTRY 19, 0
        ENTRY 20, 0
        ENTRY 21, 1
        ENTRY 22, 0
        ENTRY 23, 0
        ENTRY 24, 0
        ENTRY 25, 0
        ENTRY 26, 0
        ENTRY 27, 0
        ENTRY 28, 0
        ENTRY 29, 1
        ENTRY 30, 1
        ENTRY 31, 0

        .org    0x200, 0xCC
report:
        mov     rbx, [rsp]              # vector
        mov     rcx, [rsp + 8]          # error code (0 where the CPU pushes none)
        mov     rdx, [rsp + 16]         # RIP of the faulting instruction
        mov     rdi, [rsp + 24]         # CS
        mov     rbp, [rsp + 40]         # RSP
        mov     rsi, cr2
        movabs  rax, REPORT_MARK
        jmp     halt

        .org    0x280, 0xCC
halt:
        out     0xF4, al                # the exit device: ends the run (AL: the mark's low byte)
        cli
        hlt
        jmp     halt
