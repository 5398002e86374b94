import { document, escapeXml } from '../xml.js';
import type { Operation } from './context.js';

/** S3 GetBucketLocation: an empty LocationConstraint means us-east-1. */
export const getBucketLocation: Operation = (request, res, context) => {
  context.objects.existingBucket(request.bucket);
  const region = context.config.region === 'us-east-1' ? '' : context.config.region;
  const body = document('LocationConstraint', [escapeXml(region)]);
  res.writeHead(200, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
};
