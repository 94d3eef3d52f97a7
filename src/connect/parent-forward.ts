// Plain-HTTP requests through a parent proxy, the way proxy clients send them: absolute-form
// (RFC 9112 §3.2.2) with Sluice's credentials, and the parent's own 407 kept from the agent.
import type { Dispatcher } from 'undici';
import { formatAuthority, type Destination } from '../destination.js';
import { SluiceError } from '../errors.js';
import type { ParentProxy } from './parent-proxy.js';

type Headers = NonNullable<Dispatcher.DispatchOptions['headers']> | null;

function withAuthorization(headers: Headers | undefined, authorization: string | undefined): Headers {
  if (authorization === undefined) return headers ?? null;
  if (headers === undefined || headers === null) return ['proxy-authorization', authorization];
  if (Array.isArray(headers)) return [...(headers as string[]), 'proxy-authorization', authorization];
  if (Symbol.iterator in headers) return [...(headers as Iterable<[string, string | string[] | undefined]>), ['proxy-authorization', authorization]];
  return { ...headers, 'proxy-authorization': authorization };
}

/**
 * A 407 from the parent means Sluice's credentials are wrong; passed on, the agent would take it
 * for Sluice asking for its own token. The request fails with PARENT_PROXY_AUTH instead.
 */
function refusingParentAuth(handler: Dispatcher.DispatchHandler, proxy: ParentProxy): Dispatcher.DispatchHandler {
  return {
    onRequestStart: (controller, context: unknown) => handler.onRequestStart?.(controller, context),
    onRequestUpgrade: (controller, statusCode, headers, socket) => handler.onRequestUpgrade?.(controller, statusCode, headers, socket),
    onResponseStart: (controller, statusCode, headers, statusMessage) => {
      if (statusCode === 407) controller.abort(new SluiceError('PARENT_PROXY_AUTH', `${proxy.label} answered 407`));
      else handler.onResponseStart?.(controller, statusCode, headers, statusMessage);
    },
    onResponseData: (controller, chunk) => handler.onResponseData?.(controller, chunk),
    onResponseEnd: (controller, trailers) => handler.onResponseEnd?.(controller, trailers),
    onResponseError: (controller, error) => handler.onResponseError?.(controller, error),
  };
}

/** Composed onto a pool connected to the parent: every request it carries is for `destination`. */
export function absoluteFormVia(destination: Destination, proxy: ParentProxy): Dispatcher.DispatcherComposeInterceptor {
  const origin = `http://${formatAuthority(destination)}`;
  return (dispatch) => (options, handler) =>
    dispatch({ ...options, path: `${origin}${options.path}`, headers: withAuthorization(options.headers, proxy.authorization()) }, refusingParentAuth(handler, proxy));
}
