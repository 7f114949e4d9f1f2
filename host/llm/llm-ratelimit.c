/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "llm-ratelimit.h"

#define KEY_MAX 255
/* Tokens are kept in milli-requests for integer arithmetic. */
#define MILLI 1000ULL

struct bucket {
	char key[KEY_MAX + 1];
	uint64_t milli; /* available, in 1/1000 requests */
	uint64_t last_ms;
};

struct llm_ratelimit {
	uint32_t per_minute, burst;
	size_t n, max;
	struct bucket *b;
};

int llm_ratelimit_new(uint32_t per_minute, uint32_t burst, size_t max_keys,
		      struct llm_ratelimit **ret)
{
	struct llm_ratelimit *rl;

	if (max_keys == 0 || max_keys > 1u << 20)
		return -EINVAL;
	rl = calloc(1, sizeof(*rl));
	if (!rl)
		return -ENOMEM;
	rl->b = calloc(max_keys, sizeof(*rl->b));
	if (!rl->b) {
		free(rl);
		return -ENOMEM;
	}
	rl->per_minute = per_minute;
	rl->burst = burst ? burst : per_minute;
	rl->max = max_keys;
	*ret = rl;
	return 0;
}

void llm_ratelimit_free(struct llm_ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->b);
	free(rl);
}

static void refill(const struct llm_ratelimit *rl, struct bucket *b, uint64_t now_ms)
{
	uint64_t cap = (uint64_t)rl->burst * MILLI;

	if (now_ms > b->last_ms) {
		/* per_minute requests per 60000 ms = per_minute milli-requests per 60 ms. */
		uint64_t add = (now_ms - b->last_ms) * rl->per_minute / 60;
		if (add == 0)
			return; /* keep the elapsed time until it is worth a milli-request */
		b->milli = b->milli + add > cap ? cap : b->milli + add;
		b->last_ms = now_ms;
	}
}

static struct bucket *find(struct llm_ratelimit *rl, const char *key, uint64_t now_ms)
{
	size_t oldest = 0;

	for (size_t i = 0; i < rl->n; i++) {
		if (strcmp(rl->b[i].key, key) == 0)
			return &rl->b[i];
		if (rl->b[i].last_ms < rl->b[oldest].last_ms)
			oldest = i;
	}
	if (rl->n < rl->max)
		oldest = rl->n++;
	strcpy(rl->b[oldest].key, key);
	rl->b[oldest].milli = (uint64_t)rl->burst * MILLI;
	rl->b[oldest].last_ms = now_ms;
	return &rl->b[oldest];
}

int llm_ratelimit_take(struct llm_ratelimit *rl, const char *key, uint64_t now_ms,
		       uint64_t *ret_retry_ms)
{
	struct bucket *b;

	if (!key || strlen(key) > KEY_MAX)
		return -EINVAL;
	if (rl->per_minute == 0)
		return 0;
	b = find(rl, key, now_ms);
	refill(rl, b, now_ms);
	if (b->milli >= MILLI) {
		b->milli -= MILLI;
		return 0;
	}
	if (ret_retry_ms)
		*ret_retry_ms = ((MILLI - b->milli) * 60 + rl->per_minute - 1) / rl->per_minute;
	return -EAGAIN;
}
