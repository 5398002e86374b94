import { promisify } from 'node:util';
import type { Aedes, PublishPacket } from 'aedes';

interface WillPersistence {
  streamWill(brokers: Record<string, number>): AsyncIterable<PublishPacket & { clientId: string; brokerId: string }>;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
}

/**
 * Publishes the wills of clients whose connection died with the previous run
 * of the daemon (power cut, kill -9): they never sent DISCONNECT, so
 * MQTT-3.1.2-8 says their will is due. aedes would do this only after four
 * heartbeat intervals; a single gateway knows at start that those brokers are gone.
 */
export async function publishOrphanedWills(broker: Aedes, persistence: WillPersistence): Promise<number> {
  const publish = promisify(broker.publish).bind(broker) as (packet: PublishPacket) => Promise<void>;
  let published = 0;
  for await (const will of persistence.streamWill({ [broker.id]: Date.now() })) {
    await publish(will);
    await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
    published++;
  }
  return published;
}
