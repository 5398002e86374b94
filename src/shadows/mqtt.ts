import type { Logger } from 'pino';
import type { BusMessage, LocalBus } from '../bus.js';
import { clientTokenOf, decodePayload, type JsonObject, type ShadowLimits, type UpdateResult } from './document.js';
import { asShadowError, errorDocument, errors } from './errors.js';
import { CLASSIC } from './store.js';
import type { OperationContext, ShadowAddress } from './operations/context.js';
import { getShadow } from './operations/get.js';
import { updateShadow } from './operations/update.js';
import { deleteShadow } from './operations/delete.js';

type Operation = 'get' | 'update' | 'delete';

/** The reserved request topics: `$aws/things/{thing}/shadow[/name/{shadow}]/{get|update|delete}`. */
const REQUEST_FILTERS = ['$aws/things/+/shadow/+', '$aws/things/+/shadow/name/+/+'];

export interface ShadowRequestTopic extends ShadowAddress {
  operation: Operation;
}

export function parseRequestTopic(topic: string): ShadowRequestTopic | undefined {
  const levels = topic.split('/');
  if (levels[0] !== '$aws' || levels[1] !== 'things' || levels[3] !== 'shadow') return undefined;
  const [operation, name] = levels.length === 5 ? [levels[4], CLASSIC] : levels.length === 7 && levels[4] === 'name' ? [levels[6], levels[5]] : [];
  if (operation !== 'get' && operation !== 'update' && operation !== 'delete') return undefined;
  // `name//update` names no shadow: not the classic one, which a policy granting `name/+/update` would open
  if (levels.length === 7 && name === CLASSIC) return undefined;
  return { thing: levels[2], name: name!, operation };
}

export function responseTopic(address: ShadowAddress, operation: Operation, suffix: 'accepted' | 'rejected' | 'delta' | 'documents'): string {
  const shadow = address.name === CLASSIC ? 'shadow' : `shadow/name/${address.name}`;
  return `$aws/things/${address.thing}/${shadow}/${operation}/${suffix}`;
}

/**
 * Publishes what an accepted update produces, whoever asked (MQTT, HTTP or the CLI): `/accepted`,
 * `/delta` when desired and reported differ, and `/documents`, which the daemon's own services
 * subscribe to on the bus to react to changes without polling. All three are handed to the bus in
 * the same turn rather than each after the previous one's delivery: they pass the broker together
 * and reach a subscriber in one write.
 */
export async function publishUpdate(bus: LocalBus, address: ShadowAddress, result: UpdateResult): Promise<void> {
  await Promise.all([
    publish(bus, responseTopic(address, 'update', 'accepted'), result.accepted),
    result.delta && publish(bus, responseTopic(address, 'update', 'delta'), result.delta),
    publish(bus, responseTopic(address, 'update', 'documents'), result.documents),
  ]);
}

/** AWS publishes the delete's `/accepted` for REST deletes too. */
export function publishDeleted(bus: LocalBus, address: ShadowAddress, document: JsonObject): Promise<void> {
  return publish(bus, responseTopic(address, 'delete', 'accepted'), document);
}

/**
 * AWS: responses go to the subscribers of their topics, so a topic nobody subscribes to (often
 * `/update/documents` and `/update/delta`) costs nothing. QoS 1: a device with a persistent
 * session gets the responses and deltas it missed while offline.
 */
function publish(bus: LocalBus, topic: string, document: string | JsonObject | Record<string, unknown>): Promise<void> {
  if (!bus.hasSubscribers(topic)) return Promise.resolve();
  return bus.publish({ topic, payload: typeof document === 'string' ? document : JSON.stringify(document), qos: 1 });
}

/**
 * A request's content where it can be read, else `{}`: for a clientToken to echo from a request whose
 * content is otherwise ignored (AWS /delete: "The content of the message is ignored") or never served (429).
 */
function decodedOrEmpty(payload: Buffer, limits: ShadowLimits): unknown {
  try {
    return decodePayload(payload, limits);
  } catch {
    return {};
  }
}

/**
 * Shadow requests from the local bus. Each is answered on `/accepted` or `/rejected` of its own
 * topic, echoing the clientToken; an accepted change is answered only after its commit.
 */
export class ShadowMqtt {
  /** Requests not answered yet, per client id; bounded by the connected clients and emptied as they are answered. */
  private readonly inFlight = new Map<string, number>();
  private unsubscribers: Array<() => Promise<void>> = [];
  /** Requests whose answers are not published yet, which `stop()` waits for. */
  private pending = 0;
  private idle: Array<() => void> = [];

