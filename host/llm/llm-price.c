/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <math.h>

#include "llm-price.h"

int llm_usd_to_micro(double usd, int64_t *ret)
{
	if (!isfinite(usd) || usd < 0 || usd > 1e7)
		return -ERANGE;
	*ret = (int64_t)llround(usd * (double)LLM_USD_MICRO);
	return 0;
}

static int64_t nonneg(int64_t v)
{
	return v > 0 ? v : 0;
}

int64_t llm_cost_micro(const struct llm_price *p, const struct llm_usage *u)
{
	/* In units of 1e-8 micro-USD per token-Mtok: sum * 100, then divide by 1e8. */
	unsigned __int128 in = (unsigned __int128)nonneg(p->in_micro_per_mtok);
	unsigned __int128 out = (unsigned __int128)nonneg(p->out_micro_per_mtok);
	unsigned __int128 sum;

	sum = (unsigned __int128)nonneg(u->input) * in * 100 +
	      (unsigned __int128)nonneg(u->cache_write) * in * 125 +
	      (unsigned __int128)nonneg(u->cache_read) * in * 10 +
	      (unsigned __int128)nonneg(u->output) * out * 100;
	sum = (sum + 99999999) / 100000000;
	return sum > (unsigned __int128)INT64_MAX ? INT64_MAX : (int64_t)sum;
}

int64_t llm_cost_worst_micro(const struct llm_price *p, int64_t input_tokens, int64_t max_tokens)
{
	struct llm_usage u = {.cache_write = input_tokens, .output = max_tokens};

	return llm_cost_micro(p, &u);
}
