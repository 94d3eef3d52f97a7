// Who is asking: the agent a connection was attributed to, and how that was established. A leaf:
// identity makes it, policy and ingress read it, so it belongs to none of them.

export type Mode = 'strict' | 'learn';

/** How the identity was established, strongest first; `anonymous` when nothing matched. */
export type IdentitySource = 'token' | 'uid' | 'cidr' | 'anonymous';

export interface Agent {
  readonly name: string;
  readonly groups: readonly string[];
  readonly mode: Mode;
  readonly via: IdentitySource;
}

export const ANONYMOUS_AGENT_NAME = 'anonymous';
