import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, iotshadow, mqtt } from 'aws-iot-device-sdk-v2';
import { TestDaemon } from './helpers/daemon.js';
import { addThing } from './helpers/mqtt.js';

const { IotShadowClient } = iotshadow;
const QOS = mqtt.QoS.AtLeastOnce;

/** Resolves with the first value a subscription callback delivers, bounded by a timeout. */
function first<T>(subscribe: (deliver: (error: unknown, value?: T) => void) => Promise<unknown>, timeoutMs = 5000): { subscribed: Promise<unknown>; value: Promise<T> } {
  let deliver!: (error: unknown, value?: T) => void;
  const value = new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), timeoutMs);
    deliver = (error, delivered) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(delivered as T);
    };
  });
  return { subscribed: subscribe(deliver), value };
}

describe('the AWS IoT Device SDK v2 shadow client against outpostd (MQTT 3.1.1 on loopback)', () => {
  let daemon: TestDaemon;
  let connection: mqtt.MqttClientConnection;
  let shadow: iotshadow.IotShadowClient;

  beforeAll(async () => {
    daemon = await TestDaemon.start({ config: {} });
    await addThing(daemon.socket, 'sdk-thing', 'sdk-secret');
    connection = new mqtt.MqttClient().new_connection({
      client_id: 'sdk-thing', host_name: '127.0.0.1', port: daemon.port('mqtt'), clean_session: true, keep_alive: 30,
      username: 'sdk-thing', password: 'sdk-secret', use_websocket: false,
      socket_options: new io.SocketOptions(io.SocketType.STREAM, io.SocketDomain.IPV4, 5000),
      // The SDK appends `?SDK=…&Metadata=…` to the username, which AWS IoT strips and the broker does not (yet).
      disable_metrics: true,
    });
    await connection.connect();
    shadow = new IotShadowClient(connection);
  });

  afterAll(async () => {
    await connection?.disconnect().catch(() => undefined);
    expect(await daemon?.stop()).toBe(0);
    await daemon.cleanup();
  });

  for (const shadowName of [undefined, 'sdk-named']) {
    const label = shadowName ? 'a named shadow' : 'the classic shadow';
    const thingName = 'sdk-thing';

    it(`updates, gets, receives deltas for and deletes ${label}`, async () => {
      const named = shadowName !== undefined;
      const updateAccepted = first<iotshadow.model.UpdateShadowResponse>((cb) => named
        ? shadow.subscribeToUpdateNamedShadowAccepted({ thingName, shadowName }, QOS, (e, r) => cb(e, r))
        : shadow.subscribeToUpdateShadowAccepted({ thingName }, QOS, (e, r) => cb(e, r)));
      const delta = first<iotshadow.model.ShadowDeltaUpdatedEvent>((cb) => named
        ? shadow.subscribeToNamedShadowDeltaUpdatedEvents({ thingName, shadowName }, QOS, (e, r) => cb(e, r))
        : shadow.subscribeToShadowDeltaUpdatedEvents({ thingName }, QOS, (e, r) => cb(e, r)));
      await Promise.all([updateAccepted.subscribed, delta.subscribed]);
      const state = { desired: { color: 'green' }, reported: { color: 'red' } };
      await (named
        ? shadow.publishUpdateNamedShadow({ thingName, shadowName, state, clientToken: 'sdk-1' }, QOS)
        : shadow.publishUpdateShadow({ thingName, state, clientToken: 'sdk-1' }, QOS));
      const accepted = await updateAccepted.value;
      expect(accepted).toMatchObject({ clientToken: 'sdk-1', version: 1, state });
      expect((await delta.value)).toMatchObject({ state: { color: 'green' }, version: 1 });

      const getAccepted = first<iotshadow.model.GetShadowResponse>((cb) => named
        ? shadow.subscribeToGetNamedShadowAccepted({ thingName, shadowName }, QOS, (e, r) => cb(e, r))
        : shadow.subscribeToGetShadowAccepted({ thingName }, QOS, (e, r) => cb(e, r)));
      await getAccepted.subscribed;
      await (named ? shadow.publishGetNamedShadow({ thingName, shadowName, clientToken: 'sdk-2' }, QOS) : shadow.publishGetShadow({ thingName, clientToken: 'sdk-2' }, QOS));
      expect(await getAccepted.value).toMatchObject({ clientToken: 'sdk-2', version: 1, state: { ...state, delta: { color: 'green' } } });

      const deleteAccepted = first<iotshadow.model.DeleteShadowResponse>((cb) => named
        ? shadow.subscribeToDeleteNamedShadowAccepted({ thingName, shadowName }, QOS, (e, r) => cb(e, r))
        : shadow.subscribeToDeleteShadowAccepted({ thingName }, QOS, (e, r) => cb(e, r)));
      await deleteAccepted.subscribed;
      await (named ? shadow.publishDeleteNamedShadow({ thingName, shadowName, clientToken: 'sdk-3' }, QOS) : shadow.publishDeleteShadow({ thingName, clientToken: 'sdk-3' }, QOS));
      expect(await deleteAccepted.value).toMatchObject({ clientToken: 'sdk-3', version: 1 });

      const getRejected = first<iotshadow.model.ErrorResponse>((cb) => named
        ? shadow.subscribeToGetNamedShadowRejected({ thingName, shadowName }, QOS, (e, r) => cb(e, r))
        : shadow.subscribeToGetShadowRejected({ thingName }, QOS, (e, r) => cb(e, r)));
      await getRejected.subscribed;
      await (named ? shadow.publishGetNamedShadow({ thingName, shadowName, clientToken: 'sdk-4' }, QOS) : shadow.publishGetShadow({ thingName, clientToken: 'sdk-4' }, QOS));
      expect(await getRejected.value).toMatchObject({ clientToken: 'sdk-4', code: 404 });
    });
  }
});
