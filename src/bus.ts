/** A message on the local MQTT bus, as in-process services see it. */
export interface BusMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  retain: boolean;
  /** The MQTT client that published it; undefined for the daemon's own publishes. */
  clientId?: string;
}

/**
 * The local MQTT bus: how services meet. Publishes reach devices and other
 * services like any client's would (policies apply to devices, not to the
 * daemon); subscriptions see every matching message, `$` topics included when
 * the filter names them.
 */
export interface LocalBus {
  publish(message: { topic: string; payload: Buffer | string; qos?: 0 | 1 | 2; retain?: boolean }): Promise<void>;
  /**
   * Resolves once subscribed, with a function that unsubscribes. With `durable`, the publisher's
   * acknowledgement (a device's PUBACK) waits until the handler's promise settles, so a handler
   * that commits the message before resolving makes the PUBACK mean "on disk here too"; a
   * rejected promise withholds the PUBACK (the publisher's connection is closed and it resends).
   */
  subscribe(filter: string, handler: (message: BusMessage) => void | Promise<void>, options?: { durable?: boolean }): Promise<() => Promise<void>>;
  /**
   * Whether a registered thing's policy (its own, else the default) lets it publish on `topic`,
   * `${clientid}` bound to the thing's name: how requests made for a thing outside MQTT (the
   * IoT data plane over HTTP) are held to the same policy.
   */
  thingMayPublish(thing: string, topic: string): boolean;
  /**
   * Whether a publish on `topic` would reach anyone now: a connected client, a persistent session
   * (connected or not) or one of the daemon's own subscriptions. It may say true when unsure; a
   * publisher uses a false to skip building and publishing what nobody would receive.
   */
  hasSubscribers(topic: string): boolean;
  /**
   * The largest MQTT packet the broker takes from its clients (mqtt.maxPacketSize): what the daemon
   * publishes for them (a function's output) beyond it is not published, nor built.
   */
  readonly maxPacketBytes: number;
}
