import { AdminError, objectBody, optionalString, type AdminRouter } from '../admin/router.js';
import type { AccessKeyGrant, AccessKeys } from './access-keys.js';

// AWS IoT thing names.
const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
// S3's bucket naming rules, or '*' for every bucket.
const GRANTABLE_BUCKET = /^(\*|[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])$/;

const MAX_DESCRIPTION_LENGTH = 1000;

/** `/v1/s3/keys` for `outpost s3 keys`; `isThing` tells whether a thing is registered. */
export function registerAccessKeyAdminRoutes(admin: AdminRouter, keys: AccessKeys, isThing: (name: string) => boolean): void {
  admin.add('GET', '/v1/s3/keys', () => ({ body: { keys: keys.list() } }));

  admin.add('POST', '/v1/s3/keys', async ({ body }) => {
    const request = objectBody(body);
    const thing = optionalString(request, 'thing');
    if (thing !== undefined && !THING_NAME.test(thing)) throw new AdminError(400, 'thing: expected a thing name (1-128 characters of a-z A-Z 0-9 : _ -)');
    // A key bound to a name nobody registered would serve whichever thing is later added under it,
    // and outlive `things rm` (which deletes the keys of a thing it removes, not of a name).
    if (thing !== undefined && !isThing(thing)) throw new AdminError(404, `no such thing: ${thing}`);
    const description = optionalString(request, 'description');
    // every key is held in memory and listed by `s3 keys ls`: IAM's own descriptions stop at 1000
    if (description !== undefined && description.length > MAX_DESCRIPTION_LENGTH) {
      throw new AdminError(400, `description: at most ${MAX_DESCRIPTION_LENGTH} characters`);
    }
    const grants = request.grants === undefined && thing !== undefined ? [] : grantsOf(request.grants);
    return { status: 201, body: await keys.create(grants, { description, thing }) };
  });

  admin.add('DELETE', '/v1/s3/keys/:id', async ({ params }) => {
    if (!(await keys.remove(params.id))) throw new AdminError(404, `no such access key: ${params.id}`);
    return { body: { deleted: params.id } };
  });
}

function grantsOf(value: unknown): AccessKeyGrant[] {
  if (!Array.isArray(value) || value.length === 0) throw new AdminError(400, 'expected "grants": a non-empty list of { bucket, permission } (or a "thing")');
  return value.map((grant: { bucket?: unknown; permission?: unknown }, index) => {
    if (typeof grant?.bucket !== 'string' || !GRANTABLE_BUCKET.test(grant.bucket)) {
      throw new AdminError(400, `grants[${index}].bucket: expected a bucket name or "*"`);
    }
    if (grant.permission !== 'read' && grant.permission !== 'read-write') {
      throw new AdminError(400, `grants[${index}].permission: expected "read" or "read-write"`);
    }
    return { bucket: grant.bucket, permission: grant.permission };
  });
}
