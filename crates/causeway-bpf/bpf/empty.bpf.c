// SPDX-License-Identifier: GPL-2.0
/* The benchmark's baseline: programs that do nothing, on exactly the
 * tracepoints causeway.bpf.c uses, so the cost of the tracepoint machinery
 * alone can be told apart from the cost of Causeway's work. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

#define EMPTY(name)                                                        \
	SEC("tracepoint/syscalls/sys_enter_" #name)                        \
	int enter_##name(void *ctx) { return 0; }                          \
	SEC("tracepoint/syscalls/sys_exit_" #name)                         \
	int exit_##name(void *ctx) { return 0; }

EMPTY(read)
EMPTY(write)
EMPTY(readv)
EMPTY(writev)
EMPTY(sendto)
EMPTY(recvfrom)
EMPTY(sendmsg)
EMPTY(recvmsg)
EMPTY(sendmmsg)
EMPTY(recvmmsg)
EMPTY(sendfile64)
EMPTY(connect)
EMPTY(accept)
EMPTY(accept4)

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(void *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
