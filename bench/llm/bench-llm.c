/* SPDX-License-Identifier: Apache-2.0 */
/* Proxy overhead of the LLM path. The same requests go to the fake upstream directly
 * (baseline) and through the whole orch path in one process (in-jail endpoint ->
 * llm.request over a socketpair -> proxy -> libcurl -> fake upstream), in the same run:
 *   1. a small non-streaming request, sequential: p50 / p99 latency;
 *   2. time to first chunk of a stream with 12 streams at once: p50 / p99.
 *   bench-llm <llm-fake-upstream> [requests (default 400)] */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <sys/eventfd.h>

#include "llm-test-stack.h"
#include "llm-test-util.h"

#define STREAMS 12

static const char small_body[] = "{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":16,"
				 "\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}";
static const char stream_body[] =
	"{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":400,\"stream\":true,"
	"\"metadata\":{\"user_id\":\"fake:events=40;delay=5\"},"
	"\"messages\":[{\"role\":\"user\",\"content\":\"stream please\"}]}";

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct job {
	unsigned port;
	bool direct;
	bool stream;
	int n;
	double *out; /* latency or time to first chunk, ms */
	double t0, first;
	int failed;
};

static size_t on_data(char *p, size_t sz, size_t n, void *data)
{
	struct job *j = data;

	if (j->first == 0)
		j->first = now_ms();
	return sz * n;
}

static void *run_job(void *arg)
{
	struct job *j = arg;
	CURL *e = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[96];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/messages", j->port);
	h = curl_slist_append(h, "anthropic-version: 2023-06-01");
	h = curl_slist_append(h, "content-type: application/json");
	h = curl_slist_append(h, j->direct ? "x-api-key: " LLM_TEST_KEY
					   : "x-api-key: orch-placeholder-key");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->stream ? stream_body : small_body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT, 60L);
	for (int i = 0; i < j->n; i++) {
		long status = 0;
		j->first = 0;
		j->t0 = now_ms();
		if (curl_easy_perform(e) != CURLE_OK)
			j->failed++;
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
		if (status != 200)
			j->failed++;
		j->out[i] = j->stream ? j->first - j->t0 : now_ms() - j->t0;
	}
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	int i = (int)(p * (n - 1) + 0.5);

	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[i];
}

struct phase {
	unsigned port;
	bool direct, stream;
	int threads, per_thread;
	double *all;
	int failed;
	int efd;
};

static void *run_phase(void *arg)
{
	struct phase *ph = arg;
	pthread_t th[STREAMS];
	struct job jobs[STREAMS];
	uint64_t one = 1;

	for (int t = 0; t < ph->threads; t++) {
		jobs[t] = (struct job){.port = ph->port,
				       .direct = ph->direct,
				       .stream = ph->stream,
				       .n = ph->per_thread,
				       .out = ph->all + t * ph->per_thread};
		pthread_create(&th[t], NULL, run_job, &jobs[t]);
	}
	for (int t = 0; t < ph->threads; t++) {
		pthread_join(th[t], NULL);
		ph->failed += jobs[t].failed;
	}
	if (write(ph->efd, &one, sizeof(one)) < 0)
		ph->failed++;
	return NULL;
}

static void on_done(struct orch_loop *loop, struct orch_io *io, int fd, uint32_t ev, void *data)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
	orch_loop_quit(loop);
}

/* Runs one phase in client threads while this thread runs the proxy's loop. */
static int phase(struct llm_stack *st, int efd, bool direct, bool stream, int threads,
		 int per_thread, double *p50, double *p99)
{
	struct phase ph = {
		.port = direct ? st->fake_port : st->port,
		.direct = direct,
		.stream = stream,
		.threads = threads,
		.per_thread = per_thread,
		.efd = efd,
	};
	pthread_t th;
	int n = threads * per_thread;

	ph.all = calloc((size_t)n, sizeof(double));
	pthread_create(&th, NULL, run_phase, &ph);
	orch_loop_run(st->loop);
	pthread_join(th, NULL);
	*p50 = pct(ph.all, n, 0.50);
	*p99 = pct(ph.all, n, 0.99);
	free(ph.all);
	return ph.failed;
}

int main(int argc, char **argv)
{
	struct llm_stack st;
	struct orch_io *io = NULL;
	int n = argc > 2 ? atoi(argv[2]) : 400;
	double d50, d99, p50, p99;
	int efd, failed = 0;

	if (argc > 1 && strcmp(argv[1], LLM_HELPER_ARG) == 0)
		llm_helper_main(argc, argv); /* an endpoint process of the stack */

	if (argc < 2 || n < 10) {
		fprintf(stderr, "usage: %s <llm-fake-upstream> [requests >= 10]\n", argv[0]);
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (llm_stack_start(&st, argv[1], NULL) < 0) {
		fprintf(stderr, "cannot start the LLM stack\n");
		return 1;
	}
	/* Large enough that the benchmark is not refused by budgets or rate limits. */
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	orch_io_add(st.loop, efd, EPOLLIN, on_done, NULL, &io);

	/* Warm up both paths (connections, caches). */
	failed += phase(&st, efd, true, false, 1, 20, &d50, &d99);
	failed += phase(&st, efd, false, false, 1, 20, &p50, &p99);

	printf("LLM proxy overhead (same run; fake upstream on loopback)\n");
	failed += phase(&st, efd, true, false, 1, n, &d50, &d99);
	failed += phase(&st, efd, false, false, 1, n, &p50, &p99);
	printf("small non-streaming request, %d sequential:\n", n);
	printf("  direct to upstream (baseline)  p50 %7.3f ms  p99 %7.3f ms\n", d50, d99);
	printf("  through the endpoint           p50 %7.3f ms  p99 %7.3f ms\n", p50, p99);
	printf("  added by orch                  p50 %7.3f ms  p99 %7.3f ms  (target p50 <= 1 "
	       "ms)\n",
	       p50 - d50, p99 - d99);

	failed += phase(&st, efd, true, true, STREAMS, n / STREAMS + 1, &d50, &d99);
	failed += phase(&st, efd, false, true, STREAMS, n / STREAMS + 1, &p50, &p99);
	printf("time to first chunk, %d streams at once, %d each:\n", STREAMS, n / STREAMS + 1);
	printf("  direct to upstream (baseline)  p50 %7.3f ms  p99 %7.3f ms\n", d50, d99);
	printf("  through the endpoint           p50 %7.3f ms  p99 %7.3f ms\n", p50, p99);
	printf("  added by orch                  p50 %7.3f ms  p99 %7.3f ms\n", p50 - d50,
	       p99 - d99);
	if (failed)
		printf("WARNING: %d requests failed\n", failed);
	orch_io_free(io);
	close(efd);
	llm_stack_stop(&st);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
