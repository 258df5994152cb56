// SPDX-License-Identifier: GPL-2.0
/* Causeway's narrow waist: every socket read and write of every process.
 *
 * Syscall tracepoints on entry save the arguments per thread (keyed by
 * pid_tgid); the exit tracepoint, which knows how many bytes really moved,
 * emits one event with the paper's four groups of facts: program (pid, tid,
 * comm), network (socket id, 5-tuple, TCP sequence), tracing (timestamps,
 * direction, syscall trace id) and syscall (byte count, payload prefix).
 * Files, pipes and unix sockets are dropped at entry, in the kernel.
 *
 * TLS: uprobes on OpenSSL's SSL_read/SSL_write (and _ex) see the plaintext.
 * The socket behind an SSL* is learnt from the syscall the library makes on
 * the same thread while inside the call (no OpenSSL struct offsets needed);
 * that syscall's own event, ciphertext, is not emitted.
 *
 * Go: the goroutine behind a syscall is read from the thread's TLS, and
 * uprobes on the Go runtime see which goroutine created which and where
 * values pass over channels; in a Go process the syscall trace id then
 * follows goroutines instead of threads (see "Go goroutines" below). */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EINPROGRESS 115
#define EEXIST 17

#define MAX_PAYLOAD 16384 /* hard cap on the captured prefix */
#define MAX_IOV 64        /* iovecs copied per message (gRPC writes a frame header and
                             * its payload as separate iovecs, dozens per sendmsg) */
#define MAX_MMSG 4        /* messages reported per sendmmsg/recvmmsg */

enum event_kind { EV_DATA = 1, EV_OPEN = 2, EV_CLOSE = 3 };
enum direction { DIR_INGRESS = 0, DIR_EGRESS = 1 };
/* trace_state.last_dir of a goroutine's state taken over from another
 * goroutine: its next inbound message starts a new id, its outbound ones
 * carry the inherited id. */
#define DIR_INHERITED 2
enum role { ROLE_UNKNOWN = 0, ROLE_CLIENT = 1, ROLE_SERVER = 2 };
/* Must match causeway_model::Syscall's order. */
enum sc {
	SC_READ, SC_WRITE, SC_READV, SC_WRITEV, SC_SENDTO, SC_RECVFROM,
	SC_SENDMSG, SC_RECVMSG, SC_SENDMMSG, SC_RECVMMSG, SC_SENDFILE,
	SC_SSL_READ, SC_SSL_WRITE,
	SC_CONNECT = 100, SC_ACCEPT = 101,
};
/* event_hdr.flags */
#define F_TLS 1

/* Wire layout shared with the Rust decoder (causeway-bpf/src/event.rs). */
struct event_hdr {
	u64 socket_id;
	u64 enter_ns;
	u64 exit_ns;
	u64 trace_id;
	u32 tgid;
	u32 tid;
	s32 fd;
	u32 tcp_seq;
	u32 total_len;
	u32 cap_len;
	u16 lport;
	u16 rport;
	u8 kind;
	u8 direction;
	u8 syscall;
	u8 role;
	u8 family;
	u8 l4;
	u8 flags;
	u8 pad[5];
	u8 laddr[16];
	u8 raddr[16];
	char comm[16];
	u64 coroutine_id; /* Go: the goroutine id; 0 elsewhere */
};
_Static_assert(sizeof(struct event_hdr) == 128, "event_hdr layout");

/* Twice the cap, so an offset and a length each bounded by the cap always
 * stay inside the buffer as far as the verifier can prove. */
struct data_event {
	struct event_hdr h;
	u8 data[2 * MAX_PAYLOAD];
};

/* Set by the loader before load. */
const volatile u32 self_tgid = 0;   /* the agent: never traced */
const volatile u32 target_tgid = 0; /* 0: every process */
const volatile u32 payload_cap = 1024;
const volatile u64 trace_idle_ns = 60ULL * 1000000000ULL;

/* Read by the agent. */
u64 lost_events = 0;    /* ring buffer full */
u64 next_socket_id = 0;
u64 next_trace_id = 0;

struct io_args {
	u64 enter_ns;
	u64 sk;
	u64 buf;      /* read/write/sendto/recvfrom buffer, or iovec/msghdr/mmsghdr pointer */
	u64 addr;     /* user sockaddr (sendto dest, recvfrom src) */
	u32 count;    /* iovcnt / vlen */
	u32 tcp_seq;  /* sequence of the first byte, read at entry */
	s32 fd;
	u8 syscall;
	u8 direction;
};

struct sock_info {
	u64 id;
	u64 last_egress_ns; /* Go processes: when a send on it last began */
	u8 role;
};

struct trace_state {
	u64 id;
	u64 socket_id; /* socket of the inbound message that started it */
	u64 last_ns;
	u8 last_dir;
};

/* A call into OpenSSL in progress on a thread. */
struct ssl_call {
	u64 ssl;      /* SSL * */
	u64 buf;
	u64 len_ptr;  /* _ex variants: size_t *readbytes / *written */
	u64 enter_ns;
	u64 sk;       /* learnt from a syscall made inside the call */
	u32 tcp_seq;  /* ... and the sequence of its first byte */
	s32 fd;
	u8 dir;
	u8 active;
	u8 ex;
};

/* The socket an SSL* last did I/O on, for calls served from OpenSSL's
 * buffers without a syscall. */
struct ssl_sock {
	u64 sk;
	s32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64); /* SSL * */
	__type(value, struct ssl_sock);
} ssl_sockets SEC(".maps");

/* What Causeway keeps per thread: the arguments of its socket syscall in
 * progress (consumed at exit: sk == 0) and its syscall trace id state. In
 * task-local storage, which hangs off the task itself: no hashing per
 * syscall (a hash lookup cost more than the rest of a probe here), and the
 * kernel frees it when the thread exits. */
struct thread_state {
	struct io_args args;
	struct trace_state trace;
	struct ssl_call ssl;
	/* Go: the process's probe cookie (0: not a probed Go process), cached
	 * with the mm and go_procs_gen it was looked up for. */
	u64 go_cookie;
	u64 go_mm;
	u64 go_gen;
	u64 go_parent; /* Go: inside runtime.newproc1, the creating goroutine */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, u64); /* struct sock * */
	__type(value, struct sock_info);
} sockets SEC(".maps");


