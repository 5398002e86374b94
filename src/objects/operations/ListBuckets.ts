import { el, isoTime } from '../xml.js';
import { OWNER, sendXml, type Operation } from './context.js';

/** S3 ListBuckets: the buckets the signer may read. */
export const listBuckets: Operation = (request, res, context) => {
  const readable = context.objects.buckets().filter((bucket) => {
    try {
      context.authorize(request, bucket.name, 'read');
      return true;
    } catch {
      return false;
    }
  });
  sendXml(res, 200, 'ListAllMyBucketsResult', [
    el('Owner', OWNER),
    el('Buckets', readable.map((bucket) => el('Bucket', [el('Name', bucket.name), el('CreationDate', isoTime(bucket.createdAt))]))),
  ]);
};
