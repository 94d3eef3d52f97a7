// The sock_diag addon: exposes native/inet_diag.c to Node through plain node_api.h, which is
// ABI-stable across Node versions, so one build serves Node 20, 22 and 24.
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "inet_diag.h"

static void close_state(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  diag_state *state = data;
  if (state->fd >= 0) close(state->fd);
  free(state->buffer);
  free(state);
}

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

// The environment's netlink socket, opened on first use; NULL, with an exception thrown, if not.
static diag_state *ready_state(napi_env env) {
  diag_state *state = state_of(env);
  diag_failure failure = {EINVAL, "napi_get_instance_data"};
  if (state == NULL || diag_open(state, &failure) < 0) {
    throw_failure(env, &failure);
    return NULL;
  }
  return state;
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
  diag_state *state = ready_state(env);
  if (state == NULL) return NULL;
  diag_failure failure = {0, ""};
  uint32_t uid = 0;
  int found = diag_established_owner(state, family, local, (uint16_t)local_port, remote, (uint16_t)remote_port, &uid, &failure);
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
  diag_state *state = ready_state(env);
  if (state == NULL) return NULL;
  diag_failure failure = {0, ""};
  uint32_t owners[DIAG_MAX_OWNERS];
  int count = diag_local_end_owners(state, (int)protocol, (int)dump_family, address_family, address, (uint16_t)port, states, owners, &failure);
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
  uint8_t address[16];
  uint16_t port = 0;
  diag_failure failure = {0, ""};
  int found = diag_original_destination((int)fd, ipv6, address, &port, &failure);
  if (found < 0) return throw_failure(env, &failure);
  if (found == 0) {
    napi_value none;
    napi_get_null(env, &none);
    return none;
  }
  napi_value result;
  napi_value bytes;
  napi_value port_value;
  void *copy = NULL;
  napi_create_buffer_copy(env, ipv6 ? 16 : 4, address, &copy, &bytes);
  napi_create_uint32(env, port, &port_value);
  napi_create_array_with_length(env, 2, &result);
  napi_set_element(env, result, 0, bytes);
  napi_set_element(env, result, 1, port_value);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  diag_state *state = calloc(1, sizeof *state);
  if (state == NULL || (state->buffer = malloc(DIAG_RECV_BUFFER_BYTES)) == NULL) {
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
