// Socket owner lookups through the kernel's sock_diag netlink interface (linux/inet_diag.h), so
// identity never parses /proc/net text: an exact 4-tuple query, or a dump filtered in the kernel.
//
// Plain node_api.h (ABI-stable across Node versions). Calls are synchronous on purpose: the
// kernel answers a sock_diag request inside sendmsg()/recvmsg() of the calling thread, so a reply
// is already queued when send returns; every recv uses MSG_DONTWAIT and never waits on anything.
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RECV_BUFFER_BYTES 65536
// linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h: both options are number 80.
#define SO_ORIGINAL_DST_OPTION 80
#define TCP_ESTABLISHED_STATE 1
#define MAX_OWNERS 64

// One netlink socket per Node environment (main thread or worker), reused for every lookup.
typedef struct {
  int fd;
  uint32_t seq;
  unsigned char *buffer;
} diag_state;

// How a lookup failed: an errno, with the step that failed for the message.
typedef struct {
  int error;
  const char *step;
} diag_failure;

static void close_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  diag_state *state = data;
  if (state->fd >= 0) close(state->fd);
  free(state->buffer);
  free(state);
}

static int open_socket(diag_state *state, diag_failure *failure) {
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

// One datagram of replies; 0 when none is queued (a reply the kernel never produced).
static ssize_t receive(diag_state *state, diag_failure *failure) {
  ssize_t got;
  do {
    got = recv(state->fd, state->buffer, RECV_BUFFER_BYTES, MSG_DONTWAIT);
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
static int established_owner(diag_state *state, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport, uint32_t *uid, diag_failure *failure) {
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
 * MAX_OWNERS are kept) or -1.
 */
static int local_end_owners(diag_state *state, int protocol, int family, int address_family, const uint8_t *address, uint16_t port, uint32_t states, uint32_t *owners, diag_failure *failure) {
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
      if (count < MAX_OWNERS) owners[count++] = row->idiag_uid;
    }
  }
}

// ---- N-API glue ----

static napi_value throw_failure(napi_env env, const diag_failure *failure) {
  char code[24];
  char message[160];
  snprintf(code, sizeof code, "ERRNO_%d", failure->error);
  snprintf(message, sizeof message, "sock_diag %s failed: %s", failure->step, strerror(failure->error));
  napi_throw_error(env, code, message);
  return NULL;
}

static diag_state *state_of(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) != napi_ok) return NULL;
  return data;
}

static int read_u32(napi_env env, napi_value value, uint32_t max, uint32_t *out) {
  if (napi_get_value_uint32(env, value, out) != napi_ok || *out > max) {
    napi_throw_range_error(env, NULL, "expected an integer in range");
    return -1;
  }
  return 0;
}

// An address argument: a Buffer of 4 bytes (AF_INET) or 16 (AF_INET6).
static int read_address(napi_env env, napi_value value, int *family, const uint8_t **bytes) {
  void *data = NULL;
  size_t length = 0;
  if (napi_get_buffer_info(env, value, &data, &length) != napi_ok || (length != 4 && length != 16)) {
    napi_throw_type_error(env, NULL, "expected a 4- or 16-byte address Buffer");
    return -1;
  }
  *family = length == 4 ? AF_INET : AF_INET6;
  *bytes = data;
  return 0;
}

// establishedOwner(local: Buffer, localPort, remote: Buffer, remotePort) → uid, or -1 when none.
static napi_value js_established_owner(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int family = 0;
  int remote_family = 0;
  const uint8_t *local = NULL;
  const uint8_t *remote = NULL;
  uint32_t local_port = 0;
  uint32_t remote_port = 0;
  if (argc < 4 || read_address(env, argv[0], &family, &local) < 0 || read_u32(env, argv[1], 65535, &local_port) < 0 ||
      read_address(env, argv[2], &remote_family, &remote) < 0 || read_u32(env, argv[3], 65535, &remote_port) < 0) return NULL;
  if (family != remote_family) {
    napi_throw_type_error(env, NULL, "both ends must be of one address family");
    return NULL;
  }
  diag_state *state = state_of(env);
  diag_failure failure = {0, ""};
  uint32_t uid = 0;
  if (state == NULL || open_socket(state, &failure) < 0) return throw_failure(env, &failure);
  int found = established_owner(state, family, local, (uint16_t)local_port, remote, (uint16_t)remote_port, &uid, &failure);
  if (found < 0) return throw_failure(env, &failure);
  napi_value result;
  if (found == 0) napi_create_int32(env, -1, &result);
  else napi_create_uint32(env, uid, &result);
  return result;
}

