/* sprout kernel smoke test: does a 64-bit SYSCALL return where and with the
 * flags a real SYSCALL/SYSRET would give?  Prints RCX/R11 as the kernel left
 * them (what the hypervisor put there: the kernel does not change them). */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
        unsigned long ret, rcx, r11, fl_before, fl_after, expect;
        int ok;

        __asm__ volatile("mov $0x1111, %%rcx\n\t"
                         "mov $0x2222, %%r11\n\t"
                         "mov $39, %%eax\n\t" /* getpid */
                         "stc\n\t"            /* CF must survive the call */
                         "pushfq\n\t"
                         "popq %[flb]\n\t"
                         "syscall\n\t"
                         "1:\n\t"
                         "mov %%r11, %[r11o]\n\t"
                         "pushfq\n\t"
                         "popq %[fla]\n\t"
                         "lea 1b(%%rip), %[exp]\n\t"
                         : "=a"(ret), "=c"(rcx), [r11o] "=&r"(r11), [flb] "=&r"(fl_before),
                           [fla] "=&r"(fl_after), [exp] "=&r"(expect)
                         :
                         : "r11", "memory", "cc");

        ok = ret == (unsigned long)getpid() && rcx == expect && (fl_after & 1);
        printf("sctest: %s getpid=%lu rcx=%#lx (next insn %#lx) r11=%#lx flags before=%#lx "
               "after=%#lx\n",
               ok ? "OK" : "FAIL", ret, rcx, expect, r11, fl_before, fl_after);
        return !ok;
}
