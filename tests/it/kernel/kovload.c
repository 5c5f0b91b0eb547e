/* kovload: the workload of the real-kernel tests. Every byte it moves is one the test asked for,
 * so the agent's totals can be checked exactly against its arguments.
 *
 * It does its setup (enter a network namespace, open listeners), then blocks until SIGUSR1, so
 * the test can move it into its pod's cgroup and start the agent first: nothing it does before
 * the signal is traffic or file I/O. Built with `gcc -static`: no loader reads files on its
 * behalf. It prints nothing on success (stdout writes would count in its wchar); a failure goes
 * to stderr and exit status 1.
 *
 *   kovload [netns PATH] [listen ADDR PORT]... STEP...
 *   serve N REQ RESP           accept N connections on the first listener, one after another:
 *                              read REQ bytes, write RESP, close, then read until EOF
 *   reply N REQ RESP           as serve, but the server closes first (as an HTTP server does
 *                              after `Connection: close`)
 *   connect ADDR PORT N REQ RESP [SPORT]
 *                              N connections one after another: write REQ, read RESP, read to
 *                              EOF, close (binds the source port SPORT when given)
 *   stream ADDR PORT CHUNKS SIZE MS
 *                              one connection: CHUNKS writes of SIZE bytes, MS ms apart, then
 *                              shutdown and read to EOF (the peer runs `sink`)
 *   sink                       accept one connection on the first listener, read to EOF, close
 *   hold ADDR PORT REQ RESP    connect, write REQ, read RESP, then wait for SIGUSR2 with the
 *                              connection open (the test kills it or deletes its namespace)
 *   pairs N                    N connections to its own first listener, both ends kept open
 *                              until SIGUSR2 (the benchmarks' idle sockets)
 *   write PATH SIZE CHUNK      create PATH and write SIZE bytes in CHUNK-byte writes
 *   read PATH CHUNK            read PATH to its end in CHUNK-byte reads
 *   wait2                      wait for SIGUSR2
 *   child STEPS... end         fork a child that runs STEPS and exits; the parent reaps it
 *   sleepms MS                 sleep
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char buf[1 << 16];
static int listeners[8];
static int nlisteners;

static void die(const char *what) {
  fprintf(stderr, "kovload: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *what) {
  fprintf(stderr, "kovload: %s\n", what);
  exit(1);
}

static long num(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == 0 || *end != 0 || v < 0) fail("bad number");
  return v;
}

static socklen_t addr_of(const char *host, long port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    return sizeof *a4;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    return sizeof *a6;
  }
  fail("bad address");
  return 0;
}

static void wait_signal(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  int got;
  if (sigwait(&set, &got) != 0) fail("sigwait");
}

static void write_all(int fd, long n) {
  while (n > 0) {
    long chunk = n < (long)sizeof buf ? n : (long)sizeof buf;
    ssize_t w = write(fd, buf, chunk);
    if (w < 0) die("write");
    n -= w;
  }
}

static void read_exact(int fd, long n) {
  while (n > 0) {
    long chunk = n < (long)sizeof buf ? n : (long)sizeof buf;
    ssize_t r = read(fd, buf, chunk);
    if (r < 0) die("read");
    if (r == 0) fail("early EOF");
    n -= r;
  }
}

static void read_eof(int fd) {
  ssize_t r = read(fd, buf, sizeof buf);
  if (r < 0) die("read to EOF");
  if (r != 0) fail("more data than expected");
}

static int dial(const char *host, long port, long sport) {
  struct sockaddr_storage ss, local;
  socklen_t len = addr_of(host, port, &ss);
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  if (sport > 0) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    socklen_t llen = addr_of(ss.ss_family == AF_INET ? "0.0.0.0" : "::", sport, &local);
    if (bind(fd, (struct sockaddr *)&local, llen) < 0) die("bind source port");
  }
  if (connect(fd, (struct sockaddr *)&ss, len) < 0) die("connect");
  return fd;
}

static int accept_one(void) {
  if (nlisteners == 0) fail("no listener");
  int fd = accept(listeners[0], NULL, NULL);
  if (fd < 0) die("accept");
  return fd;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* Runs the steps from argv[i]; returns the index after them (after `end` inside a child). */
