/* Physical floor for bench/icmp: the least a prober can do to send N loopback echo requests at
 * the benchmark's rate and match the replies. One raw ICMP socket with ICMP_FILTER (echo replies
 * only), requests sent with sendmmsg on a 10 ms grid (each target once per interval, spread over
 * the interval's ticks), replies read with recvmmsg and matched by source address, identifier and
 * a payload cookie + target index. No timestamps, no histograms, no exposition.
 *
 *   floor N INTERVAL_MS WARMUP_S WINDOW_S
 *
 * prints one line: "sent received matched_late cpu_s wall_s" for the window (after the warm-up).
 * Only 127.0.0.0/8 is ever addressed: target i is 127.{1+i/65025}.{(i/255)%255}.{1+i%255}.
 * Build: cc -O2 -o floor floor.c. Needs root (raw socket).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS 10000000LL /* 10 ms grid */
#define BATCH 256
#define PAYLOAD 16

struct echo {
  struct icmphdr h;
  uint64_t cookie;
  uint32_t index;
  uint32_t round;
};

static uint16_t csum(const void *p, size_t n) {
  const uint16_t *w = p;
  uint32_t s = 0;
  for (; n > 1; n -= 2) s += *w++;
  if (n) s += *(const uint8_t *)w;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

static uint32_t addr_of(long i) {
  return htonl((127u << 24) | ((uint32_t)(1 + i / 65025) << 16) | ((uint32_t)((i / 255) % 255) << 8) |
               (uint32_t)(1 + i % 255));
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: floor N INTERVAL_MS WARMUP_S WINDOW_S\n");
    return 2;
  }
  long n = atol(argv[1]), ival_ms = atol(argv[2]);
  double warmup = atof(argv[3]), window = atof(argv[4]);
  if (n < 1 || n > 255L * 65025 || ival_ms < 10 || window <= 0) {
    fprintf(stderr, "floor: bad arguments\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP);
  if (fd < 0) { perror("floor: socket"); return 1; }
  struct icmp_filter filt = {.data = ~(1u << ICMP_ECHOREPLY)};
  if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &filt, sizeof filt) < 0) { perror("floor: ICMP_FILTER"); return 1; }
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);

  uint16_t ident = (uint16_t)getpid();
  uint64_t cookie = ((uint64_t)getpid() << 32) ^ (uint64_t)now_ns() ^ 0x9e3779b97f4a7c15ULL;
  uint32_t *rounds = calloc((size_t)n, sizeof *rounds); /* round of the last request per target */
  uint8_t *answered = calloc((size_t)n, 1);
  if (!rounds || !answered) return 1;

  long ticks_per_round = ival_ms * 1000000LL / TICK_NS;
  struct sockaddr_in dst[BATCH];
  struct echo out[BATCH];
  struct iovec oiov[BATCH];
  struct mmsghdr omsg[BATCH];
  uint8_t in[BATCH][128];
  struct sockaddr_in src[BATCH];
  struct iovec iiov[BATCH];
  struct mmsghdr imsg[BATCH];
  for (int k = 0; k < BATCH; k++) {
    iiov[k] = (struct iovec){in[k], sizeof in[k]};
    oiov[k] = (struct iovec){&out[k], sizeof out[k]};
  }

  int64_t t0 = now_ns(), win0 = t0 + (int64_t)(warmup * 1e9), end = win0 + (int64_t)(window * 1e9);
  int64_t next = t0;
  long tick = 0;
  int in_window = 0;
  unsigned long sent = 0, received = 0, late = 0, send_err = 0;
  double c0 = 0;
  int64_t w0 = 0;
  for (;;) {
    int64_t t = now_ns();
    if (!in_window && t >= win0) { in_window = 1; c0 = cpu_s(); w0 = t; sent = received = late = 0; }
    if (t >= end) break;
    if (t >= next) {
      /* this tick's share of the targets: i with i % ticks_per_round == tick % ticks_per_round */
      long slot = tick % ticks_per_round;
      uint32_t round = (uint32_t)(tick / ticks_per_round) + 1;
      long i = slot;
      while (i < n) {
        int m = 0;
        for (; m < BATCH && i < n; m++, i += ticks_per_round) {
          dst[m] = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = addr_of(i)};
          out[m] = (struct echo){.h = {.type = ICMP_ECHO, .un.echo = {htons(ident), htons((uint16_t)round)}},
                                 .cookie = cookie, .index = (uint32_t)i, .round = round};
          out[m].h.checksum = csum(&out[m], sizeof out[m]);
          omsg[m] = (struct mmsghdr){.msg_hdr = {.msg_name = &dst[m], .msg_namelen = sizeof dst[m],
                                                 .msg_iov = &oiov[m], .msg_iovlen = 1}};
          rounds[i] = round;
          answered[i] = 0;
        }
        int done = 0;
        while (done < m) {
          int r = sendmmsg(fd, omsg + done, (unsigned)(m - done), 0);
          if (r < 0) {
            if (errno == EINTR) continue;
            send_err += (unsigned long)(m - done); /* ENOBUFS/EAGAIN: count, do not retry */
            break;
          }
          done += r;
        }
        sent += (unsigned long)done;
      }
      tick++;
      next += TICK_NS;
    }
    int64_t wait_ns = next - now_ns();
    if (wait_ns < 0) wait_ns = 0;
    struct timespec ts = {wait_ns / 1000000000LL, wait_ns % 1000000000LL};
    struct pollfd p = {fd, POLLIN, 0};
    if (ppoll(&p, 1, &ts, NULL) <= 0) continue;
    for (;;) {
      for (int k = 0; k < BATCH; k++)
        imsg[k] = (struct mmsghdr){.msg_hdr = {.msg_name = &src[k], .msg_namelen = sizeof src[k],
                                               .msg_iov = &iiov[k], .msg_iovlen = 1}};
      int r = recvmmsg(fd, imsg, BATCH, MSG_DONTWAIT, NULL);
      if (r <= 0) break;
      for (int k = 0; k < r; k++) {
        const uint8_t *b = in[k];
        size_t len = imsg[k].msg_len, ihl = (size_t)(b[0] & 0x0f) * 4;
        if (len < ihl + sizeof(struct echo)) continue;
        struct echo e;
        memcpy(&e, b + ihl, sizeof e);
        if (e.h.type != ICMP_ECHOREPLY || e.h.un.echo.id != htons(ident) || e.cookie != cookie) continue;
        if (e.index >= (uint32_t)n || src[k].sin_addr.s_addr != addr_of(e.index)) continue;
        if (e.round != rounds[e.index]) { late++; continue; }
        if (answered[e.index]) continue; /* duplicate */
        answered[e.index] = 1;
        received++;
      }
      if (r < BATCH) break;
    }
  }
  double cpu = cpu_s() - c0, wall = (double)(now_ns() - w0) / 1e9;
  printf("%lu %lu %lu %.4f %.4f %lu\n", sent, received, late, cpu, wall, send_err);
  return 0;
}