/* One event under construction per CPU (tracepoint programs do not migrate).
 * A plain array indexed by CPU, since per-CPU values are capped at 32 KiB;
 * the loader sizes it to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, u32);
	__type(value, struct data_event);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024 * 1024);
} events SEC(".maps");

static __always_inline bool skip_process(u64 pid_tgid)
{
	u32 tgid = pid_tgid >> 32;
	if (tgid == self_tgid)
		return true;
	return target_tgid != 0 && tgid != target_tgid;
}

/* fd -> struct sock *, or 0 unless it is a TCP or UDP socket over IPv4/IPv6.
 *
 * Runs on every entry of every hooked syscall, files and pipes included, so
 * it walks kernel memory with direct BTF-typed loads (the task from
 * bpf_get_current_task_btf, untyped pointers cast with bpf_core_cast) rather
 * than one bpf_probe_read_kernel call per field: on this kernel each helper
 * call costs tens of nanoseconds. A faulting load reads as zero. */
static __always_inline struct sock *fd_to_sock(s32 fd)
{
	if (fd < 0)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	if (!files)
		return 0;
	struct fdtable *fdt = files->fdt;
	if (!fdt || (u32)fd >= fdt->max_fds)
		return 0;
	struct file *fp = 0;
	/* An array of pointers has no BTF type to walk: one explicit read. */
	bpf_probe_read_kernel(&fp, sizeof(fp), &fdt->fd[fd]);
	if (!fp)
		return 0;
	struct file *f = bpf_core_cast(fp, struct file);
	struct inode *inode = f->f_inode;
	if (!inode || (inode->i_mode & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = bpf_core_cast(f->private_data, struct socket);
	struct sock *sk = sock->sk;
	if (!sk)
		return 0;
	u16 family = sk->__sk_common.skc_family;
	if (family != AF_INET && family != AF_INET6)
		return 0;
	u16 proto = sk->sk_protocol;
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	return sk;
}

static __always_inline struct sock *as_sock(u64 skp)
{
	return bpf_core_cast((void *)skp, struct sock);
}

static __always_inline struct sock_info *sock_lookup(u64 sk, u8 role, bool fresh)
{
	struct sock_info *info = fresh ? 0 : bpf_map_lookup_elem(&sockets, &sk);
	if (info)
		return info;
	struct sock_info n = {
		.id = __sync_fetch_and_add(&next_socket_id, 1) + 1,
		.role = role,
	};
	bpf_map_update_elem(&sockets, &sk, &n, BPF_ANY);
	return bpf_map_lookup_elem(&sockets, &sk);
}

static __always_inline void fill_tuple(struct event_hdr *h, u64 skp)
{
	struct sock *sk = as_sock(skp);
	h->l4 = sk->sk_protocol;
	h->lport = sk->__sk_common.skc_num;
	h->rport = __builtin_bswap16(sk->__sk_common.skc_dport);
	if (sk->__sk_common.skc_family == AF_INET) {
		h->family = 4;
		u32 l = sk->__sk_common.skc_rcv_saddr;
		u32 r = sk->__sk_common.skc_daddr;
		__builtin_memcpy(h->laddr, &l, 4);
		__builtin_memcpy(h->raddr, &r, 4);
	} else {
		h->family = 6;
		__builtin_memcpy(h->laddr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(h->raddr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
	}
}

/* Unconnected UDP has no peer in the socket: take it from the syscall's sockaddr. */
static __always_inline void peer_from_sockaddr(struct event_hdr *h, u64 uaddr)
{
	if (!uaddr || h->rport != 0)
		return;
	unsigned short fam = 0;
	bpf_probe_read_user(&fam, sizeof(fam), (void *)uaddr);
	if (fam == AF_INET && h->family == 4) {
		struct sockaddr_in sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr);
		h->rport = __builtin_bswap16(sa.sin_port);
		__builtin_memcpy(h->raddr, &sa.sin_addr, 4);
	} else if (fam == AF_INET6 && h->family == 6) {
		struct sockaddr_in6 sa = {};
		bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr);
		h->rport = __builtin_bswap16(sa.sin6_port);
		__builtin_memcpy(h->raddr, sa.sin6_addr, 16);
	}
}

/* The paper's systrace_id: an inbound message starts a new id for its thread
 * (unless it continues the previous inbound one on the same socket); outbound
 * messages carry the thread's current id, so a server's request and the
 * downstream calls it makes before answering share it. */
static __always_inline u64 syscall_trace_id(struct trace_state *st, u8 dir, u64 socket_id, u64 now)
{
	if (st->id && now - st->last_ns < trace_idle_ns) {
		bool same = dir == DIR_INGRESS ? (st->last_dir == DIR_INGRESS && st->socket_id == socket_id)
					       : true;
		if (same) {
			st->last_ns = now;
			st->last_dir = dir;
			return st->id;
		}
	}
	struct trace_state n = {
		.id = __sync_fetch_and_add(&next_trace_id, 1) + 1,
		.socket_id = socket_id,
		.last_ns = now,
		.last_dir = dir,
	};
	*st = n;
	return n.id;
}

/* --- Go goroutines: pseudo-threads ----------------------------------------
 *
 * Go runs goroutines on a pool of threads: a goroutine hops threads at every
 * reschedule, and a server handler's downstream call is often made by a
 * goroutine it spawned, on another thread. Per-thread trace ids then link
 * the wrong requests. In a Go process the trace state therefore lives per
 * goroutine, keyed by (tgid, goid), and flows the way the work does:
 *
 * - at each socket syscall, the goroutine is the g in the thread's TLS
 *   (fs:-8 on amd64, the offset read from the binary): no probe on the
 *   scheduler, whose switches are far more frequent than socket I/O. Its
 *   goid is reported as the event's coroutine_id. (In C code called
 *   through cgo the TLS g is g0: such syscalls are traced per thread.)
 * - a go statement (runtime.newproc) creates a goroutine: the new one takes
 *   over its creator's trace id, so a handler's `go call()` carries the
 *   request's id.
 * - a value sent on a channel carries the sender's trace id to the
 *   goroutine that receives it (runtime.chansend, chanrecv, selectgo):
 *   handed straight to a parked receiver, or kept per channel until a
 *   receiver takes a buffered value or a parked sender's. net/http's client
 *   writes each request from a long-lived per-connection goroutine fed
 *   through a channel. A sender with no trace id makes the receiver drop
 *   its own; the runtime's own sends (timers, from g0) change nothing.
 * - runtime.goexit1 ends a goroutine: its state is deleted.
 *
 * A goroutine's inbound message continues its previous one only if it is on
 * the same socket and nothing was sent on that socket since (by any
 * goroutine): net/http's client reads every response of a connection in
 * one goroutine while other goroutines write the requests.
 *
 * A process counts as Go once one of these probes fired in it (go_procs):
 * any busy Go program creates goroutines or uses channels at once, and a
 * net/http server spawns a goroutine for a connection before reading it.
 *
 * All of it reads user memory, never writes any. The loader packs the
 * offsets it read from the binary into each probe's cookie (go_off_*). */

struct go_key {
	u64 goid;
	u32 tgid;
	u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, struct go_key);
	__type(value, struct trace_state);
} go_traces SEC(".maps");

/* A channel's last sender's trace state (id 0: the sender had none), for
 * the goroutine that takes the value out of the buffer. Keyed by the
 * *hchan. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct trace_state);
} go_chans SEC(".maps");

/* Go processes seen by a runtime probe: tgid -> cookie and mm (a pid
 * reused by another program has another mm). */
struct go_proc {
	u64 cookie;
	u64 mm;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, u32);
	__type(value, struct go_proc);
} go_procs SEC(".maps");

