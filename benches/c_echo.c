// For benches/io_uring.sh (not part of reqresp): a minimal line echo server
// in C answering "Echo: <line>", to tell what io_uring would save a server
// on this kernel. Two modes:
//   c_echo epoll [PORT]  epoll, edge-triggered, recv and send per ready socket
//   c_echo uring [PORT]  io_uring by raw system calls: each received batch's
//                        send and the next recv are submitted together, one
//                        io_uring_enter per round of completions
// It prints "listening on 127.0.0.1:PORT". A measuring tool only: no limits,
// assumes each recv holds whole lines (true for the 64-byte ping-pong loads).
// Build: gcc -O2 -o c_echo benches/c_echo.c
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#define MAXC 1024
#define BUF 4096
// A response adds 6 bytes to each line: at most 7 bytes per byte received.
static char rbuf[MAXC][BUF], wbuf[MAXC][BUF * 7];
static int build(int c, int n) { // "Echo: " before each line
  int w = 0, s = 0;
  for (int i = 0; i < n; i++) if (rbuf[c][i] == '\n') { memcpy(wbuf[c] + w, "Echo: ", 6); w += 6; memcpy(wbuf[c] + w, rbuf[c] + s, i + 1 - s); w += i + 1 - s; s = i + 1; }
  return w;
}
static int listener(int port) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(l, (void *)&a, sizeof a) || listen(l, 4096)) { perror("listen"); exit(1); }
  socklen_t al = sizeof a; getsockname(l, (void *)&a, &al);
  printf("listening on 127.0.0.1:%d\n", ntohs(a.sin_port)); fflush(stdout);
  return l;
}
static void run_epoll(int l) {
  int ep = epoll_create1(0); struct epoll_event ev = {.events = EPOLLIN, .data.fd = l}, evs[256];
  epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == l) { int c = accept4(l, 0, 0, SOCK_NONBLOCK); if (c < 0 || c >= MAXC) { if (c >= 0) close(c); continue; }
        int one = 1; setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event e = {.events = EPOLLIN | EPOLLET, .data.fd = c}; epoll_ctl(ep, EPOLL_CTL_ADD, c, &e); continue; }
      for (;;) { int r = recv(fd, rbuf[fd], BUF, 0);
        if (r <= 0) { if (r == 0 || errno != EAGAIN) close(fd); break; }
        int w = build(fd, r); send(fd, wbuf[fd], w, MSG_NOSIGNAL);
        if (r < BUF) break; } // short read: drained (as tokio assumes)
    }
  }
}
// io_uring by raw syscalls
static unsigned *sq_head, *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
static struct io_uring_sqe *sqes; static struct io_uring_cqe *cqes; static int ring; static unsigned pending;
static struct io_uring_sqe *sqe(void) { unsigned t = *sq_tail; struct io_uring_sqe *s = &sqes[t & *sq_mask]; memset(s, 0, sizeof *s); sq_array[t & *sq_mask] = t & *sq_mask; __atomic_store_n(sq_tail, t + 1, __ATOMIC_RELEASE); pending++; return s; }
enum { ACCEPT = 1, RECV = 2, SEND = 3 };
static void prep(int op, int fd) { struct io_uring_sqe *s = sqe(); s->fd = fd; s->user_data = ((unsigned long long)op << 32) | (unsigned)fd;
  if (op == ACCEPT) { s->opcode = IORING_OP_ACCEPT; }
  else if (op == RECV) { s->opcode = IORING_OP_RECV; s->addr = (unsigned long)rbuf[fd]; s->len = BUF; } }
static void run_uring(int l) {
  struct io_uring_params p; memset(&p, 0, sizeof p); p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  ring = syscall(__NR_io_uring_setup, 4096, &p); if (ring < 0) { perror("io_uring_setup"); exit(1); }
  size_t sql = p.sq_off.array + p.sq_entries * 4, cql = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  char *sq = mmap(0, sql > cql ? sql : cql, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING), *cq = sq;
  sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
  sq_head = (void *)(sq + p.sq_off.head); sq_tail = (void *)(sq + p.sq_off.tail); sq_mask = (void *)(sq + p.sq_off.ring_mask); sq_array = (void *)(sq + p.sq_off.array);
  cq_head = (void *)(cq + p.cq_off.head); cq_tail = (void *)(cq + p.cq_off.tail); cq_mask = (void *)(cq + p.cq_off.ring_mask); cqes = (void *)(cq + p.cq_off.cqes);
  prep(ACCEPT, l);
  for (;;) {
    int r = syscall(__NR_io_uring_enter, ring, pending, 1, IORING_ENTER_GETEVENTS, 0, 0); pending = 0;
    if (r < 0 && errno != EINTR) { perror("io_uring_enter"); exit(1); }
    unsigned h = *cq_head, t = __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE);
    for (; h != t; h++) {
      struct io_uring_cqe *c = &cqes[h & *cq_mask]; int op = c->user_data >> 32, fd = (int)(c->user_data & 0xffffffff), res = c->res;
      if (op == ACCEPT) { if (res >= 0 && res < MAXC) { int one = 1; setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); prep(RECV, res); } else if (res >= 0) close(res); prep(ACCEPT, l); }
      else if (op == RECV) { if (res <= 0) { close(fd); continue; }
        int w = build(fd, res); struct io_uring_sqe *s = sqe(); s->opcode = IORING_OP_SEND; s->fd = fd; s->addr = (unsigned long)wbuf[fd]; s->len = w; s->msg_flags = MSG_NOSIGNAL;
        s->user_data = ((unsigned long long)SEND << 32) | (unsigned)fd; prep(RECV, fd); }
    }
    __atomic_store_n(cq_head, h, __ATOMIC_RELEASE);
  }
}
int main(int argc, char **argv) { int l = listener(argc > 2 ? atoi(argv[2]) : 0); if (argc > 1 && !strcmp(argv[1], "uring")) run_uring(l); else run_epoll(l); }
