import type { Client, PublishPacket } from 'aedes';
import { DROPPED_TOPIC } from './authorize.js';
import { refusesRetained } from '../topic.js';
import type { BrokerMetrics } from '../metrics.js';

type AuthorizePublish = (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) => void;

/**
 * A retained PUBLISH to a reserved topic (refusesRetained) is refused after the policy's check, as
 * one outside the policy is: acknowledged and dropped (MQTT-3.3.5-2), counted as not_authorized.
 * Neither retained nor delivered: AWS IoT does not take it at all.
 */
export function refuseRetainedOnReservedTopics(authorizePublish: AuthorizePublish, metrics: BrokerMetrics): AuthorizePublish {
  return (client, packet, callback) => authorizePublish(client, packet, (error) => {
    // client is null for a will left by the previous run, checked by publishOrphanedWills
    if (!error && client !== null && packet.retain && refusesRetained(packet.topic)) {
      metrics.dropped.not_authorized++;
      packet.topic = DROPPED_TOPIC;
      packet.retain = false;
    }
    callback(error);
  });
}