/* Bumped at each new go_procs entry: threads look their process up again. */
u64 go_procs_gen = 0;

/* Read by the agent: states made, taken over, deleted when a goroutine
 * ended or took over "no id" from a channel, and those that could not be
 * stored. Evictions by the LRU are what the agent finds missing: created -
 * exited - dropped - swept - live. */
u64 go_states_created = 0;
u64 go_spawn_inherited = 0;
u64 go_handoff_inherited = 0;
u64 go_states_exited = 0;
u64 go_states_dropped = 0;
u64 go_state_failed = 0;

/* The cookie: runtime.g.goid's offset in bits 0-15, hchan.recvq's in 16-23,
 * hchan.sendq's in 24-31, sudog.g's in 32-39, and the g's offset from the
 * thread pointer (signed) in 48-63 (hchan.qcount, waitq.first and scase.c
 * are first in their structs, and a scase is two pointers: the loader
 * checks). */
static __always_inline u64 go_off_goid(u64 cookie) { return cookie & 0xffff; }
static __always_inline u64 go_off_recvq(u64 cookie) { return (cookie >> 16) & 0xff; }
static __always_inline u64 go_off_sendq(u64 cookie) { return (cookie >> 24) & 0xff; }
static __always_inline u64 go_off_sudog_g(u64 cookie) { return (cookie >> 32) & 0xff; }
static __always_inline s64 go_off_tls(u64 cookie) { return (s64)(__s16)(cookie >> 48); }

static __always_inline u64 go_read(u64 addr)
{
	u64 v = 0;
	if (addr)
		bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

static __always_inline u64 go_goid(u64 g, u64 cookie)
{
	return g ? go_read(g + go_off_goid(cookie)) : 0;
}

/* The cookie of the current process if it is a Go process seen by a
 * runtime probe, else 0; cached in the thread's state. */
static __always_inline u64 go_cookie_of(struct thread_state *ts)
{
	struct task_struct *task = bpf_get_current_task_btf();
	u64 mm = (u64)task->mm;
	u64 gen = go_procs_gen;
	if (ts->go_gen != gen || ts->go_mm != mm) {
		u32 tgid = bpf_get_current_pid_tgid() >> 32;
		struct go_proc *p = bpf_map_lookup_elem(&go_procs, &tgid);
		ts->go_cookie = p && p->mm == mm ? p->cookie : 0;
		ts->go_mm = mm;
		ts->go_gen = gen;
	}
	return ts->go_cookie;
}

/* The goroutine this thread runs, from the g in its TLS; 0 if not Go (or
 * g0: the runtime itself, or C code called through cgo). */
static __always_inline u64 go_current_goid(struct thread_state *ts)
{
	u64 cookie = go_cookie_of(ts);
	if (!cookie)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	u64 g = go_read(task->thread.fsbase + go_off_tls(cookie));
	return go_goid(g, cookie);
}

/* Called by every runtime probe: marks the process as Go. Returns the
 * thread's state (0 if it could not be made). */
static __always_inline struct thread_state *go_register(u64 cookie)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct thread_state *ts = bpf_task_storage_get(&threads, task, 0,
						       BPF_LOCAL_STORAGE_GET_F_CREATE);
	u64 mm = (u64)task->mm;
	if (ts && ts->go_cookie == cookie && ts->go_mm == mm)
		return ts;
	u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_proc *p = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!p || p->mm != mm || p->cookie != cookie) {
		struct go_proc n = { .cookie = cookie, .mm = mm };
		bpf_map_update_elem(&go_procs, &tgid, &n, BPF_ANY);
		__sync_fetch_and_add(&go_procs_gen, 1);
	}
	if (ts) {
		ts->go_cookie = cookie;
		ts->go_mm = mm;
		ts->go_gen = go_procs_gen;
	}
	return ts;
}

static __always_inline struct trace_state *go_state(u32 tgid, u64 goid, bool create)
{
	struct go_key k = { .goid = goid, .tgid = tgid };
	struct trace_state *st = bpf_map_lookup_elem(&go_traces, &k);
	if (st || !create)
		return st;
	struct trace_state n = {};
	long err = bpf_map_update_elem(&go_traces, &k, &n, BPF_NOEXIST);
	if (err == 0)
		__sync_fetch_and_add(&go_states_created, 1);
	else if (err != -EEXIST)
		__sync_fetch_and_add(&go_state_failed, 1);
	return bpf_map_lookup_elem(&go_traces, &k);
}

