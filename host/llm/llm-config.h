/* SPDX-License-Identifier: Apache-2.0 */
/* The proxy's configuration: the "llm" object of orchd's configuration file
 * (docs/CONFIG.md; parsed by host/config/config-llm.c, orchd_config_llm_parse), plus a
 * few internal knobs with defaults. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "error.h"
#include "llm-ledger.h"
#include "llm-policy.h"
#include "llm-price.h"
#include "llm-types.h"

#define LLM_MAX_UPSTREAMS 16
#define LLM_MAX_MODELS 256
/* Exchanges in flight: on the host (max_inflight), and the defaults per VM and per agent
 * slot (llm.rate_limits.vm_inflight / agent_inflight, 0..LLM_MAX_INFLIGHT). */
#define LLM_MAX_INFLIGHT 256
#define LLM_DEFAULT_VM_INFLIGHT 64
#define LLM_DEFAULT_AGENT_INFLIGHT 16

struct llm_upstream {
	char name[65];
	enum llm_api kind;
	char *base_url; /* without a trailing slash */
	char *key_file;
	char *key;     /* filled by llm_config_load_keys; never logged */
	char *ca_file; /* NULL: system trust store (tests point it at their own CA) */
};

/* Used for the worst case of a request that pulls in input its body does not hold, when
 * llm.allow_remote_input lets it through and the model names no context_window. */
#define LLM_DEFAULT_CONTEXT_WINDOW 1000000
#define LLM_MAX_BETAS 64

struct llm_model {
	char name[LLM_MODEL_MAX + 1];
	size_t upstream; /* index into upstreams */
	struct llm_price price;
	int64_t context_window; /* input tokens the model takes at most (0: unknown) */
};

struct llm_config {
	struct llm_policy policy;
	size_t n_upstreams;
	struct llm_upstream upstreams[LLM_MAX_UPSTREAMS];
	size_t n_models;
	struct llm_model *models;
	int64_t timeout_ms;	    /* total time of one upstream request */
	int64_t connect_timeout_ms; /* 10000 */
	uint32_t agent_rpm, task_rpm;
	struct llm_limits limits;
	size_t drain_max_bytes;	   /* read on after the agent left, to learn the usage: 8 MiB */
	size_t max_response_bytes; /* non-streamed answers kept for usage parsing: 16 MiB */
	unsigned max_inflight;	   /* concurrent exchanges on the host: LLM_MAX_INFLIGHT */
	/* Concurrent exchanges per VM / per agent slot (rate_limits.vm_inflight /
	 * agent_inflight; 0: no cap of their own, the host's still holds). */
	unsigned vm_inflight, agent_inflight;
	/* anthropic-beta values passed upstream; any other is dropped from the header. */
	char *betas[LLM_MAX_BETAS];
	size_t n_betas;
	/* Requests that pull in input their body does not hold (previous_response_id, files,
	 * remote URLs, cachedContent...) are refused unless this is set; then their worst
	 * case is taken at the model's context window. */
	bool allow_remote_input;
};

/* The betas passed by default: what the shipped agents send that adds no server-side
 * tool, file store or remote server (llm-config.c). */
extern const char *const llm_default_betas[];
bool llm_config_beta_allowed(const struct llm_config *c, const char *beta);

/* Defaults, no upstreams and no models (everything refused). */
int llm_config_init(struct llm_config *c);
/* Replaces the anthropic-beta allowlist (entries 1..64 of [a-z0-9-]). */
int llm_config_set_betas(struct llm_config *c, const char *const *betas, struct orch_error *err);
/* Reads every upstream's key file (mode checked, see llm-key.h). */
int llm_config_load_keys(struct llm_config *c, struct orch_error *err);
void llm_config_done(struct llm_config *c);

const struct llm_model *llm_config_model(const struct llm_config *c, const char *name);
/* Adds an upstream / a model programmatically (tests, benchmarks). */
int llm_config_add_upstream(struct llm_config *c, const char *name, enum llm_api kind,
			    const char *base_url, const char *key_file, struct orch_error *err);
int llm_config_add_model(struct llm_config *c, const char *name, const char *upstream,
			 double in_usd_per_mtok, double out_usd_per_mtok, struct orch_error *err);
