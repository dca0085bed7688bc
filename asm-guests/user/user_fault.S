# rawkvm guest: user_fault
# Writes to GPA 0x40000000, which no page maps, at CPL 3: the page fault reaches rawkvm's exception stub, and the run ends with status 6 naming #PF, its error code, RIP and CR2.
# setup: mode=user
#
# Exits, in order:
#   HLT (in the exception stub, at CPL 0: rawkvm reads the report, status 6)
# The message: "CPU exception #PF (page fault, vector 14) at CPL 3, RIP 0x0000000000001005,
# error code 0x6 (not present, write, user), CR2 0x0000000040000000".

        .include "common64.inc"
_start:
        mov     eax, 0x40000000
        mov     byte ptr [rax], 1
        EXIT    1
