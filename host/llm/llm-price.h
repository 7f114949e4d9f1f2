/* SPDX-License-Identifier: Apache-2.0 */
/* Per-model prices and cost arithmetic. Money is integer micro-USD (1e-6 USD) everywhere;
 * prices are micro-USD per million tokens, so "$3 per Mtok" is 3000000. Costs round up. */
#pragma once

#include <stdint.h>

#include "error.h"
#include "llm-types.h"

#define LLM_USD_MICRO 1000000LL

struct llm_price {
	int64_t in_micro_per_mtok;
	int64_t out_micro_per_mtok;
};

/* Converts a USD amount from the config (0..1e7) to micro-USD, -ERANGE when out of range. */
int llm_usd_to_micro(double usd, int64_t *ret);

/* Cost of a usage: input + output at their prices, cache writes at 1.25x and cache reads
 * at 0.1x the input price (Anthropic's multipliers). Saturates at INT64_MAX. */
int64_t llm_cost_micro(const struct llm_price *p, const struct llm_usage *u);

/* Worst case of a request whose input is at most input_tokens and output at most
 * max_tokens: all input priced as cache writes, all output produced. */
int64_t llm_cost_worst_micro(const struct llm_price *p, int64_t input_tokens, int64_t max_tokens);
