import { errors } from '../errors.js';
import type { ObjectRecord } from '../object-store.js';
import { el } from '../xml.js';
import { header, integerParameter, sendXml, type Operation, type S3Request } from './context.js';
import { checkReadRequest, partChecksum } from './reading.js';
import { checksumElements } from './writing.js';

/** What x-amz-object-attributes may name, in the order S3 answers them. */
const ATTRIBUTES = ['ETag', 'Checksum', 'ObjectParts', 'StorageClass', 'ObjectSize'] as const;
type Attribute = typeof ATTRIBUTES[number];

/**
 * S3 GetObjectAttributes: the attributes x-amz-object-attributes names of an object, without its
 * content — HeadObject and ListParts in one: how a client checks a stored object's checksum, and
 * its parts', without reading it.
 */
export const getObjectAttributes: Operation = (request, res, context) => {
  checkReadRequest(request);
  const wanted = requestedAttributes(request);
  const object = context.objects.existingObject(request.bucket, request.key);
  const elements = ATTRIBUTES.filter((attribute) => wanted.has(attribute)).map((attribute) => attributeElement(attribute, object, request));
  sendXml(res, 200, 'GetObjectAttributesResponse', elements, { 'Last-Modified': new Date(object.lastModified).toUTCString() });
};

/** The attributes named (a comma-separated list); none is InvalidRequest, an unknown one InvalidArgument (as S3 answers). */
function requestedAttributes(request: S3Request): Set<Attribute> {
  const names = (header(request, 'x-amz-object-attributes') ?? '').split(',').map((name) => name.trim()).filter(Boolean);
  if (names.length === 0) throw errors.invalidRequest('The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty');
  const unknown = names.find((name) => !(ATTRIBUTES as readonly string[]).includes(name));
  if (unknown !== undefined) throw errors.invalidArgument('Invalid attribute name specified.', 'x-amz-object-attributes', unknown);
  return new Set(names as Attribute[]);
}

function attributeElement(attribute: Attribute, object: ObjectRecord, request: S3Request): string {
  switch (attribute) {
    // unquoted here, unlike the ETag header and every other XML document of S3
    case 'ETag': return el('ETag', object.etag);
    // an object stored without a checksum has none to show
    case 'Checksum': return object.checksums ? el('Checksum', checksumElements(object.checksums, 'object')) : '';
    case 'ObjectParts': return objectParts(object, request);
    case 'StorageClass': return el('StorageClass', 'STANDARD');
    case 'ObjectSize': return el('ObjectSize', object.size);
  }
}

/**
 * A multipart object's parts (nothing for another object): their count, and, where the object has
 * part checksums, a page of parts with their sizes and checksums (S3 lists parts only then) of up
 * to x-amz-max-parts (1,000; S3 ignores a value that is not a number) after x-amz-part-number-marker.
 */
function objectParts(object: ObjectRecord, request: S3Request): string {
  // a multipart object completed before part sizes were kept is known by its ETag's -N
  const etagCount = /-(\d+)$/.exec(object.etag);
  const count = object.parts?.length ?? (etagCount ? Number(etagCount[1]) : undefined);
  if (count === undefined) return '';
  if (!object.parts || !object.partChecksums) return el('ObjectParts', [el('PartsCount', count)]);
  const maxParts = maxPartsOf(request);
  const marker = integerParameter(request, 'x-amz-part-number-marker', 0, 'Provided part-number-marker not an integer or within integer range', 'header');
  const listed = Array.from({ length: Math.max(0, Math.min(count - marker, maxParts)) }, (_, index) => marker + index + 1);
  return el('ObjectParts', [
    el('PartsCount', count),
    el('PartNumberMarker', marker),
    el('NextPartNumberMarker', listed.at(-1) ?? marker),
    el('MaxParts', maxParts),
    // x-amz-max-parts: 0 is an empty last page, as ListParts' max-parts=0
    el('IsTruncated', maxParts > 0 && marker + listed.length < count),
    ...listed.map((number) => el('Part', [el('PartNumber', number), el('Size', object.parts![number - 1]), ...checksumElements(partChecksum(object, number), 'part')])),
  ]);
}

function maxPartsOf(request: S3Request): number {
  const text = header(request, 'x-amz-max-parts');
  return text !== undefined && /^\d{1,10}$/.test(text) ? Math.min(Number(text), 1000) : 1000;
}
