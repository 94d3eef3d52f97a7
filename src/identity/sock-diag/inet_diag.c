// sock_diag requests answered from the kernel's socket tables (an exact 4-tuple lookup, or a dump
// filtered in the kernel) and SO_ORIGINAL_DST, so identity never parses /proc/net text.
//
// Synchronous on purpose: the kernel answers a sock_diag request inside sendmsg()/recvmsg() of
// the calling thread, so a reply is already queued when send returns; every recv uses
// MSG_DONTWAIT and never waits on anything.
#include "inet_diag.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

// linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h: both options are number 80.
#define SO_ORIGINAL_DST_OPTION 80
#define TCP_ESTABLISHED_STATE 1

int diag_open(diag_state *state, diag_failure *failure) {
  if (state->fd >= 0) return 0;
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    *failure = (diag_failure){errno, "socket(NETLINK_SOCK_DIAG)"};
    return -1;
  }
  state->fd = fd;
  return 0;
}

static int send_request(diag_state *state, void *request, size_t length, diag_failure *failure) {
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do {
    sent = sendto(state->fd, request, length, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    *failure = (diag_failure){errno, "sendto"};
    return -1;
  }
  return 0;
}

// One datagram of replies. None queued means the kernel produced no reply: reported as ETIMEDOUT.
static ssize_t receive(diag_state *state, diag_failure *failure) {
  ssize_t got;
  do {
    got = recv(state->fd, state->buffer, DIAG_RECV_BUFFER_BYTES, MSG_DONTWAIT);
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    *failure = (diag_failure){errno == EAGAIN ? ETIMEDOUT : errno, "recv"};
    return -1;
  }
  return got;
}

static void fill_id(struct inet_diag_sockid *id, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport) {
  size_t length = family == AF_INET ? 4 : 16;
  memset(id, 0, sizeof *id);
  id->idiag_sport = htons(sport);
  id->idiag_dport = htons(dport);
  if (src != NULL) memcpy(id->idiag_src, src, length);
  if (dst != NULL) memcpy(id->idiag_dst, dst, length);
  id->idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  id->idiag_cookie[1] = INET_DIAG_NOCOOKIE;
}

/*
 * The uid owning the TCP socket whose local end is (src, sport) and whose peer is (dst, dport),
 * when that socket is ESTABLISHED: the kernel looks the tuple up in its connection hash. Returns
 * 1 with *uid set, 0 when there is no such socket or it is in another state (TIME_WAIT and
 * FIN_WAIT2 leftovers report uid 0), -1 on failure.
 */
int diag_established_owner(diag_state *state, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport, uint32_t *uid, diag_failure *failure) {
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 body;
  } request;
  memset(&request, 0, sizeof request);
  request.header.nlmsg_len = sizeof request;
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST;
  request.header.nlmsg_seq = ++state->seq;
  request.body.sdiag_family = (uint8_t)family;
  request.body.sdiag_protocol = IPPROTO_TCP;
  request.body.idiag_states = 1u << TCP_ESTABLISHED_STATE;
  fill_id(&request.body.id, family, src, sport, dst, dport);
  if (send_request(state, &request, sizeof request, failure) < 0) return -1;
  for (;;) {
    ssize_t got = receive(state, failure);
    if (got < 0) return -1;
    for (struct nlmsghdr *message = (struct nlmsghdr *)state->buffer; NLMSG_OK(message, (size_t)got); message = NLMSG_NEXT(message, got)) {
      // A reply to an earlier request that failed half-way is skipped, never taken for this one.
      if (message->nlmsg_seq != request.header.nlmsg_seq) continue;
      if (message->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *error = NLMSG_DATA(message);
        if (error->error == -ENOENT) return 0;
        *failure = (diag_failure){-error->error, "SOCK_DIAG_BY_FAMILY"};
        return -1;
      }
      if (message->nlmsg_type != SOCK_DIAG_BY_FAMILY || message->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
      const struct inet_diag_msg *row = NLMSG_DATA(message);
      // The kernel's lookup also falls back to listening sockets: only the exact tuple counts.
      if (row->idiag_state != TCP_ESTABLISHED_STATE || row->id.idiag_sport != request.body.id.idiag_sport || row->id.idiag_dport != request.body.id.idiag_dport) return 0;
      *uid = row->idiag_uid;
      return 1;
    }
  }
}

/*
 * The uids of every socket of `protocol` in `family` whose local end is (address, port), in one
 * of `states` (a bit per TCP state number). A dump, filtered in the kernel by bytecode
 * (INET_DIAG_BC_S_COND), so only matching rows cross into user space. Returns the count (at most
 * DIAG_MAX_OWNERS are kept) or -1.
 */
int diag_local_end_owners(diag_state *state, int protocol, int family, int address_family, const uint8_t *address, uint16_t port, uint32_t states, uint32_t *owners, diag_failure *failure) {
  size_t address_length = address_family == AF_INET ? 4 : 16;
  struct {
    struct nlmsghdr header;
    struct inet_diag_req_v2 body;
    struct nlattr attribute;
    struct inet_diag_bc_op op;
    struct inet_diag_hostcond condition;
    uint8_t address[16];
  } request;
  memset(&request, 0, sizeof request);
  size_t bytecode_length = sizeof request.op + sizeof request.condition + address_length;
  size_t total = NLMSG_LENGTH(sizeof request.body) + NLA_HDRLEN + bytecode_length;
  request.header.nlmsg_len = (uint32_t)total;
  request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.header.nlmsg_seq = ++state->seq;
  request.body.sdiag_family = (uint8_t)family;
  request.body.sdiag_protocol = (uint8_t)protocol;
  request.body.idiag_states = states;
  fill_id(&request.body.id, family, NULL, 0, NULL, 0);
  request.attribute.nla_type = INET_DIAG_REQ_BYTECODE;
  request.attribute.nla_len = (uint16_t)(NLA_HDRLEN + bytecode_length);
  // One condition: "yes" steps past the end (accept), "no" jumps 4 bytes further (reject).
  request.op.code = INET_DIAG_BC_S_COND;
  request.op.yes = (uint8_t)bytecode_length;
  request.op.no = (uint16_t)(bytecode_length + 4);
  request.condition.family = (uint8_t)address_family;
  request.condition.prefix_len = (uint8_t)(address_length * 8);
  request.condition.port = port;
  memcpy(request.address, address, address_length);
  if (send_request(state, &request, total, failure) < 0) return -1;
  int count = 0;
  for (;;) {
    ssize_t got = receive(state, failure);
    if (got < 0) return -1;
    for (struct nlmsghdr *message = (struct nlmsghdr *)state->buffer; NLMSG_OK(message, (size_t)got); message = NLMSG_NEXT(message, got)) {
      if (message->nlmsg_seq != request.header.nlmsg_seq) continue;
      if (message->nlmsg_type == NLMSG_DONE) return count;
      if (message->nlmsg_type == NLMSG_ERROR) {
        const struct nlmsgerr *error = NLMSG_DATA(message);
        *failure = (diag_failure){-error->error, "SOCK_DIAG_BY_FAMILY dump"};
        return -1;
      }
      if (message->nlmsg_type != SOCK_DIAG_BY_FAMILY || message->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg))) continue;
      const struct inet_diag_msg *row = NLMSG_DATA(message);
      if (count < DIAG_MAX_OWNERS) owners[count++] = row->idiag_uid;
    }
  }
}

int diag_original_destination(int fd, bool ipv6, uint8_t address[16], uint16_t *port, diag_failure *failure) {
  struct sockaddr_in6 original;
  socklen_t length = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  memset(&original, 0, sizeof original);
  if (getsockopt(fd, ipv6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST_OPTION, &original, &length) < 0) {
    // ENOENT: conntrack has no translated entry; ENOPROTOOPT: conntrack is not loaded at all.
    // Either way no redirect happened and the peer dialled this socket's own address.
    if (errno == ENOENT || errno == ENOPROTOOPT) return 0;
    *failure = (diag_failure){errno, "getsockopt(SO_ORIGINAL_DST)"};
    return -1;
  }
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)&original;
  memcpy(address, ipv6 ? (const void *)&original.sin6_addr : (const void *)&v4->sin_addr, ipv6 ? 16 : 4);
  *port = ntohs(ipv6 ? original.sin6_port : v4->sin_port);
  return 1;
}
