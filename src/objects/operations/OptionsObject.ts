import { S3Error } from '../errors.js';
import { header, type Operation } from './context.js';

/**
 * The methods S3 answers for, case-sensitive: a preflight may ask about them, and any other
 * method is a request S3 cannot parse (routes.ts).
 */
export const S3_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS']);

/**
 * S3 OPTIONS object (a browser's CORS preflight, never signed): buckets here have no CORS
 * configuration, so every preflight is refused as S3 refuses one for a bucket without it. Without
 * an Origin it is 400 BadRequest; with one, 403 AccessForbidden naming the method asked about
 * (Access-Control-Request-Method, else OPTIONS) and the bucket as the resource, even on a key.
 */
export const optionsObject: Operation = (request, _res, context) => {
  if (header(request, 'origin') === undefined) throw new S3Error('BadRequest', 400, 'Insufficient information. Origin request header needed.');
  const asked = header(request, 'access-control-request-method');
  if (asked !== undefined && !S3_METHODS.has(asked)) throw new S3Error('BadRequest', 400, `Invalid Access-Control-Request-Method: ${asked}`);
  const found = request.bucket !== '' && context.objects.bucket(request.bucket) !== undefined;
  throw new S3Error('AccessForbidden', 403, found ? 'CORSResponse: CORS is not enabled for this bucket.' : 'CORSResponse: Bucket not found',
    { Method: asked ?? 'OPTIONS', ResourceType: 'BUCKET' });
};
