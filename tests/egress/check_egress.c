/* SPDX-License-Identifier: Apache-2.0 */
/* The egress gateway's pure parts: its configuration (strict, key paths in errors), the
 * allow-set decision, address classes, and the proxy request and SNI parsers. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check-run.h"
#include "config.h"
#include "config-egress.h"
#include "egress-http.h"
#include "egress-policy.h"
#include "egress.h"

static struct egress_config *cfg(const char *text, struct orch_error *err)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	struct egress_config *c = NULL;

	ck_assert_msg(j, "%s", jerr.text);
	if (egress_config_parse(j, &c, err) < 0)
		c = NULL;
	json_decref(j);
	return c;
}

START_TEST(test_config)
{
	struct orch_error err = {0};
	struct egress_config *c = cfg(
		"{\"sets\": {\"npm\": [\"registry.npmjs.org:443\"],"
		" \"gh\": [\"github.com:443\", \"*.githubusercontent.com:443\", \"[::1]:8080\"]},"
		" \"resolve\": {\"Registry.Test\": \"127.0.0.5\", \"b.test\": [\"::1\", "
		"\"10.0.0.1\"]},"
		" \"allow_private\": [\"registry.test\"],"
		" \"inject\": [{\"host\": \"api.github.com:443\", \"header\": \"Authorization\","
		"   \"prefix\": \"Bearer \", \"key_file\": \"/etc/orch/gh\"}],"
		" \"dlp_patterns\": [\"ghp_[A-Za-z0-9]{36}\"],"
		" \"limits\": {\"connections\": 4, \"bytes\": 1000, \"duration_ms\": 5000}}",
		&err);
	ck_assert_msg(c, "%s", err.msg);
	ck_assert_int_eq(c->n_sets, 2);
	const struct egress_set *gh = egress_config_set(c, "gh");
	ck_assert_ptr_nonnull(gh);
	ck_assert_int_eq(gh->n_rules, 3);
	ck_assert(gh->rules[1].wildcard);
	ck_assert_str_eq(gh->rules[1].host, "githubusercontent.com");
	ck_assert_str_eq(gh->rules[2].host, "::1");
	ck_assert_str_eq(c->resolves[0].host, "registry.test");
	ck_assert_int_eq(c->resolves[1].n_addrs, 2);
	ck_assert_str_eq(c->injects[0].host, "api.github.com");
	ck_assert_int_eq(c->injects[0].port, 443);
	ck_assert_int_eq(c->limits.connections, 4);
	egress_config_free(c);

	static const char *const bad[][2] = {
		{"{\"sets\": {\"x\": [\"nohost\"]}}", "expected host:port"},
		{"{\"sets\": {\"x\": [\"a.test:0\"]}}", "bad port"},
		{"{\"sets\": {\"x\": [\"*.10.0.0.1:80\"]}}", "expected a host name"},
		{"{\"sets\": {\"x\": [\"a..b:80\"]}}", "expected a host name"},
		{"{\"sets\": {\"x\": \"a.test:80\"}}", "egress.sets.x: expected an array"},
		{"{\"resolve\": {\"a.test\": \"nothere\"}}", "is not an IP address"},
		{"{\"dlp_patterns\": [\"(\"]}", "egress.dlp_patterns[0]"},
		{"{\"inject\": [{\"host\": \"*.a.test:443\", \"header\": \"A\", \"key_file\": "
		 "\"/k\"}]}",
		 "one exact host"},
		{"{\"limits\": {\"connections\": 0}}", "egress.limits.connections"},
		{"{\"other\": 1}", "other"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = (struct orch_error){0};
		ck_assert_msg(!cfg(bad[i][0], &err), "accepted %s", bad[i][0]);
		ck_assert_msg(strstr(err.msg, bad[i][1]), "%s: %s", bad[i][0], err.msg);
	}
}
END_TEST

START_TEST(test_config_vms)
{
	struct orchd_config *c = NULL;
	struct orch_error err = {0};
	const char *ok = "{\"vms\": {\"a\": {\"egress\": [\"npm\"]}},"
			 " \"egress\": {\"sets\": {\"npm\": [\"r.test:443\"]}}}";
	const char *unknown = "{\"vms\": {\"a\": {\"egress\": [\"pip\"]}},"
			      " \"egress\": {\"sets\": {\"npm\": [\"r.test:443\"]}}}";
	const char *none = "{\"vms\": {\"a\": {\"egress\": [\"npm\"]}}}";

	ck_assert_msg(orchd_config_parse(ok, strlen(ok), NULL, &c, &err) == 0, "%s", err.msg);
	ck_assert_str_eq(c->vms[0].egress[0], "npm");
	ck_assert_ptr_nonnull(c->egress);
	orchd_config_free(c);
	ck_assert_int_lt(orchd_config_parse(unknown, strlen(unknown), NULL, &c, &err), 0);
	ck_assert_msg(strstr(err.msg, "vms.a.egress: no egress set named \"pip\""), "%s", err.msg);
	ck_assert_int_lt(orchd_config_parse(none, strlen(none), NULL, &c, &err), 0);
	ck_assert_msg(strstr(err.msg, "no egress section"), "%s", err.msg);
}
END_TEST

START_TEST(test_policy)
{
	struct orch_error err = {0};
	struct egress_config *c =
		cfg("{\"sets\": {\"npm\": [\"registry.npmjs.org:443\"],"
		    " \"gh\": [\"*.githubusercontent.com:443\", \"10.1.2.3:80\"]}}",
		    &err);
	char *npm[] = {"npm", NULL}, *both[] = {"npm", "gh", NULL}, *none[] = {NULL};
	char *unknown[] = {"nope", NULL};
	char why[256];

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(egress_policy_allowed(c, npm, "registry.npmjs.org", 443, why, 256), 0);
	ck_assert_int_eq(egress_policy_allowed(c, npm, "registry.npmjs.org", 80, why, 256),
			 -EACCES);
	ck_assert_msg(strstr(why, "registry.npmjs.org:80 is not in the task's egress sets (npm)"),
		      "%s", why);
	ck_assert_int_eq(egress_policy_allowed(c, npm, "evil.registry.npmjs.org", 443, why, 256),
			 -EACCES);
	ck_assert_int_eq(egress_policy_allowed(c, both, "raw.githubusercontent.com", 443, why, 256),
			 0);
	ck_assert_int_eq(egress_policy_allowed(c, both, "a.b.githubusercontent.com", 443, why, 256),
			 0);
	/* the apex is not *.apex; nor is a name that merely ends the same */
	ck_assert_int_eq(egress_policy_allowed(c, both, "githubusercontent.com", 443, why, 256),
			 -EACCES);
	ck_assert_int_eq(egress_policy_allowed(c, both, "evilgithubusercontent.com", 443, why, 256),
			 -EACCES);
	ck_assert_int_eq(egress_policy_allowed(c, both, "10.1.2.3", 80, why, 256), 0);
	ck_assert_int_eq(egress_policy_allowed(c, both, "10.1.2.4", 80, why, 256), -EACCES);
	ck_assert_msg(strstr(why, "IP-literal"), "%s", why);
	ck_assert_int_eq(egress_policy_allowed(c, none, "registry.npmjs.org", 443, why, 256),
			 -EACCES);
	ck_assert_msg(strstr(why, "no egress allowed"), "%s", why);
	ck_assert_int_eq(egress_policy_allowed(c, unknown, "registry.npmjs.org", 443, why, 256),
			 -EACCES);
	egress_config_free(c);
}
END_TEST

