import { Counter, Gauge, type Registry } from 'prom-client';

export type DropReason = 'not_authorized' | 'queue_full' | 'retained_limit' | 'slow_consumer';
export type SubscriptionRefusal = 'per_client_limit' | 'broker_limit' | 'filter_too_long';
export type RefusalReason = 'identifier_rejected' | 'server_unavailable' | 'bad_credentials' | 'not_authorized' | 'max_connections' | 'packet_too_large' | 'connect_budget' | 'receive_budget' | 'origin_not_allowed' | 'persistent_session_limit' | 'awaiting_rel_limit' | 'storage_failed' | 'slow_consumer';

/**
 * The broker's figures. The per-message ones are plain numbers on the hot
 * path, read into Prometheus counters only when /metrics is scraped.
 */
export class BrokerMetrics {
  messagesIn = 0;
  messagesOut = 0;
  readonly dropped: Record<DropReason, number> = { not_authorized: 0, queue_full: 0, retained_limit: 0, slow_consumer: 0 };
  readonly refusedSubscriptions: Record<SubscriptionRefusal, number> = { per_client_limit: 0, broker_limit: 0, filter_too_long: 0 };
  readonly refused: Record<RefusalReason, number> = { identifier_rejected: 0, server_unavailable: 0, bad_credentials: 0, not_authorized: 0, max_connections: 0, packet_too_large: 0, connect_budget: 0, receive_budget: 0, origin_not_allowed: 0, persistent_session_limit: 0, awaiting_rel_limit: 0, storage_failed: 0, slow_consumer: 0 };

  constructor(registry: Registry, live: { connections: () => number; bytesIn: () => number; bytesOut: () => number; backlogBytes: () => number }) {
    const registers = [registry];
    const metrics = this;
    new Gauge({ name: 'outpost_mqtt_connections', help: 'Connected MQTT clients', registers, collect() { this.set(live.connections()); } });
    new Gauge({
      name: 'outpost_mqtt_backlog_bytes', help: 'Bytes written to MQTT clients that their sockets have not taken yet (clients not keeping up), all together',
      registers, collect() { this.set(live.backlogBytes()); },
    });
    new Counter({ name: 'outpost_mqtt_bytes_received_total', help: 'Bytes received on MQTT sockets', registers, collect() { setCounter(this, live.bytesIn()); } });
    new Counter({ name: 'outpost_mqtt_bytes_sent_total', help: 'Bytes sent on MQTT sockets', registers, collect() { setCounter(this, live.bytesOut()); } });
    new Counter({ name: 'outpost_mqtt_messages_received_total', help: 'PUBLISH packets received from clients', registers, collect() { setCounter(this, metrics.messagesIn); } });
    new Counter({ name: 'outpost_mqtt_messages_sent_total', help: 'PUBLISH packets delivered to clients', registers, collect() { setCounter(this, metrics.messagesOut); } });
    new Counter({
      name: 'outpost_mqtt_dropped_total', help: 'Messages dropped, by reason', labelNames: ['reason'] as const, registers,
      collect() { for (const [reason, count] of Object.entries(metrics.dropped)) setCounter(this, count, { reason }); },
    });
    new Counter({
      name: 'outpost_mqtt_connections_refused_total', help: 'Connections refused or closed by the broker, by reason', labelNames: ['reason'] as const, registers,
      collect() { for (const [reason, count] of Object.entries(metrics.refused)) setCounter(this, count, { reason }); },
    });
    new Counter({
      name: 'outpost_mqtt_subscriptions_refused_total', help: 'Filters answered SUBACK 0x80 for a subscription limit, by limit', labelNames: ['reason'] as const, registers,
      collect() { for (const [reason, count] of Object.entries(metrics.refusedSubscriptions)) setCounter(this, count, { reason }); },
    });
  }
}

function setCounter<T extends string>(counter: Counter<T>, value: number, labels?: Partial<Record<T, string>>): void {
  if (labels) {
    counter.remove(labels);
    counter.inc(labels, value);
  } else {
    counter.reset();
    counter.inc(value);
  }
}
