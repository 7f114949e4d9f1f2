/* SPDX-License-Identifier: Apache-2.0 */
/* AF_VSOCK for real: listen, dial, accept over the local loopback (CID 1, the
 * vsock_loopback module), the peer's CID and port as accept reports them, a peer of
 * another CID refused, a connection from a reserved source port (what orchd uses to reach
 * a guest's debug shell), and that an unprivileged uid can neither listen on a reserved
 * port (the squatting of orchd's lanes, docs/ARCHITECTURE.md) nor take a reserved source
 * port. Runs on the host when vsock_loopback is loaded there, and inside a guest in the
 * e2e test vm-vsock-guest (tests/vm/vsock-guest.sh), whose kernel has it. Without AF_VSOCK,
 * or without a way to connect to ourselves, it says what is missing and exits 77 (meson:
 * SKIP) after checking the parts that did run. Plain main(): Check has no notion of a
 * skip. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "transport.h"

#define SKIP 77
#define NOBODY 65534

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fprintf(stderr, "\n");                               \
			exit(1);                                             \
		}                                                            \
	} while (0)

/* accept with a bounded wait: loopback connections complete asynchronously. */
static int accept_wait(int lfd, uint32_t want_cid, struct orch_vsock_peer *peer,
		       struct orch_error *err)
{
	int fd = -EAGAIN;
	for (int i = 0; i < 200 && fd == -EAGAIN; i++) {
		fd = orch_transport_accept(lfd, ORCH_TRANSPORT_VSOCK, want_cid, peer, err);
		if (fd == -EAGAIN) {
			struct pollfd p = {.fd = lfd, .events = POLLIN};
			poll(&p, 1, 10);
		}
	}
	return fd;
}

/* As an unprivileged uid: no reserved port to listen on, no reserved source port; an
 * unreserved port works. Exit status: 0 when all of that holds. */
static int unprivileged(uint32_t free_port)
{
	struct orch_error err = {0};
	struct orch_addr a = {.kind = ORCH_TRANSPORT_VSOCK,
			      .cid = ORCH_VSOCK_CID_ANY,
			      .port = ORCH_VSOCK_CONTROL_PORT};
	if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0) {
		fprintf(stderr, "FAIL: cannot become uid %d: %s\n", NOBODY, strerror(errno));
		return 1;
	}
	int r = orch_transport_listen(&a, 0, &err);
	if (r != -EACCES) {
		fprintf(stderr, "FAIL: uid %d listening on vsock port %u: %d (%s), not -EACCES\n",
			NOBODY, a.port, r, err.msg);
		return 1;
	}
	printf("ok: uid %d cannot listen on the reserved vsock port %u: %s\n", NOBODY, a.port,
	       err.msg);
	r = orch_vsock_connect_reserved(ORCH_VSOCK_CID_LOCAL, free_port, NULL, &err);
	if (r != -EACCES) {
		fprintf(stderr, "FAIL: uid %d took a reserved source port: %d (%s)\n", NOBODY, r,
			err.msg);
		return 1;
	}
	printf("ok: uid %d cannot take a reserved source port: %s\n", NOBODY, err.msg);
	a.port = free_port;
	r = orch_transport_listen(&a, 0, &err);
	if (r < 0) {
		fprintf(stderr, "FAIL: uid %d cannot listen on unreserved port %u: %s\n", NOBODY,
			free_port, err.msg);
		return 1;
	}
	printf("ok: uid %d may listen on the unreserved port %u (why orchd's lanes are "
	       "reserved)\n",
	       NOBODY, free_port);
	close(r);
	return 0;
}