  constructor(
    private readonly bus: LocalBus,
    private readonly context: OperationContext,
    private readonly maxInFlightPerClient: number,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    for (const filter of REQUEST_FILTERS) this.unsubscribers.push(await this.bus.subscribe(filter, (message) => this.handle(message)));
  }

  /** Stops taking requests and waits for those in flight to be answered. */
  async stop(): Promise<void> {
    const unsubscribers = this.unsubscribers;
    this.unsubscribers = [];
    await Promise.all(unsubscribers.map((unsubscribe) => unsubscribe().catch(() => undefined)));
    if (this.pending > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  inFlightRequests(): number {
    return this.pending;
  }

  private async handle(message: BusMessage): Promise<void> {
    const request = parseRequestTopic(message.topic);
    if (!request) return;
    const client = message.clientId;
    // AWS: more than 10 in-flight requests on one connection are refused with 429; the error document
    // carries the clientToken of any request sent as valid JSON, so the client learns which one it was.
    if (client !== undefined && (this.inFlight.get(client) ?? 0) >= this.maxInFlightPerClient) {
      await this.reject(request, errors.tooManyInFlight(), clientTokenOf(decodedOrEmpty(message.payload, this.context.limits), this.context.limits));
      return;
    }
    this.enter(client);
    try {
      // The client's slot frees as its answer is handed to the bus, before the broker delivers it:
      // a device sending its next request the moment it reads the answer must not find it taken.
      const { published } = await this.serve(request, message.payload).finally(() => this.answered(client));
      await published;
    } finally {
      this.finished();
    }
  }

  /** Works out the answer and hands it to the bus; `published` settles once the bus has taken it. */
  private async serve(request: ShadowRequestTopic, payload: Buffer): Promise<{ published: Promise<void> }> {
    let clientToken: string | undefined;
    let answer: () => Promise<void>;
    try {
      const body = request.operation === 'delete' ? decodedOrEmpty(payload, this.context.limits) : decodePayload(payload, this.context.limits);
      clientToken = clientTokenOf(body, this.context.limits);
      answer = await this.perform(request, body);
    } catch (error) {
      const shadowError = asShadowError(error);
      if (shadowError.code === 500) this.log.error({ err: error, topic: requestTopic(request) }, 'shadow request failed');
      return { published: this.reject(request, shadowError, clientToken ?? shadowError.clientToken) };
    }
    return { published: answer().catch((error) => this.log.warn({ err: error, topic: requestTopic(request) }, 'could not publish a shadow response')) };
  }

  /** Runs the operation; resolves with how to answer once it is committed. */
  private async perform(request: ShadowRequestTopic, body: unknown): Promise<() => Promise<void>> {
    switch (request.operation) {
      case 'get': {
        const document = await getShadow(request, body, this.context);
        return () => publish(this.bus, responseTopic(request, 'get', 'accepted'), document);
      }
      case 'update': {
        const { published } = await updateShadow(request, body, this.context);
        return () => published;
      }
      case 'delete': {
        const { published } = await deleteShadow(request, body, this.context);
        return () => published;
      }
    }
  }

  private reject(request: ShadowRequestTopic, error: ReturnType<typeof asShadowError>, clientToken: string | undefined): Promise<void> {
    const document = errorDocument(error, this.context.now(), clientToken);
    return publish(this.bus, responseTopic(request, request.operation, 'rejected'), document)
      .catch((publishError) => this.log.warn({ err: publishError }, 'could not publish a shadow rejection'));
  }

  private enter(client: string | undefined): void {
    this.pending++;
    if (client !== undefined) this.inFlight.set(client, (this.inFlight.get(client) ?? 0) + 1);
  }

  private answered(client: string | undefined): void {
    if (client === undefined) return;
    const left = (this.inFlight.get(client) ?? 1) - 1;
    if (left === 0) this.inFlight.delete(client);
    else this.inFlight.set(client, left);
  }

  /** The request's answers are published (or failed): `stop()` may stop waiting for it. */
  private finished(): void {
    this.pending--;
    if (this.pending === 0) for (const wake of this.idle.splice(0)) wake();
  }
}

export function requestTopic(request: ShadowRequestTopic): string {
  const shadow = request.name === CLASSIC ? 'shadow' : `shadow/name/${request.name}`;
  return `$aws/things/${request.thing}/${shadow}/${request.operation}`;
}