/* The index just past the "end" that closes the block starting at `from` (blocks nest). */
static int block_end(int argc, char **argv, int from, const char *unclosed) {
  int end = from, depth = 1;
  while (end < argc && depth > 0) {
    if (!strcmp(argv[end], "child") || !strcmp(argv[end], "orphan")) depth++;
    if (!strcmp(argv[end], "end")) depth--;
    end++;
  }
  if (depth != 0) fail(unclosed);
  return end;
}

static int run(int argc, char **argv, int i) {
  while (i < argc) {
    const char *s = argv[i];
#define ARGS(n) \
  if (i + (n) >= argc) fail("missing arguments");
    if (!strcmp(s, "end")) return i + 1;
    if (!strcmp(s, "serve")) {
      ARGS(3);
      long n = num(argv[i + 1]), req = num(argv[i + 2]), resp = num(argv[i + 3]);
      for (long k = 0; k < n; k++) {
        int fd = accept_one();
        read_exact(fd, req);
        write_all(fd, resp);
        read_eof(fd);
        close(fd);
      }
      i += 4;
    } else if (!strcmp(s, "reply")) {
      ARGS(3);
      long n = num(argv[i + 1]), req = num(argv[i + 2]), resp = num(argv[i + 3]);
      for (long k = 0; k < n; k++) {
        int fd = accept_one();
        read_exact(fd, req);
        write_all(fd, resp);
        close(fd);
      }
      i += 4;
    } else if (!strcmp(s, "connect")) {
      ARGS(5);
      long port = num(argv[i + 2]), n = num(argv[i + 3]);
      long req = num(argv[i + 4]), resp = num(argv[i + 5]);
      long sport = 0;
      int next = i + 6;
      if (next < argc && argv[next][0] >= '0' && argv[next][0] <= '9') sport = num(argv[next++]);
      for (long k = 0; k < n; k++) {
        int fd = dial(argv[i + 1], port, sport);
        write_all(fd, req);
        read_exact(fd, resp);
        if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
        read_eof(fd);
        close(fd);
      }
      i = next;
    } else if (!strcmp(s, "stream")) {
      ARGS(5);
      long chunks = num(argv[i + 3]), size = num(argv[i + 4]), ms = num(argv[i + 5]);
      int fd = dial(argv[i + 1], num(argv[i + 2]), 0);
      for (long k = 0; k < chunks; k++) {
        write_all(fd, size);
        if (k + 1 < chunks) sleep_ms(ms);
      }
      if (shutdown(fd, SHUT_WR) < 0) die("shutdown");
      read_eof(fd);
      close(fd);
      i += 6;
    } else if (!strcmp(s, "sink")) {
      int fd = accept_one();
      ssize_t r;
      while ((r = read(fd, buf, sizeof buf)) > 0) {
      }
      if (r < 0) die("read");
      close(fd);
      i += 1;
    } else if (!strcmp(s, "hold")) {
      ARGS(4);
      int fd = dial(argv[i + 1], num(argv[i + 2]), 0);
      write_all(fd, num(argv[i + 3]));
      read_exact(fd, num(argv[i + 4]));
      wait_signal(SIGUSR2);
      close(fd);
      i += 5;
    } else if (!strcmp(s, "pairs")) {
      ARGS(1);
      long n = num(argv[i + 1]);
      if (nlisteners == 0) fail("no listener");
      struct sockaddr_storage ss;
      socklen_t len = sizeof ss;
      if (getsockname(listeners[0], (struct sockaddr *)&ss, &len) < 0) die("getsockname");
      /* The handshakes complete into the listener's backlog: connect all, then accept all. */
      for (long k = 0; k < n; k++) {
        int fd = socket(ss.ss_family, SOCK_STREAM, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&ss, len) < 0) die("connect");
      }
      for (long k = 0; k < n; k++) accept_one();
      wait_signal(SIGUSR2);
      i += 2;
    } else if (!strcmp(s, "write")) {
      ARGS(3);
      long size = num(argv[i + 2]), chunk = num(argv[i + 3]);
      if (chunk <= 0 || chunk > (long)sizeof buf) fail("bad chunk");
      int fd = open(argv[i + 1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd < 0) die("open for writing");
      while (size > 0) {
        long c = size < chunk ? size : chunk;
        if (write(fd, buf, c) != c) die("write file");
        size -= c;
      }
      close(fd);
      i += 4;
    } else if (!strcmp(s, "read")) {
      ARGS(2);
      long chunk = num(argv[i + 2]);
      if (chunk <= 0 || chunk > (long)sizeof buf) fail("bad chunk");
      int fd = open(argv[i + 1], O_RDONLY);
      if (fd < 0) die("open for reading");
      ssize_t r;
      while ((r = read(fd, buf, chunk)) > 0) {
      }
      if (r < 0) die("read file");
      close(fd);
      i += 3;
    } else if (!strcmp(s, "wait2")) {
      wait_signal(SIGUSR2);
      i += 1;
    } else if (!strcmp(s, "sleepms")) {
      ARGS(1);
      sleep_ms(num(argv[i + 1]));
      i += 2;
    } else if (!strcmp(s, "subreaper")) {
      /* Orphans below this process are reparented to it, not to init. */
      if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) die("prctl");
      i += 1;
    } else if (!strcmp(s, "reap")) {
      /* Reaps one child: an orphan reparented here. */
      int status;
      if (waitpid(-1, &status, 0) < 0) die("waitpid");
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("orphan failed");
      i += 1;
    } else if (!strcmp(s, "orphan")) {
      /* A child that forks a grandchild to run the steps up to "end", then waits for SIGUSR1
       * and exits: the grandchild is orphaned (reparented to the nearest subreaper). */
      int end = block_end(argc, argv, i + 1, "orphan without end");
      pid_t pid = fork();
      if (pid < 0) die("fork");
      if (pid == 0) {
        pid_t grandchild = fork();
        if (grandchild < 0) die("fork");
        if (grandchild == 0) {
          run(argc, argv, i + 1);
          _exit(0);
        }
        wait_signal(SIGUSR1);
        _exit(0);
      }
      int status;
      if (waitpid(pid, &status, 0) < 0) die("waitpid");
      i = end;
    } else if (!strcmp(s, "child")) {
      int end = block_end(argc, argv, i + 1, "child without end");
      pid_t pid = fork();
      if (pid < 0) die("fork");
      if (pid == 0) {
        run(argc, argv, i + 1);
        _exit(0);
      }
      int status;
      if (waitpid(pid, &status, 0) < 0) die("waitpid");
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("child failed");
      i = end;
    } else {
      fprintf(stderr, "kovload: unknown step %s\n", s);
      exit(2);
    }
  }
  return i;
}

