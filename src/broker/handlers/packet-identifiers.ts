import type { Client } from 'aedes';

interface ParserWithClient {
  emit(event: string, ...args: unknown[]): boolean;
}

interface IdentifyingClient {
  clean: boolean;
  id: string;
  _parser: ParserWithClient;
  /** aedes' next packet identifier: read, then set to the one after, by each packet that takes one (QoSPacket). */
  _nextId: number;
}

interface InFlightStore {
  /** The packet identifiers of the session's queued packets sent and not yet acknowledged (they survive a reconnect). */
  inFlightIds(clientId: string): number[];
}

const MAX_PACKET_ID = 65535;

/**
 * MQTT-2.3.1-2: a new PUBLISH takes an identifier not in use. aedes counts identifiers up from a
 * random start on each connection, so the identifier of a persistent session's message sent before a
 * reconnect and not acknowledged (sent again with it) was given to a new message too: the client's
 * PUBACK for the new one removed the old one from the session's queue (the first with that
 * identifier), and the old message, acknowledged to its publisher, was lost. Here the count passes
 * over the identifiers of the session's queued messages in flight when the connection first takes
 * one, each until its PUBACK or PUBCOMP: as many as the session's bounded queue holds. (A message of
 * this connection still unacknowledged when its count comes round again, 65,535 messages later, is
 * not looked for: remembering every identifier given would cost a client that never acknowledges up
 * to a few MB.)
 */
export function skipIdentifiersInFlight(client: Client, store: InFlightStore): void {
  const target = client as unknown as IdentifyingClient;
  let next = target._nextId;
  let carried: Set<number> | undefined;
  Object.defineProperty(target, '_nextId', {
    configurable: true,
    get: () => {
      carried ??= new Set(target.clean ? [] : store.inFlightIds(target.id));
      // bounded: a queue holding every identifier leaves the count as aedes' would go
      for (let tries = 0; carried.size > 0 && carried.has(next) && tries < MAX_PACKET_ID; tries++) next = next >= MAX_PACKET_ID ? 1 : next + 1;
      return next;
    },
    set: (value: number) => { next = value; },
  });
  const parser = target._parser;
  const emit = parser.emit;
  parser.emit = function (event: string, ...args: unknown[]) {
    const packet = args[0] as { cmd?: string; messageId?: number } | undefined;
    if (event === 'packet' && (packet?.cmd === 'puback' || packet?.cmd === 'pubcomp') && packet.messageId !== undefined) carried?.delete(packet.messageId);
    return emit.call(this, event, ...args);
  };
}