// localEndOwners(protocol, dumpFamily, address: Buffer, port, states) → uid[].
static napi_value js_local_end_owners(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t protocol = 0;
  uint32_t dump_family = 0;
  uint32_t port = 0;
  uint32_t states = 0;
  int address_family = 0;
  const uint8_t *address = NULL;
  if (argc < 5 || read_u32(env, argv[0], 255, &protocol) < 0 || read_u32(env, argv[1], 255, &dump_family) < 0 ||
      read_address(env, argv[2], &address_family, &address) < 0 || read_u32(env, argv[3], 65535, &port) < 0 ||
      read_u32(env, argv[4], UINT32_MAX, &states) < 0) return NULL;
  if ((protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) || (dump_family != AF_INET && dump_family != AF_INET6)) {
    napi_throw_range_error(env, NULL, "protocol must be TCP or UDP and family AF_INET or AF_INET6");
    return NULL;
  }
  diag_state *state = state_of(env);
  diag_failure failure = {0, ""};
  uint32_t owners[MAX_OWNERS];
  if (state == NULL || open_socket(state, &failure) < 0) return throw_failure(env, &failure);
  int count = local_end_owners(state, (int)protocol, (int)dump_family, address_family, address, (uint16_t)port, states, owners, &failure);
  if (count < 0) return throw_failure(env, &failure);
  napi_value result;
  napi_create_array_with_length(env, (size_t)count, &result);
  for (int i = 0; i < count; i++) {
    napi_value uid;
    napi_create_uint32(env, owners[i], &uid);
    napi_set_element(env, result, (uint32_t)i, uid);
  }
  return result;
}

// originalDestination(fd, ipv6: boolean) → [address: Buffer, port] where the connection on `fd`
// was addressed before a NAT redirect, or null when it was not translated (no conntrack entry).
static napi_value js_original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t fd = 0;
  bool ipv6 = false;
  if (argc < 2 || read_u32(env, argv[0], INT32_MAX, &fd) < 0) return NULL;
  if (napi_get_value_bool(env, argv[1], &ipv6) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a boolean");
    return NULL;
  }
  struct sockaddr_in6 original;
  socklen_t length = ipv6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  memset(&original, 0, sizeof original);
  if (getsockopt((int)fd, ipv6 ? SOL_IPV6 : SOL_IP, SO_ORIGINAL_DST_OPTION, &original, &length) < 0) {
    // ENOENT: conntrack has no translated entry; ENOPROTOOPT: conntrack is not loaded at all.
    // Either way no redirect happened and the peer dialled this socket's own address.
    if (errno == ENOENT || errno == ENOPROTOOPT) {
      napi_value none;
      napi_get_null(env, &none);
      return none;
    }
    diag_failure failure = {errno, "getsockopt(SO_ORIGINAL_DST)"};
    return throw_failure(env, &failure);
  }
  const struct sockaddr_in *v4 = (const struct sockaddr_in *)&original;
  const void *address = ipv6 ? (const void *)&original.sin6_addr : (const void *)&v4->sin_addr;
  size_t address_length = ipv6 ? 16 : 4;
  uint16_t port = ntohs(ipv6 ? original.sin6_port : v4->sin_port);
  napi_value result;
  napi_value bytes;
  napi_value port_value;
  void *copy = NULL;
  napi_create_buffer_copy(env, address_length, address, &copy, &bytes);
  napi_create_uint32(env, port, &port_value);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, bytes);
  napi_set_element(env, result, 1, port_value);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  diag_state *state = calloc(1, sizeof *state);
  if (state == NULL || (state->buffer = malloc(RECV_BUFFER_BYTES)) == NULL) {
    free(state);
    napi_throw_error(env, NULL, "sock_diag: out of memory");
    return NULL;
  }
  state->fd = -1;
  napi_set_instance_data(env, state, close_state, NULL);
  napi_property_descriptor methods[] = {
      {"establishedOwner", NULL, js_established_owner, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localEndOwners", NULL, js_local_end_owners, NULL, NULL, NULL, napi_enumerable, NULL},
      {"originalDestination", NULL, js_original_destination, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }
