# rawkvm guest: irq_window
# Installs a handler for vector 0x20, enables interrupts and waits; when the VMM injects vector 0x20 (KVM_INTERRUPT at the interrupt window), the handler prints "irq 20" and a newline and halts.
# setup: irq=0x20
#
# Exits, in order:
#   IRQ_WINDOW_OPEN (the VMM set request_interrupt_window before the first KVM_RUN; it now injects 0x20)
#   7 × IO out port 0xe9 size 1 count 1 ("irq 20\n")
#   HLT
# `irq=0x20`: the VMM sets kvm_run.request_interrupt_window = 1 before the first KVM_RUN and, at
# KVM_EXIT_IRQ_WINDOW_OPEN (ready_for_interrupt_injection = 1, if_flag = 1), calls KVM_INTERRUPT
# with vector 0x20 (no in-kernel irqchip). Without it the guest waits forever, like `spin`.

        .include "common.inc"

        .equ VECTOR, 0x20

_start:
        SET_IVT VECTOR, interrupt
        # IF = 1: from now on KVM can deliver an interrupt, which is what the VMM waits for.
        sti
wait_for_interrupt:
        jmp     wait_for_interrupt

# interrupt: the handler for vector 0x20. The CPU cleared IF on entry, so HALT ends the run.
interrupt:
        mov     si, offset irq_line
        call    print_str
        HALT

irq_line:
        .asciz  "irq 20\n"

        .include "lib.inc"
