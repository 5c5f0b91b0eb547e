// SPDX-License-Identifier: Apache-2.0 OR GPL-2.0-only (the kernel is told "GPL")
//
// The final counters of every TCP socket that closes, summed in the kernel by flow: one
// entry per (network namespace, local address, peer address, server port, side), however
// many connections the flow made. The agent reads the sums once a window, so 100 short
// connections a second cost it a handful of map entries instead of 200 destroy
// notifications (docs/kernel-counters.md, "Closed sockets").
//
// Hooked: the tracepoint `sock:inet_sock_set_state` (a raw BTF tracepoint, not a kprobe),
// when a socket enters TCP_CLOSE (its last state change: tcp_set_state fires it after it has
// unhashed the socket and put back its port, so `skc_num` is 0 by then and the local port is
// read from `inet_sport`), and when one starts listening.
//
// Built by build.sh (clang -target bpf, CO-RE); the object beside this file is what the agent
// embeds. The types below name only the fields read: CO-RE relocates each by name against the
// running kernel's BTF.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef __u16 __be16;
typedef __u32 __be32;

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define TCP_CLOSE 7
#define TCP_LISTEN 10

#define BPF_MAP_TYPE_HASH 1
#define BPF_MAP_TYPE_ARRAY 2
#define BPF_ANY 0
#define BPF_NOEXIST 1
#define BPF_F_NO_PREALLOC 1

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define CORE __attribute__((preserve_access_index))

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
static void *(*bpf_skc_to_tcp_sock)(void *sk) = (void *)137;

struct ns_common {
    __u32 inum;
} CORE;

struct net {
    struct ns_common ns;
} CORE;

typedef struct {
    struct net *net;
} possible_net_t;

struct in6_addr {
    union {
        __u32 u6_addr32[4];
    } in6_u;
} CORE;

struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    possible_net_t skc_net;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} CORE;

struct sock {
    struct sock_common __sk_common;
    __u16 sk_protocol;
} CORE;

struct inet_sock {
    __be16 inet_sport;
} CORE;

struct inet_connection_sock {
    struct inet_sock icsk_inet;
} CORE;

struct tcp_sock {
    struct inet_connection_sock inet_conn;
    __u64 bytes_received;
    __u64 bytes_sent;
    __u64 bytes_retrans;
} CORE;

// A flow, as the agent keys it. Addresses in network order (IPv4: the first 4 bytes).
struct flow_key {
    __u32 netns;
    // The server's port: the socket's own when it is the server side (`server` 1), its peer's
    // otherwise. The client's ephemeral port is left out, so one flow's connections share it.
    __u16 port;
    __u8 family;
    __u8 server;
    __u8 local[16];
    __u8 remote[16];
};

// Sums over the flow's closed sockets, cumulative since the map was made.
struct flow_val {
    __u64 closes;
    // Data bytes sent (tcpi_bytes_sent less tcpi_bytes_retrans).
    __u64 sent;
    __u64 retrans;
    // Data bytes received (tcpi_bytes_received less the received FIN, taken as one byte
    // whenever anything was received, as the agent does for a destroy notification).
    __u64 received;
};

struct listen_key {
    __u32 netns;
    __u32 port;
};

// [0]: the host network namespace, whose sockets are left to the agent's destroy listener
// (Tetragon's events name their processes by 4-tuple). [1]: 1 once the agent has set [0];
// nothing is counted before.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);
} config SEC(".maps");

// Listening ports by namespace: the agent's, from its dumps, and each new listener's.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct listen_key);
    __type(value, __u32);
} listening SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct flow_key);
    __type(value, struct flow_val);
} flows SEC(".maps");

// [0]: closes not counted because `flows` was full.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} lost SEC(".maps");

