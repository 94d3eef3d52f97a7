// A fatal TLS alert written on a raw socket (RFC 8446 §6): how Sluice tells a TLS client it was
// refused when no HTTP reply can be understood on that connection.
import type { Socket } from 'node:net';
import type { Refusal } from '../respond.js';

export const ALERT_ACCESS_DENIED = 49;
export const ALERT_INTERNAL_ERROR = 80;

export function sendTlsAlert(socket: Socket, description: number): void {
  if (!socket.destroyed && socket.writable) socket.end(Buffer.from([21, 3, 3, 0, 2, 2, description]));
  socket.once('finish', () => socket.destroy());
  socket.resume();
}

/** The TLS listener's refusal medium: access_denied for a policy deny, internal_error otherwise. */
export function refuseWithTlsAlert(socket: Socket, refusal: Refusal): void {
  sendTlsAlert(socket, refusal.verdict === 'deny' ? ALERT_ACCESS_DENIED : ALERT_INTERNAL_ERROR);
}