/* syscall_trace_id for a goroutine (see above for the inbound rule). */
static __always_inline u64 go_trace_id(struct trace_state *st, u8 dir, struct sock_info *info, u64 now)
{
	if (st->id && now - st->last_ns < trace_idle_ns) {
		bool same = dir == DIR_EGRESS ||
			    (st->last_dir == DIR_INGRESS && st->socket_id == info->id &&
			     info->last_egress_ns <= st->last_ns);
		if (same) {
			st->last_ns = now;
			st->last_dir = dir;
			return st->id;
		}
	}
	struct trace_state n = {
		.id = __sync_fetch_and_add(&next_trace_id, 1) + 1,
		.socket_id = info->id,
		.last_ns = now,
		.last_dir = dir,
	};
	*st = n;
	return n.id;
}

/* What goroutine `goid` passes on: its live trace state, or one with id 0. */
static __always_inline struct trace_state go_passed_on(u32 tgid, u64 goid, u64 now)
{
	struct trace_state out = {};
	struct trace_state *st = go_state(tgid, goid, false);
	if (st && st->id && now - st->last_ns < trace_idle_ns) {
		out.id = st->id;
		out.socket_id = st->socket_id;
		out.last_ns = now;
		out.last_dir = DIR_INHERITED;
	}
	return out;
}

/* Goroutine `to` takes over `src` (id 0: drops its own). */
static __always_inline bool go_adopt(u32 tgid, u64 to, struct trace_state *src)
{
	struct go_key dk = { .goid = to, .tgid = tgid };
	if (!src->id) {
		if (bpf_map_delete_elem(&go_traces, &dk) == 0)
			__sync_fetch_and_add(&go_states_dropped, 1);
		return false;
	}
	struct trace_state *dst = bpf_map_lookup_elem(&go_traces, &dk);
	if (dst) {
		*dst = *src;
		return true;
	}
	if (bpf_map_update_elem(&go_traces, &dk, src, BPF_ANY)) {
		__sync_fetch_and_add(&go_state_failed, 1);
		return false;
	}
	__sync_fetch_and_add(&go_states_created, 1);
	return true;
}

/* The current goroutine (R14) sends on channel c. */
static __always_inline void go_on_send(u32 tgid, u64 g, u64 c, u64 cookie, u64 now)
{
	u64 from = go_goid(g, cookie);
	if (!from || !c)
		return; /* g0: the runtime's own sends (timers) */
	struct trace_state t = go_passed_on(tgid, from, now);
	u64 sg = go_read(c + go_off_recvq(cookie));
	if (sg) {
		/* A parked receiver: the value goes straight to it. */
		u64 to = go_goid(go_read(sg + go_off_sudog_g(cookie)), cookie);
		if (to && go_adopt(tgid, to, &t))
			__sync_fetch_and_add(&go_handoff_inherited, 1);
		return;
	}
	/* Into the buffer, or the sender parks: the receiver takes it later.
	 * (A channel only ever used by goroutines with no trace id gets no
	 * entry: an update of an LRU map costs more than a lookup.) */
	struct go_key ck = { .goid = c, .tgid = tgid };
	struct trace_state *last = bpf_map_lookup_elem(&go_chans, &ck);
	if (last)
		*last = t;
	else if (t.id && bpf_map_update_elem(&go_chans, &ck, &t, BPF_ANY))
		__sync_fetch_and_add(&go_state_failed, 1);
}

/* The current goroutine (R14) receives from channel c. */
static __always_inline void go_on_recv(u32 tgid, u64 g, u64 c, u64 cookie)
{
	if (!c)
		return;
	/* Nothing buffered and no sender parked: it parks, and a sender
	 * hands it the value (go_on_send). */
	if (!go_read(c) && !go_read(c + go_off_sendq(cookie)))
		return;
	u64 to = go_goid(g, cookie);
	struct go_key ck = { .goid = c, .tgid = tgid };
	struct trace_state *t = bpf_map_lookup_elem(&go_chans, &ck);
	if (!to || !t)
		return;
	struct trace_state copy = *t;
	if (go_adopt(tgid, to, &copy))
		__sync_fetch_and_add(&go_handoff_inherited, 1);
}

/* The trace id of a data event: per goroutine in Go processes whose
 * runtime is probed, per thread elsewhere. */
static __always_inline u64 event_trace_id(struct thread_state *ts, u64 goid, u32 tgid, u8 dir,
					  struct sock_info *info, u64 now)
{
	if (goid) {
		struct trace_state *st = go_state(tgid, goid, true);
		if (st)
			return go_trace_id(st, dir, info, now);
	}
	return syscall_trace_id(&ts->trace, dir, info->id, now);
}

/* A send on a socket of a Go process begins: remembered on the socket, so
 * that a goroutine reading it knows its next inbound message is new. */
static __always_inline void go_mark_egress(u64 sk, u64 now)
{
	struct sock_info *info = sock_lookup(sk, ROLE_UNKNOWN, false);
	if (info)
		info->last_egress_ns = now;
}

static __always_inline void save_args(struct io_args *a)
{
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0,
						       BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts)
		return;
	ts->args = *a;
	if (a->direction == DIR_EGRESS && a->syscall < SC_CONNECT && go_cookie_of(ts))
		go_mark_egress(a->sk, a->enter_ns);
	/* Inside SSL_read/SSL_write: this is the SSL's socket. */
	if (ts->ssl.active && !ts->ssl.sk) {
		ts->ssl.sk = a->sk;
		ts->ssl.fd = a->fd;
		ts->ssl.tcp_seq = a->tcp_seq;
	}
}

/* Copies out and consumes the thread's saved arguments; returns its state,
 * or 0 if no socket syscall of this thread is in progress. */
static __always_inline struct thread_state *take_args(struct io_args *a)
{
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);
	if (!ts || !ts->args.sk)
		return 0;
	*a = ts->args;
	ts->args.sk = 0;
	return ts;
}

