/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the LLM integration tests and the benchmark. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define LLM_TEST_KEY "sk-test-REAL-upstream-key-7f3a9c"

/* Starts the fake upstream (path; extra NULL-terminated args) and reads its port. */
int llm_test_spawn_fake(const char *path, const char *const *args, pid_t *ret_pid,
			unsigned *ret_port);
void llm_test_stop(pid_t pid);
/* Creates dir/key (mode 0600) holding LLM_TEST_KEY. */
int llm_test_write_key(const char *dir, char *ret_path, size_t len);
/* Reads a whole file (NUL-terminated); NULL when missing. */
char *llm_test_read_file(const char *path, size_t *ret_len);
/* Runs argv to completion with stdout+stderr captured (bounded 4 MiB); returns the exit
 * status (or -1) and the output (malloc'ed). env_extra: NULL-terminated "K=V" list. */
int llm_test_run(const char *const *argv, const char *const *env_extra, char **ret_out);
/* Removes a directory tree made by a test (rm -rf without a shell). */
void llm_test_rmtree(const char *dir);
