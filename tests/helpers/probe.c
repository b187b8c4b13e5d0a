/* probe: what the functional tests ask of a busybox container that busybox cannot answer.
 *   probe syscall NR      prints "errno" after syscall(NR, 0, 0, 0, 0, 0): 0 when it succeeded
 *   probe mempolicy       prints "MODE MASK" from get_mempolicy(2): the policy with its MPOL_F_*
 *                         flags, and the node mask in hex
 * Built static (the container has no libc) by the tests that use it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "syscall") == 0) {
        long ret = syscall(strtol(argv[2], NULL, 0), 0, 0, 0, 0, 0, 0);
        printf("%d\n", ret == -1 ? errno : 0);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "mempolicy") == 0) {
        int mode = -1;
        unsigned long mask[16] = {0};
        if (syscall(SYS_get_mempolicy, &mode, mask, sizeof(mask) * 8, NULL, 0) != 0) {
            printf("error %d\n", errno);
            return 1;
        }
        printf("%d 0x%lx\n", mode, mask[0]);
        return 0;
    }
    fprintf(stderr, "usage: probe syscall NR | probe mempolicy\n");
    return 2;
}
