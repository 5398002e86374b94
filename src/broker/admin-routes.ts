import { AdminError, objectBody, optionalString, type AdminRouter } from '../admin/router.js';
import type { AccessKeys } from '../auth/access-keys.js';
import type { BrokerService } from './broker-service.js';
import { checkThingName, ThingError } from './things/registry.js';

/** Things and connected clients on the admin API. */
export function registerBrokerAdminRoutes(router: AdminRouter, broker: BrokerService, accessKeys: AccessKeys): void {
  const things = () => broker.things;

  router.add('GET', '/v1/things', () => ({ body: { things: things().list() } }));

  router.add('GET', '/v1/things/:name', ({ params }) => mapThingErrors(async () => {
    const thing = things().get(checkThingName(params.name));
    if (!thing) throw new AdminError(404, `no such thing: ${params.name}`);
    return { body: thing };
  }));

  router.add('POST', '/v1/things', ({ body }) => mapThingErrors(async () => {
    const request = objectBody(body);
    if (typeof request.name !== 'string') throw new AdminError(400, 'expected "name" (string)');
    const password = optionalString(request, 'password');
    const certificatePem = optionalString(request, 'certificatePem');
    const fingerprint = optionalString(request, 'fingerprint');
    if (password === undefined && certificatePem === undefined && fingerprint === undefined) {
      throw new AdminError(400, 'a thing needs a password or a certificate');
    }
    // the registry would take the certificate's fingerprint and drop the one given, unread
    if (certificatePem !== undefined && fingerprint !== undefined) throw new AdminError(400, 'give a certificate or its fingerprint, not both');
    if (password !== undefined && password.length === 0) throw new AdminError(400, 'the password is empty');
    if (password !== undefined) checkPasswordFitsConnect(password);
    return { status: 201, body: await things().add(request.name, { password, certificatePem, fingerprint }) };
  }));

  router.add('DELETE', '/v1/things/:name', ({ params }) => mapThingErrors(async () => {
    // which client ids were the thing's can only be told while it is registered
    const sessions = broker.storedSessionsOf(checkThingName(params.name));
    await things().remove(params.name);
    broker.disconnectThing(params.name);
    await broker.endSessions(sessions);
    const accessKeysDeleted = await accessKeys.removeBoundTo(params.name);
    return { body: { deleted: params.name, accessKeysDeleted, persistentSessionsDeleted: sessions } };
  }));

  router.add('PUT', '/v1/things/:name/password', ({ params, body }) => mapThingErrors(async () => {
    checkThingName(params.name);
    const password = optionalString(objectBody(body), 'password');
    if (!password) throw new AdminError(400, 'expected "password" (non-empty string)');
    checkPasswordFitsConnect(password);
    await things().setPassword(params.name, password);
    // a certificate login does not depend on the password
    broker.disconnectThing(params.name, 'password');
    return { body: { updated: params.name } };
  }));

  router.add('PUT', '/v1/things/:name/policy', ({ params, body }) => mapThingErrors(async () => {
    checkThingName(params.name);
    const request = objectBody(body);
    if (!('policy' in request)) throw new AdminError(400, 'expected "policy" (object, or null for the default policy)');
    if (!things().get(params.name)) throw new AdminError(404, `no such thing: ${params.name}`);
    let thing;
    if (request.policy === null) {
      thing = await things().setPolicy(params.name, () => null);
    } else {
      if (typeof request.policy !== 'object' || Array.isArray(request.policy)) throw new AdminError(400, 'expected "policy" to be an object or null');
      // Lists the request leaves out keep their current values (own policy, else the default), as they are when written.
      const given = Object.fromEntries(Object.entries(request.policy as object).filter(([, value]) => value !== undefined));
      thing = await things().setPolicy(params.name, (current) => ({ ...(current ?? broker.defaultPolicy), ...given }));
    }
    // policies are bound at CONNECT: the thing's connections reconnect under the new one
    broker.disconnectThing(params.name);
    return { body: thing };
  }));

  router.add('GET', '/v1/clients', () => ({ body: { clients: broker.clients() } }));
}

/** MQTT 3.1.3.5: a CONNECT carries at most 65535 bytes of password; a longer one could never log in. */
const MAX_PASSWORD_BYTES = 65_535;

function checkPasswordFitsConnect(password: string): void {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new AdminError(400, `the password is over ${MAX_PASSWORD_BYTES} bytes, more than an MQTT CONNECT can carry`);
}

async function mapThingErrors<T>(action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ThingError) throw new AdminError(error.status, error.message);
    throw error;
  }
}