int main(int argc, char **argv) {
  /* SIGUSR1 and SIGUSR2 are blocked from the start and taken with sigwait: a signal sent before
   * the program waits is kept pending, not fatal. The test waits for SigBlk to show them. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) die("sigprocmask");
  memset(buf, 'k', sizeof buf);
  int i = 1;
  while (i < argc) {
    if (!strcmp(argv[i], "netns") && i + 1 < argc) {
      int fd = open(argv[i + 1], O_RDONLY | O_CLOEXEC);
      if (fd < 0) die("open netns");
      if (setns(fd, CLONE_NEWNET) < 0) die("setns");
      close(fd);
      i += 2;
    } else if (!strcmp(argv[i], "listen") && i + 2 < argc) {
      struct sockaddr_storage ss;
      socklen_t len = addr_of(argv[i + 1], num(argv[i + 2]), &ss);
      int fd = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
      if (fd < 0) die("socket");
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (bind(fd, (struct sockaddr *)&ss, len) < 0) die("bind");
      if (listen(fd, 4096) < 0) die("listen");
      if (nlisteners == 8) fail("too many listeners");
      listeners[nlisteners++] = fd;
      i += 3;
    } else {
      break;
    }
  }
  wait_signal(SIGUSR1);
  run(argc, argv, i);
  return 0;
}