static __always_inline struct data_event *scratch_event(void)
{
	u32 cpu = bpf_get_smp_processor_id();
	return bpf_map_lookup_elem(&scratch, &cpu);
}

static __always_inline u32 cap_of(u64 total)
{
	u32 cap = payload_cap;
	if (cap > MAX_PAYLOAD)
		cap = MAX_PAYLOAD;
	if (total < cap)
		cap = total;
	return cap;
}

/* Copies up to `want` bytes spread over `iovcnt` user iovecs. */
static __always_inline u32 copy_iov(struct data_event *e, u64 iovp, u64 iovcnt, u32 want)
{
	u64 off = 0;
	/* A bounded loop, not unrolled: the verifier walks it (kernels >= 5.3). */
	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= iovcnt || off >= want)
			break;
		struct iovec iov = {};
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(iovp + i * sizeof(struct iovec))))
			break;
		u64 n = iov.iov_len;
		if (n > want - off)
			n = want - off;
		/* The verifier cannot relate off and n; bound each by the cap
		 * (the buffer holds twice the cap) on the very registers used. */
		barrier_var(off);
		if (off > MAX_PAYLOAD)
			break;
		barrier_var(n);
		if (n > MAX_PAYLOAD)
			break;
		if (bpf_probe_read_user(&e->data[off], n, iov.iov_base))
			break;
		off += n;
	}
	return off;
}

/* Waking the reader on every record costs the traced thread an IPI and a
 * scheduler round trip per syscall; instead the reader polls on a short tick
 * and is woken only once a batch has built up. */
#define WAKEUP_BYTES (256 * 1024)

static __always_inline u64 wakeup_flag(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
									      : BPF_RB_NO_WAKEUP;
}

static __always_inline void output(void *data, u64 size)
{
	if (bpf_ringbuf_output(&events, data, size, wakeup_flag()))
		__sync_fetch_and_add(&lost_events, 1);
}

static __always_inline void submit(struct data_event *e)
{
	u64 n = e->h.cap_len;
	barrier_var(n);
	if (n > MAX_PAYLOAD)
		n = MAX_PAYLOAD;
	u64 size = sizeof(struct event_hdr) + n;
	barrier_var(size);
	if (size > sizeof(struct event_hdr) + MAX_PAYLOAD)
		return;
	output(e, size);
}

static __always_inline void fill_common(struct data_event *e, struct io_args *a, u64 pid_tgid,
					struct sock_info *info, u64 now)
{
	struct event_hdr *h = &e->h;
	h->kind = EV_DATA;
	/* The scratch event is reused per CPU: clear what only some set. */
	h->flags = 0;
	h->coroutine_id = 0;
	h->socket_id = info->id;
	h->role = info->role;
	h->enter_ns = a->enter_ns;
	h->exit_ns = now;
	h->tgid = pid_tgid >> 32;
	h->tid = (u32)pid_tgid;
	h->fd = a->fd;
	h->syscall = a->syscall;
	h->direction = a->direction;
	struct task_struct *task = bpf_get_current_task_btf();
	__builtin_memcpy(h->comm, task->comm, sizeof(h->comm));
	fill_tuple(h, a->sk);
}

/* The sequence number of the next byte this syscall will move, read at
 * entry: after it, a read that also consumed the peer's FIN has advanced
 * copied_seq one past the data. */
static __always_inline u32 tcp_seq_at_entry(struct sock *sk, u8 dir)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	struct tcp_sock *tp = bpf_core_cast(sk, struct tcp_sock);
	return dir == DIR_EGRESS ? tp->write_seq : tp->copied_seq;
}

static __always_inline int on_enter(struct syscall_enter_ctx *ctx, u8 syscall, u8 dir)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	s32 fd = (s32)ctx->args[0];
	struct sock *sk = fd_to_sock(fd);
	if (!sk)
		return 0;
	struct io_args a = {
		.enter_ns = bpf_ktime_get_ns(),
		.sk = (u64)sk,
		.buf = ctx->args[1],
		.count = (u32)ctx->args[2],
		.tcp_seq = tcp_seq_at_entry(sk, dir),
		.fd = fd,
		.syscall = syscall,
		.direction = dir,
	};
	if (syscall == SC_SENDTO || syscall == SC_RECVFROM)
		a.addr = ctx->args[4];
	save_args(&a);
	return 0;
}

static __always_inline int on_exit(struct syscall_exit_ctx *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_args a;
	struct thread_state *ts = take_args(&a);
	if (!ts)
		return 0;
	long ret = ctx->ret;
	if (ret <= 0)
		return 0;
	/* Ciphertext moved by OpenSSL: its plaintext is reported at the call's return. */
	if (ts->ssl.active)
		return 0;
	u64 now = bpf_ktime_get_ns();
	struct sock_info *info = sock_lookup(a.sk, ROLE_UNKNOWN, false);
	if (!info)
		return 0;
	struct data_event *e = scratch_event();
	if (!e)
		return 0;
	fill_common(e, &a, pid_tgid, info, now);
	u64 goid = go_current_goid(ts);
	e->h.coroutine_id = goid;
	e->h.trace_id = event_trace_id(ts, goid, pid_tgid >> 32, a.direction, info, now);

	if (a.syscall == SC_SENDMMSG || a.syscall == SC_RECVMMSG) {
		/* ret is the number of messages; each becomes one event. */
		u32 seq_base = a.tcp_seq;
		struct mmsghdr *vec = (void *)a.buf;
#pragma unroll
		for (int m = 0; m < MAX_MMSG; m++) {
			if (m >= ret)
				break;
			struct mmsghdr mh = {};
			if (bpf_probe_read_user(&mh, sizeof(mh), &vec[m]))
				break;
			e->h.total_len = mh.msg_len;
			e->h.tcp_seq = seq_base;
			seq_base += mh.msg_len;
			e->h.cap_len = copy_iov(e, (u64)mh.msg_hdr.msg_iov, mh.msg_hdr.msg_iovlen, cap_of(mh.msg_len));
			peer_from_sockaddr(&e->h, (u64)mh.msg_hdr.msg_name);
			submit(e);
		}
		return 0;
	}

	e->h.total_len = ret;
	e->h.tcp_seq = a.tcp_seq;
	u32 want = cap_of(ret);
	switch (a.syscall) {
	case SC_READ:
	case SC_WRITE:
	case SC_SENDTO:
	case SC_RECVFROM:
		if (want > MAX_PAYLOAD)
			want = MAX_PAYLOAD;
		e->h.cap_len = bpf_probe_read_user(e->data, want, (void *)a.buf) ? 0 : want;
		peer_from_sockaddr(&e->h, a.addr);
		break;
	case SC_READV:
	case SC_WRITEV:
		e->h.cap_len = copy_iov(e, a.buf, a.count, want);
		break;
	case SC_SENDMSG:
	case SC_RECVMSG: {
		struct user_msghdr mh = {};
		if (bpf_probe_read_user(&mh, sizeof(mh), (void *)a.buf) == 0) {
			e->h.cap_len = copy_iov(e, (u64)mh.msg_iov, mh.msg_iovlen, want);
			peer_from_sockaddr(&e->h, (u64)mh.msg_name);
		} else {
			e->h.cap_len = 0;
		}
		break;
	}
	default: /* sendfile: bytes from a file, nothing to show */
		e->h.cap_len = 0;
		break;
	}
	submit(e);
	return 0;
}

