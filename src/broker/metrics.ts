import { Counter, Gauge, type Registry } from 'prom-client';

/** The broker's Prometheus figures. */
export function createBrokerMetrics(registry: Registry, figures: { connections: () => number; bytesIn: () => number; bytesOut: () => number }) {
  const registers = [registry];
  new Gauge({ name: 'outpost_mqtt_connections', help: 'Connected MQTT clients', registers, collect() { this.set(figures.connections()); } });
  new Gauge({ name: 'outpost_mqtt_bytes_received', help: 'Bytes received on MQTT sockets since start', registers, collect() { this.set(figures.bytesIn()); } });
  new Gauge({ name: 'outpost_mqtt_bytes_sent', help: 'Bytes sent on MQTT sockets since start', registers, collect() { this.set(figures.bytesOut()); } });
  return {
    messagesIn: new Counter({ name: 'outpost_mqtt_messages_received_total', help: 'PUBLISH packets received from clients', registers }),
    messagesOut: new Counter({ name: 'outpost_mqtt_messages_sent_total', help: 'PUBLISH packets delivered to clients', registers }),
    dropped: new Counter({ name: 'outpost_mqtt_dropped_total', help: 'Messages dropped, by reason', labelNames: ['reason'] as const, registers }),
    refused: new Counter({ name: 'outpost_mqtt_connections_refused_total', help: 'Connections refused or closed by the broker, by reason', labelNames: ['reason'] as const, registers }),
  };
}

export type BrokerMetrics = ReturnType<typeof createBrokerMetrics>;
