import { S3Error } from '../errors.js';
import { header, sendEmpty, type Operation } from './context.js';
import { corsHeaders, corsRulesOf, matchingCorsRule } from './cors-rules.js';

/**
 * The methods S3 answers for, case-sensitive: a preflight may ask about them, and any other
 * method is a request S3 cannot parse (routes.ts).
 */
export const S3_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'PATCH', 'OPTIONS']);

/**
 * S3 OPTIONS object (a browser's CORS preflight, never signed), answered by the bucket's CORS rules:
 * 200 with the CORS headers of the first rule allowing the Origin, the method asked about
 * (Access-Control-Request-Method) and every header asked for (Access-Control-Request-Headers).
 * Without an Origin it is 400 BadRequest; otherwise refused with 403 AccessForbidden naming the
 * method asked about (else OPTIONS) and the bucket as the resource, even on a key: no bucket, no
 * CORS configuration, or no rule allowing it.
 */
export const optionsObject: Operation = (request, res, context) => {
  const origin = header(request, 'origin');
  if (origin === undefined) throw new S3Error('BadRequest', 400, 'Insufficient information. Origin request header needed.');
  const asked = header(request, 'access-control-request-method');
  if (asked !== undefined && !S3_METHODS.has(asked)) throw new S3Error('BadRequest', 400, `Invalid Access-Control-Request-Method: ${asked}`);
  const forbidden = (message: string) => new S3Error('AccessForbidden', 403, `CORSResponse: ${message}`, { Method: asked ?? 'OPTIONS', ResourceType: 'BUCKET' });
  if (request.bucket === '' || context.objects.bucket(request.bucket) === undefined) throw forbidden('Bucket not found');
  const rules = corsRulesOf(context.objects, request.bucket);
  if (!rules) throw forbidden('CORS is not enabled for this bucket.');
  const requestedHeaders = (header(request, 'access-control-request-headers') ?? '').split(',').map((name) => name.trim()).filter(Boolean);
  const rule = asked === undefined ? undefined : matchingCorsRule(rules, origin, asked, requestedHeaders);
  if (!rule) {
    throw forbidden('This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method '
      + "or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.");
  }
  sendEmpty(res, 200, corsHeaders(rule, origin, requestedHeaders));
};