/* --- OpenSSL ------------------------------------------------------------ */

static __always_inline int ssl_enter(struct pt_regs *ctx, u8 dir, u8 ex)
{
	if (skip_process(bpf_get_current_pid_tgid()))
		return 0;
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0,
						       BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts)
		return 0;
	struct ssl_call c = {
		.ssl = ctx->di,
		.buf = ctx->si,
		.len_ptr = ex ? ctx->cx : 0,
		.enter_ns = bpf_ktime_get_ns(),
		.dir = dir,
		.active = 1,
		.ex = ex,
	};
	ts->ssl = c;
	return 0;
}

static __always_inline int ssl_exit(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);
	if (!ts || !ts->ssl.active)
		return 0;
	struct ssl_call c = ts->ssl;
	ts->ssl.active = 0;
	long ret = (long)ctx->ax;
	u64 n = 0;
	if (c.ex) {
		if ((int)ret != 1 || !c.len_ptr)
			return 0;
		bpf_probe_read_user(&n, sizeof(n), (void *)c.len_ptr);
	} else {
		if ((int)ret <= 0)
			return 0;
		n = (u32)ret;
	}
	if (n == 0)
		return 0;
	if (c.sk) {
		struct ssl_sock ss = { .sk = c.sk, .fd = c.fd };
		bpf_map_update_elem(&ssl_sockets, &c.ssl, &ss, BPF_ANY);
	} else {
		struct ssl_sock *ss = bpf_map_lookup_elem(&ssl_sockets, &c.ssl);
		if (!ss)
			return 0; /* no socket seen for this SSL yet */
		c.sk = ss->sk;
		c.fd = ss->fd;
		c.tcp_seq = tcp_seq_at_entry(as_sock(c.sk), c.dir);
	}
	u64 now = bpf_ktime_get_ns();
	struct sock_info *info = sock_lookup(c.sk, ROLE_UNKNOWN, false);
	if (!info)
		return 0;
	struct data_event *e = scratch_event();
	if (!e)
		return 0;
	struct io_args a = {
		.enter_ns = c.enter_ns,
		.sk = c.sk,
		.buf = c.buf,
		.fd = c.fd,
		.syscall = c.dir == DIR_EGRESS ? SC_SSL_WRITE : SC_SSL_READ,
		.direction = c.dir,
	};
	fill_common(e, &a, pid_tgid, info, now);
	e->h.flags = F_TLS;
	u64 goid = go_current_goid(ts);
	e->h.coroutine_id = goid;
	e->h.trace_id = event_trace_id(ts, goid, pid_tgid >> 32, c.dir, info, now);
	e->h.total_len = n;
	e->h.tcp_seq = c.tcp_seq;
	u32 want = cap_of(n);
	if (want > MAX_PAYLOAD)
		want = MAX_PAYLOAD;
	e->h.cap_len = bpf_probe_read_user(e->data, want, (void *)c.buf) ? 0 : want;
	submit(e);
	return 0;
}

/* --- Go crypto/tls ------------------------------------------------------- */

/* A (*crypto/tls.Conn).Read or Write in progress, keyed by goroutine: the
 * goroutine may park inside the call (netpoller) and return on another
 * thread, so the thread is no key. Go's register ABI (1.17+, amd64): the
 * receiver in RAX, the []byte's pointer in RBX, the current g in R14; the
 * int result in RAX. */
struct go_call_key {
	u64 g;
	u32 tgid;
	u32 pad;
};

struct go_call {
	u64 buf;
	u64 enter_ns;
	u64 goid;
	u64 sk;
	u32 tcp_seq;
	s32 fd;
	u8 dir;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_call_key);
	__type(value, struct go_call);
} go_calls SEC(".maps");

/* The socket's fd behind a *tls.Conn, through fields whose offsets Go has
 * kept since 1.x: Conn.conn (a net.Conn interface: itab, data) at 0, the
 * *net.TCPConn's conn.fd (*netFD) at 0, netFD.pfd (poll.FD) at 0, and
 * poll.FD.Sysfd after its 16-byte fdMutex. */
static __always_inline s32 go_conn_fd(u64 conn)
{
	u64 data = 0, netfd = 0;
	s64 sysfd = -1;
	if (bpf_probe_read_user(&data, sizeof(data), (void *)(conn + 8)) || !data)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)data) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + 16)))
		return -1;
	return (s32)sysfd;
}

