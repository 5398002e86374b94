import type { IncomingMessage } from 'node:http';

/**
 * Whether a WebSocket upgrade may go on, by the page that asks it. A browser sends the page's
 * origin with every upgrade (RFC 6455 §4.1, §10.2) and lets any page open a WebSocket anywhere,
 * the gateway on loopback or the LAN included: without this check a page the user visits could
 * talk MQTT as an anonymous client, no CORS in the way. Devices and other programs send no Origin.
 */
export function originAllowed(request: IncomingMessage, allowedOrigins: readonly string[]): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  // a browser serializes it in lower case, the default port left out (RFC 6454 §6.1), as the config's are kept
  return allowedOrigins.includes('*') || allowedOrigins.includes(origin.toLowerCase());
}
