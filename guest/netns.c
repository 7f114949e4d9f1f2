/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cleanup.h"
#include "netns.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_sock *, nl_socket_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct rtnl_link *, rtnl_link_put)

int sv_netns_lo_up(struct orch_error *err)
{
	_cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();
	_cleanup_(rtnl_link_putp) struct rtnl_link *link = NULL;
	_cleanup_(rtnl_link_putp) struct rtnl_link *change = NULL;
	int r;

	if (!sk)
		return orch_err(err, -ENOMEM, "netns: cannot allocate a netlink socket");
	if ((r = nl_connect(sk, NETLINK_ROUTE)) < 0)
		return orch_err(err, -EIO, "netns: netlink connect: %s", nl_geterror(r));
	if ((r = rtnl_link_get_kernel(sk, 0, "lo", &link)) < 0)
		return orch_err(err, -ENODEV, "netns: no lo: %s", nl_geterror(r));
	change = rtnl_link_alloc();
	if (!change)
		return orch_err(err, -ENOMEM, "netns: cannot allocate a link");
	rtnl_link_set_flags(change, IFF_UP);
	if ((r = rtnl_link_change(sk, link, change, 0)) < 0)
		return orch_err(err, -EIO, "netns: cannot bring lo up: %s", nl_geterror(r));
	return 0;
}

/* Runs in the namespace target, then returns to the original one (always). */
static int with_netns(int target, int (*fn)(void *data, struct orch_error *err), void *data,
		      struct orch_error *err)
{
	_cleanup_close_ int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return orch_errno(err, -errno, "netns: cannot open /proc/self/ns/net");
	int r;
	if (target >= 0)
		r = setns(target, CLONE_NEWNET);
	else
		r = unshare(CLONE_NEWNET);
	if (r < 0)
		return orch_errno(err, -errno, "netns: cannot %s a network namespace",
				  target >= 0 ? "enter" : "create");
	r = fn(data, err);
	if (setns(self, CLONE_NEWNET) < 0)
		/* Staying in the agent's namespace would cut the supervisor off: fatal. */
		abort();
	return r;
}

static int new_cb(void *data, struct orch_error *err)
{
	int r = sv_netns_lo_up(err);
	if (r < 0)
		return r;
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return orch_errno(err, -errno, "netns: cannot open the new namespace");
	*(int *)data = fd;
	return 0;
}

int sv_netns_new(struct orch_error *err)
{
	int fd = -1;
	int r = with_netns(-1, new_cb, &fd, err);
	return r < 0 ? r : fd;
}

struct socket_args {
	int domain, type, fd;
};

static int socket_cb(void *data, struct orch_error *err)
{
	struct socket_args *a = data;
	a->fd = socket(a->domain, a->type | SOCK_CLOEXEC, 0);
	if (a->fd < 0)
		return orch_errno(err, -errno, "netns: socket");
	return 0;
}

int sv_netns_socket(int netns_fd, int domain, int type, struct orch_error *err)
{
	struct socket_args a = {domain, type, -1};
	if (netns_fd < 0)
		return orch_err(err, -EBADF, "netns: no namespace");
	int r = with_netns(netns_fd, socket_cb, &a, err);
	return r < 0 ? r : a.fd;
}
