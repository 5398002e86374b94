import { errors, S3Error } from '../errors.js';
import { formEncodedKey } from '../events.js';
import type { ObjectRecord } from '../object-store.js';
import { el, isoTime } from '../xml.js';
import { integerParameter, OWNER, quoted, type S3Request } from './context.js';
import { checksumKindElements, checksumType } from './writing.js';

/** S3 returns at most 1,000 entries a page whatever max-keys asks for. */
export const MAX_PAGE = 1000;

/** A continuation token (ListObjectsV2, ListBuckets): the last entry of the page before, opaque to the client. */
export function encodeToken(last: string): string {
  return Buffer.from(`1:${last}`).toString('base64');
}

// S3 ListObjectsV2, ListBuckets: ContinuationToken is opaque; one we did not issue is refused as S3 refuses it.
export function decodeToken(token: string): string {
  const text = Buffer.from(token, 'base64').toString('utf8');
  if (!text.startsWith('1:') || Buffer.from(text).toString('base64') !== token) {
    throw errors.invalidArgument('The continuation token provided is incorrect', 'continuation-token', token);
  }
  return text.slice(2);
}

/**
 * The parameters of the other ListObjects version, which S3 refuses rather than ignores (even
 * empty, and before it looks for the bucket): a client paging with them would otherwise get its
 * first page again and again. ListObjects (v1) has no continuation-token or start-after, v2 no
 * marker. InvalidArgument naming the parameter, without its value, in S3's words.
 */
const OTHER_VERSION_PARAMETERS = {
  1: [['continuation-token', 'continuation-token only supported in REST.GET.BUCKET with list-type=2'],
    ['start-after', 'startAfter only supported in REST.GET.BUCKET with list-type=2']],
  2: [['marker', 'Marker unsupported with REST.GET.BUCKET in list-type=2']],
} as const;

export function refuseOtherVersionParameters(request: S3Request, version: 1 | 2): void {
  for (const [name, message] of OTHER_VERSION_PARAMETERS[version]) {
    if (request.query.has(name)) throw new S3Error('InvalidArgument', 400, message, { ArgumentName: name });
  }
}

/** The parameters the three listings share: prefix, delimiter, max-keys and encoding-type. */
export interface ListParameters {
  prefix: string;
  delimiter: string;
  /** The entries a page holds at most: the max-keys asked for, at most MAX_PAGE. */
  maxKeys: number;
  /** max-keys as asked for, which ListObjects and ListObjectsV2 echo uncapped, as S3 does. */
  askedMaxKeys: number;
  /** encoding-type=url: keys, prefixes and delimiters in the response are form-encoded, as S3 encodes them. */
  encode: (text: string) => string;
  encodingType: string | undefined;
}

export function listParameters(request: S3Request, maxName = 'max-keys'): ListParameters {
  const encodingType = request.query.get('encoding-type') ?? undefined;
  if (encodingType !== undefined && encodingType !== 'url') throw errors.invalidArgument('Invalid Encoding Method specified in Request', 'encoding-type', encodingType);
  const maxKeys = integerParameter(request, maxName, MAX_PAGE, `Provided ${maxName} not an integer or within integer range`);
  return {
    prefix: request.query.get('prefix') ?? '',
    delimiter: request.query.get('delimiter') ?? '',
    maxKeys: Math.min(maxKeys, MAX_PAGE),
    askedMaxKeys: maxKeys,
    encode: encodingType ? formEncodedKey : (text) => text,
    encodingType,
  };
}

/** One Contents element. */
export function contents(object: ObjectRecord, parameters: ListParameters, withOwner: boolean): string {
  return el('Contents', [
    el('Key', parameters.encode(object.key)),
    el('LastModified', isoTime(object.lastModified)),
    el('ETag', quoted(object.etag)),
    el('Size', object.size),
    ...(withOwner ? [el('Owner', OWNER)] : []),
    el('StorageClass', 'STANDARD'),
    ...checksumAlgorithmElements(object),
  ]);
}

/** S3 listings name the algorithm and type of an object's checksum, not its value. */
export function checksumAlgorithmElements({ checksums }: ObjectRecord): string[] {
  if (!checksums || Object.keys(checksums).length === 0) return [];
  return checksumKindElements(Object.keys(checksums), checksumType(checksums));
}

export function commonPrefixes(prefixes: string[], parameters: ListParameters): string[] {
  return prefixes.map((prefix) => el('CommonPrefixes', [el('Prefix', parameters.encode(prefix))]));
}

/** The elements every listing echoes: Prefix, Delimiter (when given), MaxKeys, EncodingType. */
export function echoed(parameters: ListParameters, maxKeysElement = 'MaxKeys'): { prefix: string; delimiter: string; maxKeys: string; encodingType: string } {
  return {
    prefix: el('Prefix', parameters.encode(parameters.prefix)),
    delimiter: parameters.delimiter ? el('Delimiter', parameters.encode(parameters.delimiter)) : '',
    maxKeys: el(maxKeysElement, parameters.maxKeys),
    encodingType: parameters.encodingType ? el('EncodingType', parameters.encodingType) : '',
  };
}
