/* SPDX-License-Identifier: Apache-2.0 */
/* Token-bucket rate limiting by key (an agent slot or a task id): a bucket holds up to
 * `burst` requests and refills at `per_minute` per minute. At most max_keys buckets are
 * kept; when full, the bucket that has been idle longest is forgotten (it would be full
 * again anyway once idle for a refill period). Time is passed in, so tests are exact. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct llm_ratelimit;

/* per_minute 0 means unlimited (take always succeeds). burst 0 takes per_minute. */
int llm_ratelimit_new(uint32_t per_minute, uint32_t burst, size_t max_keys,
		      struct llm_ratelimit **ret);
void llm_ratelimit_free(struct llm_ratelimit *rl);

/* Takes one request for key at now_ms. Returns 0, or -EAGAIN with *ret_retry_ms (may be
 * NULL) set to when one will be available. Keys longer than 255 bytes are -EINVAL. */
int llm_ratelimit_take(struct llm_ratelimit *rl, const char *key, uint64_t now_ms,
		       uint64_t *ret_retry_ms);
