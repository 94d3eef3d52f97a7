// Builds the DNS responses the policy server sends, with dns-packet doing the wire format.
import dnsPacket from 'dns-packet';

/** RFC 1035 4.1.1 and RFC 6895 2.3 response codes that the policy server uses. */
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
export type Rcode = (typeof RCODE)[keyof typeof RCODE];

/** Without EDNS (which we do not forward) a UDP reply must fit in 512 bytes (RFC 1035 4.2.1). */
export const MAX_UDP_RESPONSE = 512;

/** Answers are cached by the agent; a short cap keeps a policy change effective within minutes. */
export const MAX_TTL_SECONDS = 300;

export interface AddressRecord {
  readonly address: string;
  readonly ttl: number;
}

export function response(query: dnsPacket.DecodedPacket, rcode: Rcode, records: readonly AddressRecord[] = [], truncated = false): Buffer {
  const question = query.questions?.[0];
  const answers: dnsPacket.Answer[] =
    question === undefined || (question.type !== 'A' && question.type !== 'AAAA')
      ? []
      : records.map((record) => ({ type: question.type as 'A' | 'AAAA', name: question.name, ttl: Math.min(record.ttl, MAX_TTL_SECONDS), data: record.address }));
  const flags = (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE | (truncated ? dnsPacket.TRUNCATED_RESPONSE : 0) | rcode;
  return dnsPacket.encode({
    type: 'response',
    id: query.id ?? 0,
    flags,
    questions: question === undefined ? [] : [question],
    answers,
  });
}

/** A UDP reply too large for 512 bytes goes out empty with TC set, so the client retries on TCP. */
export function fitForUdp(query: dnsPacket.DecodedPacket, rcode: Rcode, records: readonly AddressRecord[]): Buffer {
  const full = response(query, rcode, records);
  return full.length <= MAX_UDP_RESPONSE ? full : response(query, rcode, [], true);
}
