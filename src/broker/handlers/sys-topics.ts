import type { Aedes } from 'aedes';
import { VERSION } from '../../version.js';

/** What the broker's `$SYS/broker/…` topics show, read at each interval. */
export interface SystemFigures {
  connectedClients(): number;
  messagesReceived(): number;
  messagesSent(): number;
  messagesDropped(): number;
  bytesReceived(): number;
  bytesSent(): number;
  retainedMessages(): number;
}

/**
 * Mosquitto's `$SYS/broker/…` topics, which dashboards and `mosquitto_sub -t '$SYS/#'` read: every
 * `intervalMs` (mqtt.sysIntervalSeconds, as Mosquitto's sys_interval) the figures that changed,
 * retained (in memory only: see the persistence's keepSystemRetained), at QoS 0. Only clients whose
 * policy names `$SYS/…` may subscribe; filters starting with a wildcard never match them (MQTT-4.7.2-1).
 */
export class SystemTopics {
  private timer: NodeJS.Timeout | undefined;
  private readonly published = new Map<string, string>();
  private maximumClients = 0;
  private readonly startedAt = performance.now();

  constructor(private readonly broker: Aedes, private readonly figures: SystemFigures, private readonly intervalMs: number) {}

  start(): void {
    if (this.intervalMs === 0) return;
    this.publish();
    this.timer = setInterval(() => this.publish(), this.intervalMs).unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private publish(): void {
    const connected = this.figures.connectedClients();
    this.maximumClients = Math.max(this.maximumClients, connected);
    const values: Record<string, number | string> = {
      version: `outpostd ${VERSION}`,
      uptime: `${Math.floor((performance.now() - this.startedAt) / 1000)} seconds`,
      'clients/connected': connected,
      'clients/maximum': this.maximumClients,
      'publish/messages/received': this.figures.messagesReceived(),
      'publish/messages/sent': this.figures.messagesSent(),
      'publish/messages/dropped': this.figures.messagesDropped(),
      'bytes/received': this.figures.bytesReceived(),
      'bytes/sent': this.figures.bytesSent(),
      'retained messages/count': this.figures.retainedMessages(),
    };
    for (const [name, value] of Object.entries(values)) {
      const topic = `$SYS/broker/${name}`;
      const payload = String(value);
      if (this.published.get(topic) === payload) continue;
      this.published.set(topic, payload);
      this.broker.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: true, dup: false }, () => undefined);
    }
  }
}
