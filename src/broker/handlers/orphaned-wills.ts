import { promisify } from 'node:util';
import type { Aedes, PublishPacket } from 'aedes';
import { bindPolicy, clientIdAllowed, mayPublish } from '../policy.js';
import { isDaemonOnlyTopic, refusesRetained } from '../topic.js';
import type { ThingRegistry } from '../things/registry.js';
import type { Config } from '../../config/schema.js';

/** `thing`: the thing its client logged in as, '' for an anonymous client. */
type OrphanedWill = PublishPacket & { clientId: string; brokerId: string; thing?: string };

interface WillPersistence {
  streamWill(brokers: Record<string, number>): AsyncIterable<OrphanedWill>;
  delWill(client: { id: string; brokerId: string }): Promise<unknown>;
}

interface WillCheckDeps {
  things: Pick<ThingRegistry, 'get' | 'clientIdOwner'>;
  mqtt: Pick<Config['mqtt'], 'allowAnonymous' | 'anonymousPolicy' | 'defaultPolicy'>;
}

/**
 * Publishes the wills of clients whose connection died with the previous run
 * of the daemon (power cut, kill -9): they never sent DISCONNECT, so
 * MQTT-3.1.2-8 says their will is due. aedes would do this only after four
 * heartbeat intervals; a single gateway knows at start that those brokers are gone.
 *
 * A will was authorised at CONNECT, under the configuration of that run: one
 * its client could not leave now (its thing removed or its policy changed,
 * anonymous access turned off) is dropped instead.
 */
export async function publishOrphanedWills(broker: Aedes, persistence: WillPersistence, deps: WillCheckDeps): Promise<{ published: number; dropped: string[] }> {
  const publish = promisify(broker.publish).bind(broker) as (packet: PublishPacket) => Promise<void>;
  const outcome = { published: 0, dropped: [] as string[] };
  for await (const will of persistence.streamWill({ [broker.id]: Date.now() })) {
    if (mayStillLeave(deps, will)) {
      await publish(will);
      outcome.published++;
    } else {
      outcome.dropped.push(will.clientId);
    }
    await persistence.delWill({ id: will.clientId, brokerId: will.brokerId });
  }
  return outcome;
}

/** Whether the will's client could connect with this will under the configuration now (see bindSession, refuseUnauthorizedWill). */
function mayStillLeave({ things, mqtt }: WillCheckDeps, will: OrphanedWill): boolean {
  if (isDaemonOnlyTopic(will.topic) || (will.retain && refusesRetained(will.topic))) return false;
  // '' for an anonymous client's; none for one stored before its thing was, whose client id tells
  // (an id a thing owns is never an anonymous client's, see bindSession)
  const thingName = will.thing === undefined ? things.clientIdOwner(will.clientId) : will.thing || undefined;
  if (thingName === undefined) return mqtt.allowAnonymous && mayPublish(bindPolicy(mqtt.anonymousPolicy, null, will.clientId), will.topic);
  const thing = things.get(thingName);
  if (thing === undefined) return false;
  const policy = thing.policy ?? mqtt.defaultPolicy;
  return clientIdAllowed(policy.clientIds, thingName, will.clientId) && mayPublish(bindPolicy(policy, thingName, will.clientId), will.topic);
}