static const char *cls(const char *ip)
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;

	if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
		v4->sin_family = AF_INET;
	else {
		ck_assert_int_eq(inet_pton(AF_INET6, ip, &v6->sin6_addr), 1);
		v6->sin6_family = AF_INET6;
	}
	return egress_addr_class((struct sockaddr *)&ss);
}

START_TEST(test_addr_class)
{
	static const char *const priv[][2] = {
		{"127.0.0.1", "loopback"},
		{"10.9.8.7", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"169.254.169.254", "cloud metadata"},
		{"169.254.1.1", "link-local"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"0.0.0.0", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"fe80::1", "link-local"},
		{"fd00::5", "private"},
		{"fd00:ec2::254", "cloud metadata"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "cloud metadata"},
		{"64:ff9b::a00:1", "private"},
		{"ff02::1", "multicast"},
	};
	for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++) {
		const char *c = cls(priv[i][0]);
		ck_assert_msg(c && !strcmp(c, priv[i][1]), "%s: %s", priv[i][0], c ? c : "public");
	}
	ck_assert_ptr_null(cls("93.184.216.34"));
	ck_assert_ptr_null(cls("172.32.0.1"));
	ck_assert_ptr_null(cls("2606:4700::1111"));
}
END_TEST

START_TEST(test_head)
{
	static struct orch_http_head h;
	struct orch_error err = {0};
	const char *c = "CONNECT Registry.NPMJS.org:443 HTTP/1.1\r\nHost: x\r\n\r\nrest";
	const char *g = "GET http://a.test:8080?q=1 HTTP/1.1\r\nHost: a.test\r\nX-A:  v  \r\n"
			"Proxy-Connection: keep-alive\r\n\r\n";
	int end = orch_http_head_end(c, strlen(c));

	ck_assert_int_eq(end, (int)strlen(c) - 4);
	ck_assert_int_eq(orch_http_head_parse(c, (size_t)end, &h, &err), 0);
	ck_assert_int_eq(h.kind, ORCH_EGRESS_CONNECT);
	ck_assert_str_eq(h.host, "registry.npmjs.org");
	ck_assert_int_eq(h.port, 443);
	end = orch_http_head_end(g, strlen(g));
	ck_assert_int_eq(orch_http_head_parse(g, (size_t)end, &h, &err), 0);
	ck_assert_int_eq(h.kind, ORCH_EGRESS_HTTP);
	ck_assert_str_eq(h.target, "/?q=1");
	ck_assert_int_eq(h.port, 8080);
	ck_assert_int_eq(h.n_headers, 3);
	ck_assert_str_eq(h.headers[1].value, "v");
	ck_assert(orch_http_header_hop(h.headers[2].name));
	/* incomplete, too long, malformed */
	ck_assert_int_eq(orch_http_head_end("CONNECT a:1 HTTP/1.1\r\n", 22), 0);
	static char big[ORCH_HTTP_MAX_HEAD + 10];
	memset(big, 'a', sizeof(big));
	ck_assert_int_eq(orch_http_head_end(big, sizeof(big)), -EPROTO); /* line too long */
	memcpy(big, "GET http://a/ HTTP/1.1\r\n", 24);
	for (size_t i = 24; i + 8 < sizeof(big); i += 8)
		memcpy(big + i, "X: 1234\n", 8);
	ck_assert_int_eq(orch_http_head_end(big, sizeof(big)), -E2BIG);
	static const char *const bad[] = {
		"CONNECT a.test HTTP/1.1\r\n\r\n",
		"CONNECT a.test:0 HTTP/1.1\r\n\r\n",
		"GET /local HTTP/1.1\r\n\r\n",
		"GET https://a.test/ HTTP/1.1\r\n\r\n",
		"GET http://u:p@a.test/ HTTP/1.1\r\n\r\n",
		"GET http://a.test/ HTTP/2\r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\n x\r\n\r\n",
		"GET http://a_b..c/ HTTP/1.1\r\n\r\n",
		"G(T http://a.test/ HTTP/1.1\r\n\r\n",
		"GET http://a.test/ HTTP/1.1\r\nA B: c\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		end = orch_http_head_end(bad[i], strlen(bad[i]));
		ck_assert_msg(end <= 0 || orch_http_head_parse(bad[i], (size_t)end, &h, &err) < 0,
			      "accepted %s", bad[i]);
	}
}
END_TEST

