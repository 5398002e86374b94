import type { IncomingMessage } from 'node:http';
import type { AccessKeys } from '../auth/access-keys.js';
import { AuthError, verifyRequest, type VerifiedRequest } from '../auth/sigv4.js';
import type { LocalBus } from '../bus.js';
import { readLimited, refusingUnreadBody } from './body.js';
import type { BodyMemory } from './body-memory.js';

/** Who made a data plane request. */
export type DataPlaneCaller =
  | { kind: 'anonymous' }
  /** One of the daemon's own consumers (functions' AWS SDK clients, the CLI): everything is allowed but publishing on the daemon's own topics. */
  | { kind: 'service'; name: string }
  /** A key bound to a thing: the thing's broker policy decides. */
  | { kind: 'thing'; thing: string };

/** A refusal as the IoT data plane answers it: 401 UnauthorizedException or 403 ForbiddenException. */
export class DataPlaneAuthError extends Error {
  override name = 'DataPlaneAuthError';
  /** `fromBrowser`: an unsigned request a web browser sent (http.auth: none), which names no key. */
  constructor(readonly status: 401 | 403, message: string, readonly fromBrowser = false) {
    super(message);
  }
}

/** Bodies larger than the route's limit: the route answers with its own 413. */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

export interface DataPlaneAuthOptions {
  mode: 'sigv4' | 'none';
  accessKeys: AccessKeys;
  bus: LocalBus;
  /** Shared with the other listeners' bodies held whole. */
  bodyMemory: BodyMemory;
}

/**
 * Authentication and authorisation of the AWS IoT data plane on the HTTP port, as the AWS SDK's
 * IoT Data Plane client signs it (SigV4, service `iotdata`; Lambda's Invoke signs as `lambda`). A signed request is verified whatever
 * the mode; an unsigned one is served only with `http.auth: none`. What a caller may do is asked
 * as MQTT asks it: may it publish on the topic the operation stands for
 * (`$aws/things/{thing}/shadow/update`, the topic of a publish, …)?
 */
export class DataPlaneAuth {
  constructor(private readonly options: DataPlaneAuthOptions) {}

  /** The caller and the verified body (at most `limit` bytes; a larger one is refused); `service`: the one the request is signed for. */
  async authenticate(req: IncomingMessage, limit: number, service: 'iotdata' | 'lambda' = 'iotdata'): Promise<{ caller: DataPlaneCaller; body: Buffer }> {
    let caller: DataPlaneCaller;
    let verified: VerifiedRequest;
    try {
      ({ caller, verified } = this.identify(req, service));
    } catch (error) {
      refusingUnreadBody(req);
      throw error;
    }
    // The signature covers the body's hash: it is only proven once the body has been read.
    const body = await readLimited(req, limit, () => new BodyTooLargeError(), this.options.bodyMemory, verified.body).catch((error) => { throw asAuthError(error); });
    return { caller, body };
  }

  /** Who signed the request (SigV4, before its body is read), or a DataPlaneAuthError. */
  private identify(req: IncomingMessage, service: string): { caller: DataPlaneCaller; verified: VerifiedRequest } {
    const { accessKeys, mode } = this.options;
    let verified;
    try {
      verified = verifyRequest(req, { service, secretOf: (id) => accessKeys.secretOf(id) });
    } catch (error) {
      throw asAuthError(error);
    }
    const { accessKeyId } = verified;
    if (accessKeyId === undefined) {
      if (mode !== 'none') throw new DataPlaneAuthError(401, 'Unauthorized');
      if (sentByBrowser(req)) throw new DataPlaneAuthError(403, 'Forbidden: unsigned requests from a web browser are refused', true);
      return { caller: { kind: 'anonymous' }, verified };
    }
    const identity = accessKeys.dataPlaneIdentity(accessKeyId);
    if (!identity) throw new DataPlaneAuthError(403, 'Forbidden');
    return { caller: 'service' in identity ? { kind: 'service', name: identity.service } : { kind: 'thing', thing: identity.thing }, verified };
  }

  /** Throws 403 Forbidden unless the caller may publish on `topic`. */
  requirePublish(caller: DataPlaneCaller, topic: string): void {
    if (caller.kind === 'thing' && !this.options.bus.thingMayPublish(caller.thing, topic)) throw new DataPlaneAuthError(403, 'Forbidden');
  }
}

/**
 * Whether a web browser sent the request. `http.auth: none` trusts whoever reaches the port, meant
 * as the machine's own programs; a browser on that machine reaches it for any web page it shows,
 * which may POST anywhere without asking (a cross-site "simple" request) or point its own name at
 * 127.0.0.1 and read the answers (DNS rebinding). Browsers mark their requests: Origin on every
 * cross-origin request and every POST, Sec-Fetch-Site on all of them ("none" only for an address
 * the user typed); the AWS SDKs, curl and devices send neither.
 */
function sentByBrowser(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  return req.headers.origin !== undefined || (site !== undefined && site !== 'none');
}

function asAuthError(error: unknown): unknown {
  // A signer's mistakes (bad signature, unknown key, clock skew, malformed header) are the caller not proving who it is.
  return error instanceof AuthError ? new DataPlaneAuthError(401, 'Unauthorized') : error;
}
