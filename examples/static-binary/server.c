/* A tiny HTTP server in C, linked statically: it goes on distill's "static" image
 * (no libc there; the binary carries what it needs). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void on_term(int sig) { (void)sig; _exit(0); }

int main(void) {
    const char *env = getenv("PORT");
    int port = env ? atoi(env) : 8080;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in addr = {0};
    signal(SIGTERM, on_term);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 64) != 0) {
        perror("listen");
        return 1;
    }
    printf("listening on %d\n", port);
    fflush(stdout);
    for (;;) {
        char req[4096], body[128], resp[512];
        int c = accept(fd, NULL, NULL);
        if (c < 0) continue;
        ssize_t n = read(c, req, sizeof req - 1);
        req[n > 0 ? n : 0] = '\0';
        int health = strncmp(req, "GET /healthz", 12) == 0;
        int len = snprintf(body, sizeof body, health ? "{\"status\":\"ok\"}\n" : "hello from static C as uid %d\n",
                           (int)getuid());
        int m = snprintf(resp, sizeof resp,
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
                         len, body);
        if (write(c, resp, (size_t)m) < 0) perror("write");
        close(c);
    }
}