START_TEST(test_sni)
{
	/* A ClientHello naming "a.test": record, handshake, version, random, session id,
	 * one cipher suite, one compression method, one extension (server_name). */
	uint8_t ch[] = {0x16, 0x03, 0x01, 0x00, 0x3c, 0x01,
			0x00, 0x00, 0x38, 0x03, 0x03, [11 ... 42] = 0x11,
			0x00, 0x00, 0x02, 0x13, 0x01, 0x01,
			0x00, 0x00, 0x0b, 0x00, 0x00, 0x00,
			0x07, 0x00, 0x05, 0x00, 0x00, 0x02,
			'A',  '.'};
	char name[ORCH_EGRESS_MAX_HOST + 1];
	struct orch_error err = {0};

	/* fix up: the name is 6 bytes "a.test" */
	uint8_t full[128];
	size_t n = 0;
	memcpy(full, ch, 43);
	n = 43;
	const uint8_t tail[] = {0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00, 0x00,
				0x0f, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x09, 0x00,
				0x00, 0x06, 'A',  '.',	't',  'e',  'S',  't'};
	memcpy(full + n, tail, sizeof(tail));
	n += sizeof(tail);
	full[3] = (uint8_t)((n - 5) >> 8);
	full[4] = (uint8_t)(n - 5);
	full[6] = 0;
	full[7] = (uint8_t)((n - 9) >> 8);
	full[8] = (uint8_t)(n - 9);
	ck_assert_int_eq(orch_tls_sni(full, n, name, &err), 1);
	ck_assert_str_eq(name, "a.test");
	ck_assert_int_eq(orch_tls_sni(full, n - 1, name, &err), -EAGAIN);
	ck_assert_int_eq(orch_tls_sni(full, 3, name, &err), -EAGAIN);
	full[n - 1] = 0; /* a NUL in the name */
	ck_assert_int_eq(orch_tls_sni(full, n, name, &err), -EPROTO);
	ck_assert_int_eq(orch_tls_sni((const uint8_t *)"GET / HTTP/1.1\r\n", 16, name, &err),
			 -EPROTO);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("egress");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_config_vms);
	tcase_add_test(tc, test_policy);
	tcase_add_test(tc, test_addr_class);
	tcase_add_test(tc, test_head);
	tcase_add_test(tc, test_sni);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return orch_check_run(suite());
}