static __always_inline int go_tls_enter(struct pt_regs *ctx, u8 dir)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	s32 fd = go_conn_fd(ctx->ax);
	struct sock *sk = fd_to_sock(fd);
	if (!sk)
		return 0;
	u64 g = ctx->r14;
	/* The loader passes runtime.g's goid offset as the attach cookie. */
	u64 goid = 0;
	bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + bpf_get_attach_cookie(ctx)));
	struct go_call_key key = { .g = g, .tgid = pid_tgid >> 32 };
	struct go_call c = {
		.buf = ctx->bx,
		.enter_ns = bpf_ktime_get_ns(),
		.goid = goid,
		.sk = (u64)sk,
		.tcp_seq = tcp_seq_at_entry(sk, dir),
		.fd = fd,
		.dir = dir,
	};
	bpf_map_update_elem(&go_calls, &key, &c, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_tls_write_enter(struct pt_regs *ctx) { return go_tls_enter(ctx, DIR_EGRESS); }
SEC("uprobe")
int go_tls_read_enter(struct pt_regs *ctx) { return go_tls_enter(ctx, DIR_INGRESS); }

/* Attached at every RET instruction of Read and Write (uretprobes rewrite
 * the return address on the stack, which Go's stack growth and traceback
 * do not survive). */
SEC("uprobe")
int go_tls_return(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_call_key key = { .g = ctx->r14, .tgid = pid_tgid >> 32 };
	struct go_call *cp = bpf_map_lookup_elem(&go_calls, &key);
	if (!cp)
		return 0;
	struct go_call c = *cp;
	bpf_map_delete_elem(&go_calls, &key);
	long n = (long)ctx->ax;
	if (n <= 0)
		return 0;
	u64 now = bpf_ktime_get_ns();
	struct sock_info *info = sock_lookup(c.sk, ROLE_UNKNOWN, false);
	if (!info)
		return 0;
	struct data_event *e = scratch_event();
	if (!e)
		return 0;
	struct io_args a = {
		.enter_ns = c.enter_ns,
		.sk = c.sk,
		.buf = c.buf,
		.fd = c.fd,
		.syscall = c.dir == DIR_EGRESS ? SC_SSL_WRITE : SC_SSL_READ,
		.direction = c.dir,
	};
	fill_common(e, &a, pid_tgid, info, now);
	e->h.flags = F_TLS;
	e->h.coroutine_id = c.goid;
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0,
						       BPF_LOCAL_STORAGE_GET_F_CREATE);
	/* Per goroutine when the runtime is probed (the thread knows its
	 * goroutine), per thread otherwise. */
	e->h.trace_id = ts ? event_trace_id(ts, go_cookie_of(ts) ? c.goid : 0, pid_tgid >> 32, c.dir,
					    info, now)
			   : 0;
	e->h.total_len = n;
	e->h.tcp_seq = c.tcp_seq;
	u32 want = cap_of(n);
	if (want > MAX_PAYLOAD)
		want = MAX_PAYLOAD;
	e->h.cap_len = bpf_probe_read_user(e->data, want, (void *)c.buf) ? 0 : want;
	submit(e);
	return 0;
}

/* --- Go runtime ----------------------------------------------------------
 * Attached by the loader to each Go executable (Go 1.18+, amd64 register
 * ABI: arguments in RAX, RBX, RCX, RDI, RSI, ...; the current g in R14),
 * with the offsets it read from the binary as the cookie. */

static __always_inline void go_spawned(u64 child, u64 parent)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (!child || !parent || skip_process(pid_tgid))
		return;
	struct trace_state t = go_passed_on(pid_tgid >> 32, parent, bpf_ktime_get_ns());
	if (t.id && go_adopt(pid_tgid >> 32, child, &t))
		__sync_fetch_and_add(&go_spawn_inherited, 1);
}

/* runtime.newproc1(fn, callergp *g, pc) *g, at entry: the creator is
 * callergp (RBX; it runs on the system stack, R14 is g0). */
SEC("uprobe")
int go_newproc1(struct pt_regs *ctx)
{
	if (skip_process(bpf_get_current_pid_tgid()))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	struct thread_state *ts = go_register(cookie);
	if (ts)
		ts->go_parent = go_goid(ctx->bx, cookie);
	return 0;
}

/* The new goroutine: in runtime.newproc's closure, at the `call
 * runtime.runqput(pp, newg, true)` right after newproc1 returned (newg in
 * RBX) ... */
SEC("uprobe")
int go_newproc_runqput(struct pt_regs *ctx)
{
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);
	if (!ts || !ts->go_parent)
		return 0;
	u64 parent = ts->go_parent;
	ts->go_parent = 0;
	go_spawned(go_goid(ctx->bx, bpf_get_attach_cookie(ctx)), parent);
	return 0;
}

/* ... or, where that call is not found, at each RET of newproc1 (newg in
 * RAX). */
SEC("uprobe")
int go_newproc1_return(struct pt_regs *ctx)
{
	struct thread_state *ts = bpf_task_storage_get(&threads, bpf_get_current_task_btf(), 0, 0);
	if (!ts || !ts->go_parent)
		return 0;
	u64 parent = ts->go_parent;
	ts->go_parent = 0;
	go_spawned(go_goid(ctx->ax, bpf_get_attach_cookie(ctx)), parent);
	return 0;
}

/* runtime.chansend(c *hchan, ep, block, callerpc) bool */
SEC("uprobe")
int go_chansend(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	go_register(cookie);
	go_on_send(pid_tgid >> 32, ctx->r14, ctx->ax, cookie, bpf_ktime_get_ns());
	return 0;
}

/* runtime.chanrecv(c *hchan, ep, block) (selected, received bool) */
SEC("uprobe")
int go_chanrecv(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	go_register(cookie);
	go_on_recv(pid_tgid >> 32, ctx->r14, ctx->ax, cookie);
	return 0;
}

#define GO_SELECT_CASES 8

/* runtime.selectgo(cas0 *scase, order0, pc0, nsends, nrecvs int, block):
 * cas0[0:nsends] send, cas0[nsends:nsends+nrecvs] receive; a scase is
 * {c *hchan, elem}. Every case is looked at, not only the one chosen. */
