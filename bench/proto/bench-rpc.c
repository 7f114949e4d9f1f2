/* SPDX-License-Identifier: Apache-2.0 */
/* Throughput of small JSON-RPC notifications through a socketpair, reader to dispatch,
 * next to a baseline that only splits the same bytes into lines. Single-threaded: one
 * loop writes into one end and reads/dispatches from the other, so both figures include
 * the same write and read syscalls and the ratio shows what parsing and dispatch cost.
 *   bench-rpc [messages]   (default 1000000) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "loop.h"
#include "rpc.h"

#define BLOCK (256 * 1024)

struct bench {
	char *block;
	size_t block_len;
	unsigned block_msgs;
	uint64_t received;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_block(struct bench *b)
{
	b->block = malloc(BLOCK);
	b->block_len = 0;
	b->block_msgs = 0;
	for (;;) {
		char msg[160];
		int n = snprintf(msg, sizeof(msg),
				 "{\"jsonrpc\":\"2.0\",\"method\":\"heartbeat\",\"params\":"
				 "{\"seq\":%u,\"running\":%u}}\n",
				 b->block_msgs, b->block_msgs % 4);
		if (b->block_len + (size_t)n > BLOCK)
			break;
		memcpy(b->block + b->block_len, msg, (size_t)n);
		b->block_len += (size_t)n;
		b->block_msgs++;
	}
}

static int on_line(void *data, const char *line, size_t len)
{
	((struct bench *)data)->received++;
	return 0;
}

static void on_frame_io(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t ev, void *data)
{
	struct orch_frame *f = data;
	int r;

	do /* the lines the read's budget left buffered too */
		r = orch_frame_read(f, fd);
	while (r >= 0 && orch_frame_backlog(f));
}

static int on_heartbeat(struct orch_rpc *rpc, struct orch_rpc_req *req, json_t *params, void *data,
			struct orch_error *err)
{
	json_int_t seq, running;

	if (json_unpack(params, "{s:I,s:I}", "seq", &seq, "running", &running) < 0)
		return -EINVAL;
	((struct bench *)data)->received++;
	return 0;
}

static const struct orch_rpc_method methods[] = {
	{"heartbeat", ORCH_RPC_M_NOTIFY, 0, on_heartbeat},
};

#define PUMP_TIMEOUT_S 120

/* Writes total messages (whole blocks) into wfd while the loop reads; returns seconds. */
static double pump(struct bench *b, struct orch_loop *loop, int wfd, uint64_t blocks)
{
	uint64_t want = blocks * b->block_msgs;
	size_t off = 0;
	double t0 = now_s();

	b->received = 0;
	while (blocks > 0 || b->received < want) {
		if (now_s() - t0 > PUMP_TIMEOUT_S) {
			fprintf(stderr,
				"bench-rpc: %llu of %llu messages arrived in %d s: giving up (a "
				"stalled reader is a bug, not a figure)\n",
				(unsigned long long)b->received, (unsigned long long)want,
				PUMP_TIMEOUT_S);
			exit(1);
		}
		if (blocks > 0) {
			ssize_t n = write(wfd, b->block + off, b->block_len - off);
			if (n > 0) {
				off += (size_t)n;
				if (off == b->block_len) {
					off = 0;
					blocks--;
				}
			}
		}
		if (orch_loop_run_once(loop, blocks > 0 ? 0 : 100) < 0)
			abort();
	}
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
	struct bench b = {0};
	struct orch_loop *loop;
	struct orch_frame *f;
	struct orch_io *io;
	struct orch_rpc *rpc;
	int sv[2];

	make_block(&b);
	uint64_t blocks = (n + b.block_msgs - 1) / b.block_msgs;
	uint64_t msgs = blocks * b.block_msgs;
	double avg = (double)b.block_len / b.block_msgs;

	if (orch_loop_new(&loop) < 0)
		return 1;

	/* baseline: split lines only */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    orch_frame_new(0, 0, on_line, NULL, &b, &f) < 0 ||
	    orch_io_add(loop, sv[0], EPOLLIN, on_frame_io, f, &io) < 0)
		return 1;
	double t_base = pump(&b, loop, sv[1], blocks);
	orch_io_free(io);
	orch_frame_free(f);
	close(sv[0]);
	close(sv[1]);

	/* orch_rpc: frame + json_loadb + validation + method table + handler */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0 ||
	    orch_rpc_new(loop, sv[0], methods, 1, NULL, &b, &rpc) < 0)
		return 1;
	double t_rpc = pump(&b, loop, sv[1], blocks);
	orch_rpc_unref(rpc);
	close(sv[1]);
	orch_loop_free(loop);

	double base_rate = (double)msgs / t_base, rpc_rate = (double)msgs / t_rpc;
	printf("bench-rpc: %llu notifications of %.0f bytes through a socketpair, one thread\n",
	       (unsigned long long)msgs, avg);
	printf("  baseline (split lines only): %10.0f msg/s  %7.1f MB/s  %.3f s\n", base_rate,
	       base_rate * avg / 1e6, t_base);
	printf("  orch_rpc (parse + dispatch): %10.0f msg/s  %7.1f MB/s  %.3f s\n", rpc_rate,
	       rpc_rate * avg / 1e6, t_rpc);
	printf("  ratio rpc/baseline: %.2f   target >= 300000 msg/s: %s\n", rpc_rate / base_rate,
	       rpc_rate >= 300000 ? "met" : "NOT met");
	free(b.block);
	return 0;
}