int main(void)
{
	struct orch_error err = {0};
	struct orch_vsock_peer peer;
	struct orch_addr a;
	char s[64];
	uint32_t port = 20000 + (uint32_t)(getpid() % 20000), local = 0;
	int lfd, cfd, sfd, st;

	if (!orch_vsock_available()) {
		printf("SKIP: this kernel offers no AF_VSOCK sockets (no vsock module loaded: "
		       "vhost_vsock on a host, a virtio vsock transport in a guest, or "
		       "vsock_loopback); only address parsing is tested (check_transport); the "
		       "e2e test vm-vsock-guest runs this inside a guest\n");
		return SKIP;
	}
	snprintf(s, sizeof(s), "vsock:any:%u", port);
	CHECK(orch_addr_parse(s, &a, &err) == 0, "%s", err.msg);
	lfd = orch_transport_listen(&a, 0, &err);
	CHECK(lfd >= 0, "listen on %s: %s", s, err.msg);
	CHECK(orch_transport_accept(lfd, ORCH_TRANSPORT_VSOCK, ORCH_VSOCK_CID_ANY, NULL, &err) ==
		      -EAGAIN,
	      "accept with nothing pending: %s", err.msg);
	printf("ok: AF_VSOCK socket, bind and listen on %s; accept without a peer gives EAGAIN\n",
	       s);

	snprintf(s, sizeof(s), "vsock:%u:%u", ORCH_VSOCK_CID_LOCAL, port);
	CHECK(orch_addr_parse(s, &a, &err) == 0, "%s", err.msg);
	cfd = orch_transport_dial(&a, 2000, &err);
	if (cfd < 0) {
		printf("SKIP: cannot connect to ourselves over AF_VSOCK (%s): end to end needs the "
		       "vsock_loopback module or /dev/vhost-vsock with a guest, neither is "
		       "usable here; peer checks were not exercised (the e2e test "
		       "vm-vsock-guest runs them inside a guest)\n",
		       err.msg);
		close(lfd);
		return SKIP;
	}
	sfd = accept_wait(lfd, ORCH_VSOCK_CID_LOCAL, &peer, &err);
	CHECK(sfd >= 0, "accept from CID 1: %s", err.msg);
	CHECK(peer.cid == ORCH_VSOCK_CID_LOCAL, "peer CID %u", peer.cid);
	CHECK(!orch_vsock_port_reserved(peer.port),
	      "an unbound socket's port %u must not be reserved", peer.port);
	CHECK(write(cfd, "ping", 4) == 4, "write: %s", strerror(errno));
	{
		char b[8] = {0};
		struct pollfd p = {.fd = sfd, .events = POLLIN};
		CHECK(poll(&p, 1, 5000) == 1 && read(sfd, b, sizeof(b)) == 4 &&
			      !memcmp(b, "ping", 4),
		      "no bytes over vsock");
	}
	printf("ok: vsock loopback end to end: peer CID %u, unreserved peer port %u, bytes "
	       "carried\n",
	       peer.cid, peer.port);
	close(sfd);
	close(cfd);

	cfd = orch_transport_dial(&a, 2000, &err);
	CHECK(cfd >= 0, "%s", err.msg);
	sfd = accept_wait(lfd, 3, &peer, &err);
	CHECK(sfd == -EPERM, "a peer with the wrong CID must be refused (%d)", sfd);
	CHECK(peer.cid == ORCH_VSOCK_CID_LOCAL && strstr(err.msg, "refused vsock peer CID 1"),
	      "refusal: %s", err.msg);
	close(cfd);
	printf("ok: a peer of another CID is refused: %s\n", err.msg);

	if (geteuid() != 0) {
		printf("SKIP: not root: reserved ports were not exercised\n");
		close(lfd);
		return SKIP;
	}
	cfd = orch_vsock_connect_reserved(ORCH_VSOCK_CID_LOCAL, port, &local, &err);
	CHECK(cfd >= 0, "connect from a reserved port: %s", err.msg);
	sfd = accept_wait(lfd, ORCH_VSOCK_CID_LOCAL, &peer, &err);
	CHECK(sfd >= 0, "accept: %s", err.msg);
	CHECK(orch_transport_connect_result(cfd) == 0, "connect result");
	CHECK(peer.port == local && orch_vsock_port_reserved(peer.port),
	      "peer port %u, local port %u", peer.port, local);
	printf("ok: a connection from the reserved source port %u is seen with that port\n", local);
	close(sfd);
	close(cfd);
	close(lfd);

	/* The lane port as root: listening works, a second listener is refused. */
	a = (struct orch_addr){
		.kind = ORCH_TRANSPORT_VSOCK, .cid = ORCH_VSOCK_CID_ANY, .port = port + 1};
	fflush(stdout);
	pid_t pid = fork();
	CHECK(pid >= 0, "fork");
	if (pid == 0) {
		int rc = unprivileged(port + 1);
		fflush(stdout);
		_exit(rc);
	}
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "the unprivileged checks failed");
	a.port = ORCH_VSOCK_CONTROL_PORT;
	lfd = orch_transport_listen(&a, 0, &err);
	CHECK(lfd >= 0, "root listening on vsock port %u: %s", a.port, err.msg);
	CHECK(orch_transport_listen(&a, 0, &err) == -EADDRINUSE, "a second listener on %u", a.port);
	close(lfd);
	printf("ok: root listens on the reserved port %u; a second listener gets EADDRINUSE\n",
	       a.port);
	return 0;
}
