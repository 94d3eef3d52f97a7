// The kernel side of socket owner lookups: sock_diag netlink requests (linux/inet_diag.h) and the
// NAT original destination, in plain C with no Node API, for native/sock_diag.c to expose.
#ifndef SLUICE_INET_DIAG_H
#define SLUICE_INET_DIAG_H

#include <stdbool.h>
#include <stdint.h>

#define DIAG_RECV_BUFFER_BYTES 65536
#define DIAG_MAX_OWNERS 64

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

/** Opens the state's NETLINK_SOCK_DIAG socket if it is not open yet; 0, or -1 with `failure`. */
int diag_open(diag_state *state, diag_failure *failure);

/** 1 with `*uid` set when an ESTABLISHED TCP socket has exactly this tuple, 0 when none, -1 on failure. */
int diag_established_owner(diag_state *state, int family, const uint8_t *src, uint16_t sport, const uint8_t *dst, uint16_t dport, uint32_t *uid, diag_failure *failure);

/** How many uids (at most DIAG_MAX_OWNERS) own a socket bound to (address, port) in `states`; -1 on failure. */
int diag_local_end_owners(diag_state *state, int protocol, int family, int address_family, const uint8_t *address, uint16_t port, uint32_t states, uint32_t *owners, diag_failure *failure);

/** 1 with the pre-NAT destination of the connection on `fd`, 0 when it was not translated, -1 on failure. */
int diag_original_destination(int fd, bool ipv6, uint8_t address[16], uint16_t *port, diag_failure *failure);

#endif
