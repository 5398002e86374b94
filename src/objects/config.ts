import { z } from 'zod/v3';
import { host, port } from '../config/fields.js';

/** `s3.*`: the S3-compatible object store and its file share. */
export const s3Schema = z.strictObject({
  host: host('0.0.0.0'),
  port: port(9000),
});
