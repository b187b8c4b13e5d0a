/* sd_notify for the tests' busybox containers, which have no way to send a datagram to a unix
 * socket: sends argv[1] (with "\n" written as two characters turned into newlines) to
 * $NOTIFY_SOCKET. Built static by the tests (tests/functional/test_notify.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    char message[4096];
    size_t length = 0;
    int fd;

    if (argc != 2 || !path || strlen(path) >= sizeof(address.sun_path)) {
        fprintf(stderr, "usage: NOTIFY_SOCKET=PATH sdnotify 'READY=1\\nSTATUS=...'\n");
        return 2;
    }
    for (const char *c = argv[1]; *c && length < sizeof(message) - 1; c++) {
        if (c[0] == '\\' && c[1] == 'n') {
            message[length++] = '\n';
            c++;
        } else {
            message[length++] = *c;
        }
    }
    strcpy(address.sun_path, path);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0 || sendto(fd, message, length, 0, (struct sockaddr *)&address, sizeof(address)) < 0) {
        perror("sdnotify");
        return 1;
    }
    return 0;
}
