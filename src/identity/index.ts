// The identity stage's public surface: who is asking, established from what the agent cannot forge.
export type { Agent, IdentitySource, Mode } from './agent.js';
export { ANONYMOUS_AGENT_NAME } from './agent.js';
export { IdentityResolver, type ClientConnection } from './identify.js';
export { readProxyCredential, type PresentedCredential } from './proxy-credentials.js';
