/* SPDX-License-Identifier: Apache-2.0 */
/* The hidden mode of a program that serves LLM endpoints: the endpoint processes the
 * supervisor starts (llm-endpoint.h) are the same program executed again with
 * argv[1] == LLM_HELPER_ARG. Such a program's main() begins with
 *     if (argc > 1 && strcmp(argv[1], LLM_HELPER_ARG) == 0)
 *             llm_helper_main(argc, argv);
 * (orch-supervisor does; so do the tests and benchmarks that link guest/llm/). */
#pragma once

#define LLM_HELPER_ARG "--llm-endpoint"

/* Runs one endpoint process to its end; never returns. */
_Noreturn void llm_helper_main(int argc, char **argv);
