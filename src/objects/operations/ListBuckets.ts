import { errors } from '../errors.js';
import { el, isoTime } from '../xml.js';
import { integerParameter, OWNER, sendXml, type Operation } from './context.js';
import { decodeToken, encodeToken } from './listing.js';

// S3 ListBuckets: max-buckets is 1-10,000, and 10,000 the page size when only the other parameters are given
const MAX_BUCKETS = 10_000;
const PAGING_PARAMETERS = ['max-buckets', 'continuation-token', 'prefix', 'bucket-region'];
const MAX_BUCKETS_RANGE = 'Argument max-buckets must be an integer between 1 and 10000';

/**
 * S3 ListBuckets: the buckets the signer may read, in name order (ObjectStore.buckets); `prefix`, `bucket-region` (all of
 * them are in `s3.region`) and pages of `max-buckets` with a continuation token (the last name).
 */
export const listBuckets: Operation = (request, res, context) => {
  const mayRead = (bucket: string) => {
    try {
      context.authorize(request, bucket, 'read');
      return true;
    } catch {
      return false;
    }
  };
  const paged = PAGING_PARAMETERS.some((name) => request.query.has(name));
  const maxBuckets = integerParameter(request, 'max-buckets', MAX_BUCKETS, MAX_BUCKETS_RANGE);
  if (maxBuckets < 1 || maxBuckets > MAX_BUCKETS) throw errors.invalidArgument(MAX_BUCKETS_RANGE, 'max-buckets', String(maxBuckets));
  const token = request.query.get('continuation-token');
  const after = token !== null ? decodeToken(token) : '';
  const prefix = request.query.get('prefix') ?? '';
  const region = request.query.get('bucket-region');
  const listed = region !== null && region !== context.config.region ? [] : context.objects.buckets()
    .filter((bucket) => bucket.name > after && bucket.name.startsWith(prefix) && mayRead(bucket.name));
  const page = paged ? listed.slice(0, maxBuckets) : listed;
  sendXml(res, 200, 'ListAllMyBucketsResult', [
    el('Owner', OWNER),
    el('Buckets', page.map((bucket) => el('Bucket', [el('Name', bucket.name), el('CreationDate', isoTime(bucket.createdAt)), el('BucketRegion', context.config.region)]))),
    page.length < listed.length ? el('ContinuationToken', encodeToken(page[page.length - 1].name)) : '',
    request.query.has('prefix') ? el('Prefix', prefix) : '',
  ]);
};