SEC("uprobe")
int go_selectgo(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	u32 tgid = pid_tgid >> 32;
	u64 cookie = bpf_get_attach_cookie(ctx);
	go_register(cookie);
	u64 cas0 = ctx->ax, nsends = ctx->di, n = ctx->di + ctx->si, now = bpf_ktime_get_ns();
	for (int i = 0; i < GO_SELECT_CASES; i++) {
		if (i >= n)
			break;
		u64 c = go_read(cas0 + i * 16);
		if (i < nsends)
			go_on_send(tgid, ctx->r14, c, cookie, now);
		else
			go_on_recv(tgid, ctx->r14, c, cookie);
	}
	return 0;
}

/* runtime.goexit1(): the current goroutine (R14) ends. */
SEC("uprobe")
int go_goexit1(struct pt_regs *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	u64 cookie = bpf_get_attach_cookie(ctx);
	go_register(cookie);
	struct go_key k = { .goid = go_goid(ctx->r14, cookie), .tgid = pid_tgid >> 32 };
	if (k.goid && bpf_map_delete_elem(&go_traces, &k) == 0)
		__sync_fetch_and_add(&go_states_exited, 1);
	return 0;
}

/* Attached by the loader to each libssl it finds (not auto-attached). */
SEC("uprobe")
int ssl_write_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_EGRESS, 0); }
SEC("uprobe")
int ssl_read_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_INGRESS, 0); }
SEC("uprobe")
int ssl_write_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_EGRESS, 1); }
SEC("uprobe")
int ssl_read_ex_enter(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_INGRESS, 1); }
SEC("uretprobe")
int ssl_return(struct pt_regs *ctx) { return ssl_exit(ctx); }

#define DATA_PROBES(name, sc, dir)                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                             \
	int enter_##name(struct syscall_enter_ctx *ctx) { return on_enter(ctx, sc, dir); } \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int exit_##name(struct syscall_exit_ctx *ctx) { return on_exit(ctx); }

DATA_PROBES(read, SC_READ, DIR_INGRESS)
DATA_PROBES(write, SC_WRITE, DIR_EGRESS)
DATA_PROBES(readv, SC_READV, DIR_INGRESS)
DATA_PROBES(writev, SC_WRITEV, DIR_EGRESS)
DATA_PROBES(sendto, SC_SENDTO, DIR_EGRESS)
DATA_PROBES(recvfrom, SC_RECVFROM, DIR_INGRESS)
DATA_PROBES(sendmsg, SC_SENDMSG, DIR_EGRESS)
DATA_PROBES(recvmsg, SC_RECVMSG, DIR_INGRESS)
DATA_PROBES(sendmmsg, SC_SENDMMSG, DIR_EGRESS)
DATA_PROBES(recvmmsg, SC_RECVMMSG, DIR_INGRESS)

/* sendfile64(out_fd, in_fd, offset, count): the socket is args[0] like the rest. */
DATA_PROBES(sendfile64, SC_SENDFILE, DIR_EGRESS)

/* --- socket lifecycle: role and lifetime --- */

static __always_inline void emit_lifecycle(u8 kind, u64 sk, struct sock_info *info, s32 fd, u64 pid_tgid)
{
	struct data_event *e = scratch_event();
	if (!e)
		return;
	struct event_hdr *h = &e->h;
	__builtin_memset(h, 0, sizeof(*h));
	h->kind = kind;
	h->socket_id = info->id;
	h->role = info->role;
	h->tgid = pid_tgid >> 32;
	h->tid = (u32)pid_tgid;
	h->fd = fd;
	h->enter_ns = h->exit_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(&h->comm, sizeof(h->comm));
	if (kind == EV_OPEN)
		fill_tuple(h, sk);
	output(h, sizeof(*h));
}

static __always_inline int lifecycle_enter(struct syscall_enter_ctx *ctx, u8 syscall)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	struct io_args a = {
		.enter_ns = bpf_ktime_get_ns(),
		.fd = (s32)ctx->args[0],
		.syscall = syscall,
		.sk = 1, /* not a socket yet: marks the entry live */
	};
	save_args(&a);
	return 0;
}

static __always_inline int lifecycle_exit(struct syscall_exit_ctx *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	struct io_args a;
	if (!take_args(&a))
		return 0;
	u8 syscall = a.syscall;
	s32 fd = a.fd;
	long ret = ctx->ret;
	u8 role;
	if (syscall == SC_CONNECT) {
		if (ret != 0 && ret != -EINPROGRESS)
			return 0;
		role = ROLE_CLIENT;
	} else {
		if (ret < 0)
			return 0;
		fd = ret;
		role = ROLE_SERVER;
	}
	u64 sk = (u64)fd_to_sock(fd);
	if (!sk)
		return 0;
	/* A new connection always gets a new id, even if the kernel reuses the
	 * struct sock of a socket whose close we did not see. */
	struct sock_info *info = sock_lookup(sk, role, true);
	if (info)
		emit_lifecycle(EV_OPEN, sk, info, fd, pid_tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct syscall_enter_ctx *ctx) { return lifecycle_enter(ctx, SC_CONNECT); }
SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct syscall_exit_ctx *ctx) { return lifecycle_exit(ctx); }
SEC("tracepoint/syscalls/sys_enter_accept")
int enter_accept(struct syscall_enter_ctx *ctx) { return lifecycle_enter(ctx, SC_ACCEPT); }
SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct syscall_exit_ctx *ctx) { return lifecycle_exit(ctx); }
SEC("tracepoint/syscalls/sys_enter_accept4")
int enter_accept4(struct syscall_enter_ctx *ctx) { return lifecycle_enter(ctx, SC_ACCEPT); }
SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct syscall_exit_ctx *ctx) { return lifecycle_exit(ctx); }

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct syscall_enter_ctx *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	if (skip_process(pid_tgid))
		return 0;
	u64 sk = (u64)fd_to_sock((s32)ctx->args[0]);
	if (!sk)
		return 0;
	struct sock_info *info = bpf_map_lookup_elem(&sockets, &sk);
	if (!info)
		return 0;
	emit_lifecycle(EV_CLOSE, sk, info, (s32)ctx->args[0], pid_tgid);
	bpf_map_delete_elem(&sockets, &sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
