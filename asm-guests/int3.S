# rawkvm guest: int3
# Installs its own real-mode breakpoint handler (vector 3), executes `int3`, and prints "int3 guest" from the handler and "after" once back.
#
# Exits, in order:
#   11 × IO out port 0xe9 size 1 count 1 ("int3 guest\n", from the guest's handler)
#   6 × IO out port 0xe9 size 1 count 1 ("after\n")
#   HLT
# The int3 is at GPA 0x100c. On this host (PVM) KVM_SET_GUEST_DEBUG with KVM_GUESTDBG_USE_SW_BP
# does not intercept it: the exits stay as above. VMX/SVM would report DEBUG exception 3 there.
# A hardware breakpoint does work here: KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP with
# debugreg[0] = 0x100c, debugreg[7] = 0x1 gives DEBUG exception 1 pc 0x100c dr6 0xffff0ff1
# before any console exit; clear it (or set RF) before running again, or it hits again.

        .include "common.inc"

        .equ VECTOR_BP, 3

_start:
        # Point vector 3 (#BP, raised by `int3`) at our handler: the IVT at GPA 0 is all zeros.
        SET_IVT VECTOR_BP, breakpoint

        # The breakpoint (GPA 0x100c). Either the guest's handler runs and returns here, or a
        # VMM that intercepts it moves RIP past it itself.
        int3

        # Back from the breakpoint, whoever handled it.
        mov     si, offset after_line
        call    print_str
        HALT

# breakpoint: the guest's own #BP handler (reached when the VMM does not intercept int3).
# The CPU pushed FLAGS, CS and IP; `iret` returns to the instruction after the int3.
breakpoint:
        mov     si, offset guest_line
        call    print_str
        iret

guest_line:
        .asciz  "int3 guest\n"
after_line:
        .asciz  "after\n"

        .include "lib.inc"