static inline __attribute__((always_inline)) int copy_addr(__u8 *dst, const struct in6_addr *a) {
    __u32 w0 = a->in6_u.u6_addr32[0], w1 = a->in6_u.u6_addr32[1];
    __u32 w2 = a->in6_u.u6_addr32[2], w3 = a->in6_u.u6_addr32[3];
    __builtin_memcpy(dst, &w0, 4);
    __builtin_memcpy(dst + 4, &w1, 4);
    __builtin_memcpy(dst + 8, &w2, 4);
    __builtin_memcpy(dst + 12, &w3, 4);
    return (w0 | w1 | w2 | w3) != 0;
}

SEC("tp_btf/inet_sock_set_state")
int inet_sock_set_state(__u64 *ctx) {
    struct sock *sk = (struct sock *)ctx[0];
    int oldstate = (int)ctx[1];
    int newstate = (int)ctx[2];
    __u32 zero = 0, one = 1;

    if (newstate != TCP_CLOSE && newstate != TCP_LISTEN)
        return 0;
    if (sk->sk_protocol != IPPROTO_TCP)
        return 0;
    __u32 *host = bpf_map_lookup_elem(&config, &zero);
    __u32 *ready = bpf_map_lookup_elem(&config, &one);
    if (!host || !ready || !*ready)
        return 0;
    __u32 netns = sk->__sk_common.skc_net.net->ns.inum;
    if (netns == *host)
        return 0;
    struct listen_key lk = {.netns = netns, .port = sk->__sk_common.skc_num};
    if (newstate == TCP_LISTEN) {
        // A listener bound by listen(2) itself gets its port just after: its namespace's
        // next dump finds it.
        if (lk.port)
            bpf_map_update_elem(&listening, &lk, &one, BPF_ANY);
        return 0;
    }
    if (oldstate == TCP_LISTEN)
        return 0;
    struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
    if (!tp)
        return 0;
    __u16 sport = tp->inet_conn.icsk_inet.inet_sport;
    lk.port = __builtin_bswap16(sport);

    struct flow_key key;
    __builtin_memset(&key, 0, sizeof(key));
    key.netns = netns;
    key.family = (__u8)sk->__sk_common.skc_family;
    if (key.family == AF_INET) {
        __u32 local = sk->__sk_common.skc_rcv_saddr, remote = sk->__sk_common.skc_daddr;
        if (!remote)
            return 0;
        __builtin_memcpy(key.local, &local, 4);
        __builtin_memcpy(key.remote, &remote, 4);
    } else if (key.family == AF_INET6) {
        copy_addr(key.local, &sk->__sk_common.skc_v6_rcv_saddr);
        if (!copy_addr(key.remote, &sk->__sk_common.skc_v6_daddr))
            return 0;
    } else {
        return 0;
    }
    if (bpf_map_lookup_elem(&listening, &lk)) {
        key.server = 1;
        key.port = lk.port;
    } else {
        __u16 p = sk->__sk_common.skc_dport;
        key.port = __builtin_bswap16(p);
    }

    __u64 sent = tp->bytes_sent, retrans = tp->bytes_retrans, received = tp->bytes_received;
    struct flow_val add = {
        .closes = 1,
        .sent = sent > retrans ? sent - retrans : 0,
        .retrans = retrans,
        .received = received > 0 ? received - 1 : 0,
    };
    struct flow_val *v = bpf_map_lookup_elem(&flows, &key);
    if (!v) {
        if (bpf_map_update_elem(&flows, &key, &add, BPF_NOEXIST) == 0)
            return 0;
        // Another CPU made it first, or the map is full.
        v = bpf_map_lookup_elem(&flows, &key);
        if (!v) {
            __u64 *n = bpf_map_lookup_elem(&lost, &zero);
            if (n)
                __sync_fetch_and_add(n, 1);
            return 0;
        }
    }
    __sync_fetch_and_add(&v->closes, add.closes);
    __sync_fetch_and_add(&v->sent, add.sent);
    __sync_fetch_and_add(&v->retrans, add.retrans);
    __sync_fetch_and_add(&v->received, add.received);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
